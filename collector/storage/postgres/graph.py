"""The OneID graph's tables (``id_*``) on PostgreSQL: identity.graph.GraphStore
(same tables and meaning as ``collector.storage.sqlite.graph``).

Concurrency across replicas: ``atomic()`` takes the write lock
(``locks.WRITE_LOCK``) at the start of the transaction, before the graph
reads the links it decides on, so two replicas resolving the same new person
at the same moment run one after the other and the second finds the first's
OneID; concurrent merges of overlapping clusters likewise see each other's
result and the limits are checked against committed counts. ``id_epoch`` is
bumped by every change that moves or removes links, so other replicas drop
their cached links (``UnitOfWork.heads``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from collector.storage.postgres.locks import take_write_lock

Conn = psycopg.Connection[Any]
EPOCH_SQL = "SELECT n FROM id_epoch WHERE id = 1"


class PostgresGraphStore:
    """identity.graph.GraphStore on one autocommit connection. Statements run
    in the caller's transaction; ``atomic()`` opens one only when none is open,
    and takes the write lock either way."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            take_write_lock(self.conn)
            yield
            return
        with self.conn.transaction():
            take_write_lock(self.conn)
            yield

    # -- reads -------------------------------------------------------------
    def epoch(self) -> int:
        row = self.conn.execute(EPOCH_SQL).fetchone()
        return int(row[0]) if row else 0

    def one_id(self, pseudonym: str) -> int | None:
        row = self.conn.execute(
            "SELECT one_id FROM id_links WHERE pseudonym = %s", (pseudonym,)
        ).fetchone()
        return None if row is None else int(row[0])

    def counts(self, one_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT kind, count(*) FROM id_links WHERE one_id = %s AND migrated = 0 GROUP BY kind",
            (one_id,),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def cluster(self, one_id: int) -> list[tuple[str, str]]:
        rows = self.conn.execute(
            "SELECT kind, pseudonym FROM id_links WHERE one_id = %s ORDER BY kind, pseudonym",
            (one_id,),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def person(self, one_id: int) -> tuple[int | None, bool] | None:
        row = self.conn.execute(
            "SELECT merged_into, erased_at FROM id_people WHERE one_id = %s", (one_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1] is not None)

    def absorbed_into(self, one_ids: Sequence[int]) -> list[int]:
        rows = self.conn.execute(
            "SELECT one_id FROM id_people WHERE merged_into = ANY(%s)", (list(one_ids),)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def merges(self, one_id: int) -> list[tuple[int, int, str, str, str]]:
        rows = self.conn.execute(
            "SELECT one_id, absorbed, cause_kind, cause, at FROM id_merges"
            " WHERE one_id = %s OR absorbed = %s ORDER BY id",
            (one_id, one_id),
        )
        return [(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]

    def conflicts(self, one_id: int | None) -> list[tuple[str, str, str, int | None]]:
        sql = "SELECT kind, pseudonym, reason, other_one_id FROM id_conflicts"
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = %s OR other_one_id = %s"
            args = (one_id, one_id)
        rows = self.conn.execute(sql + " ORDER BY id", args)
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]

    def is_erased(self, one_id: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM id_tombstones WHERE one_id = %s", (one_id,)
        ).fetchone()
        return row is not None

    def relink_progress(self, kid: str) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(migrated), 0) FROM id_links WHERE kid = %s", (kid,)
        ).fetchone()
        assert row is not None
        return int(row[1]), int(row[0])

    # -- writes ------------------------------------------------------------
    def bump_epoch(self) -> int:
        row = self.conn.execute("UPDATE id_epoch SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
        return int(row[0]) if row else 0

    def new_person(self, at: str) -> int:
        row = self.conn.execute(
            "INSERT INTO id_people (created_at) VALUES (%s) RETURNING one_id", (at,)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def link(self, pseudonym: str, kind: str, kid: str, one_id: int, at: str) -> None:
        self.conn.execute(
            "INSERT INTO id_links (pseudonym, kind, kid, one_id, linked_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (pseudonym, kind, kid, one_id, at),
        )

    def mark_migrated(self, pseudonym: str) -> None:
        self.conn.execute("UPDATE id_links SET migrated = 1 WHERE pseudonym = %s", (pseudonym,))

    def merge(self, into: int, absorbed: int, cause_kind: str, cause: str, at: str) -> None:
        self.conn.execute("UPDATE id_links SET one_id = %s WHERE one_id = %s", (into, absorbed))
        self.conn.execute(
            "UPDATE id_people SET merged_into = %s WHERE one_id = %s", (into, absorbed)
        )
        self.conn.execute(
            "INSERT INTO id_merges (one_id, absorbed, cause_kind, cause, at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (into, absorbed, cause_kind, cause, at),
        )

    def conflict(
        self, one_id: int, other: int | None, kind: str, pseudonym: str, reason: str, at: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO id_conflicts (one_id, other_one_id, kind, pseudonym, reason, at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (one_id, other, kind, pseudonym, reason, at),
        )

    def erase(self, one_ids: Sequence[int], tombstone: int, at: str) -> int:
        ids = list(one_ids)
        conn = self.conn
        n = conn.execute("DELETE FROM id_links WHERE one_id = ANY(%s)", (ids,)).rowcount
        conn.execute("UPDATE id_people SET erased_at = %s WHERE one_id = ANY(%s)", (at, ids))
        conn.execute(
            "DELETE FROM id_merges WHERE one_id = ANY(%s) OR absorbed = ANY(%s)", (ids, ids)
        )
        conn.execute(
            "DELETE FROM id_conflicts WHERE one_id = ANY(%s) OR other_one_id = ANY(%s)",
            (ids, ids),
        )
        conn.execute(
            "INSERT INTO id_tombstones (one_id, erased_at, identifiers) VALUES (%s, %s, %s)"
            " ON CONFLICT (one_id) DO UPDATE SET erased_at = excluded.erased_at,"
            " identifiers = excluded.identifiers",
            (tombstone, at, n),
        )
        return n
