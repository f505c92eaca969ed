"""The OneID graph's tables (``id_*``): identity.graph.GraphStore over SQLite.

Only pseudonyms are stored. ``id_epoch`` is bumped by every change that moves
or removes links, so other processes know their cached links went stale.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# Bumped by every change that moves or removes links, for other processes' caches.
EPOCH_SQL = "SELECT coalesce(max(n), 0) FROM id_epoch"


class SqliteGraphStore:
    """identity.graph.GraphStore on one connection. Statements run in the
    caller's transaction; ``atomic()`` opens one only when none is open."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reads -------------------------------------------------------------
    def epoch(self) -> int:
        return int(self.conn.execute(EPOCH_SQL).fetchone()[0])

    def one_id(self, pseudonym: str) -> int | None:
        row = self.conn.execute(
            "SELECT one_id FROM id_links WHERE pseudonym = ?", (pseudonym,)
        ).fetchone()
        return None if row is None else int(row[0])

    def counts(self, one_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT kind, count(*) FROM id_links WHERE one_id = ? AND migrated = 0 GROUP BY kind",
            (one_id,),
        )
        return {r[0]: r[1] for r in rows}

    def cluster(self, one_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT kind, pseudonym FROM id_links WHERE one_id = ? ORDER BY kind, pseudonym",
            (one_id,),
        )
        return [(r[0], r[1]) for r in rows]

    def person(self, one_id: int) -> tuple[int | None, bool] | None:
        """(merged into, erased?) of a OneID; None if it never existed."""
        row = self.conn.execute(
            "SELECT merged_into, erased_at FROM id_people WHERE one_id = ?", (one_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1] is not None)

    def absorbed_into(self, one_ids: Sequence[int]) -> list[int]:
        """OneIDs merged directly into any of ``one_ids``."""
        rows = self.conn.execute(
            f"SELECT one_id FROM id_people WHERE merged_into IN ({','.join('?' * len(one_ids))})",
            list(one_ids),
        ).fetchall()
        return [r[0] for r in rows]

    def merges(self, one_id: int) -> list[tuple[int, int, str, str, str]]:
        """(one_id, absorbed, cause kind, cause pseudonym, at) touching the OneID."""
        rows = self.conn.execute(
            "SELECT one_id, absorbed, cause_kind, cause, at FROM id_merges"
            " WHERE one_id = ? OR absorbed = ? ORDER BY id",
            (one_id, one_id),
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def conflicts(self, one_id: int | None) -> list[tuple[str, str, str, int | None]]:
        """(kind, pseudonym, reason, other OneID) of refused links, all or one person's."""
        sql = "SELECT kind, pseudonym, reason, other_one_id FROM id_conflicts"
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = ? OR other_one_id = ?"
            args = (one_id, one_id)
        return [(r[0], r[1], r[2], r[3]) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def is_erased(self, one_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM id_tombstones WHERE one_id = ?", (one_id,)
        ).fetchone()
        return row is not None

    def relink_progress(self, kid: str) -> tuple[int, int]:
        return relink_progress(self.conn, kid)

    # -- writes ------------------------------------------------------------
    def bump_epoch(self) -> int:
        return _bump_epoch(self.conn)

    def new_person(self, at: str) -> int:
        cur = self.conn.execute("INSERT INTO id_people (created_at) VALUES (?)", (at,))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def link(self, pseudonym: str, kind: str, kid: str, one_id: int, at: str) -> None:
        self.conn.execute(
            "INSERT INTO id_links (pseudonym, kind, kid, one_id, linked_at) VALUES (?, ?, ?, ?, ?)",
            (pseudonym, kind, kid, one_id, at),
        )

    def mark_migrated(self, pseudonym: str) -> None:
        self.conn.execute("UPDATE id_links SET migrated = 1 WHERE pseudonym = ?", (pseudonym,))

    def merge(self, into: int, absorbed: int, cause_kind: str, cause: str, at: str) -> None:
        self.conn.execute("UPDATE id_links SET one_id = ? WHERE one_id = ?", (into, absorbed))
        self.conn.execute("UPDATE id_people SET merged_into = ? WHERE one_id = ?", (into, absorbed))
        self.conn.execute(
            "INSERT INTO id_merges (one_id, absorbed, cause_kind, cause, at) VALUES (?, ?, ?, ?, ?)",
            (into, absorbed, cause_kind, cause, at),
        )

    def conflict(
        self, one_id: int, other: int | None, kind: str, pseudonym: str, reason: str, at: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO id_conflicts (one_id, other_one_id, kind, pseudonym, reason, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (one_id, other, kind, pseudonym, reason, at),
        )

    def erase(self, one_ids: Sequence[int], tombstone: int, at: str) -> int:
        conn = self.conn
        n = 0
        for oid in one_ids:
            n += conn.execute("DELETE FROM id_links WHERE one_id = ?", (oid,)).rowcount
            conn.execute("UPDATE id_people SET erased_at = ? WHERE one_id = ?", (at, oid))
            conn.execute("DELETE FROM id_merges WHERE one_id = ? OR absorbed = ?", (oid, oid))
            conn.execute(
                "DELETE FROM id_conflicts WHERE one_id = ? OR other_one_id = ?", (oid, oid)
            )
        conn.execute(
            "INSERT OR REPLACE INTO id_tombstones (one_id, erased_at, identifiers) VALUES (?, ?, ?)",
            (tombstone, at, n),
        )
        return n


# -- from any connection (the forwarder's, the CLI's) ----------------------------
def current_one_id(conn: sqlite3.Connection, one_id: int) -> tuple[int, bool]:
    """Follow merges from any connection; returns (OneID now, erased?)."""
    seen: set[int] = set()
    while True:
        row = conn.execute(
            "SELECT merged_into, erased_at FROM id_people WHERE one_id = ?", (one_id,)
        ).fetchone()
        if row is None:
            return one_id, True
        if row[1] is not None:
            return one_id, True
        if row[0] is None or one_id in seen:
            return one_id, False
        seen.add(one_id)
        one_id = row[0]


def relink_progress(conn: sqlite3.Connection, kid: str) -> tuple[int, int]:
    """(relinked under a newer key, linked under ``kid`` in all) from any connection."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(migrated), 0) FROM id_links WHERE kid = ?", (kid,)
    ).fetchone()
    return int(row[1]), int(row[0])


def forget_kid(conn: sqlite3.Connection, kid: str) -> int:
    """Drop the links under a destroyed key: they can never be looked up again."""
    n = conn.execute("DELETE FROM id_links WHERE kid = ?", (kid,)).rowcount
    _bump_epoch(conn)
    return n


def one_id_of(conn: sqlite3.Connection, pseudonym: str) -> int | None:
    row = conn.execute("SELECT one_id FROM id_links WHERE pseudonym = ?", (pseudonym,)).fetchone()
    return None if row is None else int(row[0])


def _bump_epoch(conn: sqlite3.Connection) -> int:
    row = conn.execute("UPDATE id_epoch SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
    return int(row[0]) if row else 0
