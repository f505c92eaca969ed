"""The OneID graph: deterministic links between pseudonyms, in SQLite.

Identifiers seen together link into one person (a OneID). Rules keep the graph
from over-merging, the failure PostHog and Mixpanel users know from shared
devices:

- a per-kind limit per OneID (default: one ``user_id``, five emails, anonymous
  ids unlimited); a link or merge that would exceed it is refused and recorded;
- a priority order: the highest-priority identifier of a message decides whose
  event it is, and lower-priority identifiers that conflict stay unlinked.
  So two people with different user ids never merge through a shared
  anonymous id or device.

Only pseudonyms are stored. Rotation: an identifier presented with its
pseudonyms under previous keys is found under those and relinked under the
active key (lazily: without raw values nothing else can be migrated).

The graph never commits behind its caller's back when the connection is shared:
each public method runs inside the caller's transaction if one is open.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NewType

from identity.errors import IdentityError

OneId = NewType("OneId", int)

DEFAULT_LIMITS: Mapping[str, int] = {"user_id": 1, "email": 5, "phone": 3, "wechat_unionid": 1}
DEFAULT_PRIORITY: Sequence[str] = (
    "user_id",
    "wechat_unionid",
    "email",
    "phone",
    "wechat_openid",
    "device_id",
    "anonymous_id",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS id_people (
    one_id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    merged_into INTEGER,
    erased_at TEXT
);
CREATE TABLE IF NOT EXISTS id_links (
    pseudonym TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    kid TEXT NOT NULL,
    one_id INTEGER NOT NULL,
    linked_at TEXT NOT NULL,
    migrated INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS id_links_one_id ON id_links(one_id, kind, migrated);
CREATE TABLE IF NOT EXISTS id_merges (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    absorbed INTEGER NOT NULL,
    cause_kind TEXT NOT NULL,
    cause TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS id_merges_one_id ON id_merges(one_id);
CREATE TABLE IF NOT EXISTS id_conflicts (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    other_one_id INTEGER,
    kind TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS id_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT OR IGNORE INTO id_epoch (id, n) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS id_tombstones (
    one_id INTEGER PRIMARY KEY,
    erased_at TEXT NOT NULL,
    identifiers INTEGER NOT NULL
);
"""


def tune(conn: sqlite3.Connection, *, cache_mb: int = 256, mmap_mb: int = 4096) -> None:
    """A large page cache and memory-mapped reads keep lookups flat as the graph
    grows: the b-tree's inner pages stay resident, only leaves are read."""
    conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    conn.execute(f"PRAGMA mmap_size={mmap_mb * 1024 * 1024}")


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a message: its kind, its pseudonym under the active key,
    and its pseudonyms under previous keys still in the rotation window."""

    kind: str
    pseudonym: str
    previous: tuple[str, ...] = ()

    @property
    def kid(self) -> str:
        return self.pseudonym.split(".")[1]


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str
    pseudonym: str
    reason: str
    other: OneId | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    one_id: OneId
    created: bool
    merged: tuple[OneId, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    relinked: int = 0


@dataclass(frozen=True, slots=True)
class MergeRecord:
    one_id: OneId
    absorbed: OneId
    cause_kind: str
    cause: str
    at: str


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat()


class Graph:
    def __init__(
        self,
        db: str | Path | sqlite3.Connection,
        *,
        limits: Mapping[str, int] | None = None,
        priority: Sequence[str] | None = None,
        cache_size: int = 200_000,
    ) -> None:
        if isinstance(db, sqlite3.Connection):
            self._conn = db
        else:
            self._conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            tune(self._conn)
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        order = list(priority or DEFAULT_PRIORITY)
        self._rank = {kind: i for i, kind in enumerate(order)}
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cache_size = cache_size
        with self._tx():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._epoch = _epoch(self._conn)

    @property
    def epoch(self) -> int:
        """Changes whenever cached links may have become wrong (merge, erasure,
        another process's change seen by sync)."""
        return self._epoch

    def cached_one_id(self, identifiers: Sequence[Identifier]) -> OneId | None:
        """A returning person: every identifier is cached in the same cluster, so
        resolving would link, merge and refuse nothing. The cache holds only what
        the database says (merges and erasures clear it), so this is exact."""
        if not identifiers:
            return None
        cache = self._cache
        known = cache.get(identifiers[0].pseudonym)
        if known is None:
            return None
        for ident in identifiers[1:]:
            if cache.get(ident.pseudonym) != known:
                return None
        return OneId(known)

    def sync(self, epoch: int) -> bool:
        """Forget cached links if another process merged, erased or dropped
        links since we last looked (call inside the write transaction with the
        epoch it read, EPOCH_SQL). Links others only added need nothing: a miss
        reads the database."""
        if epoch == self._epoch:
            return False
        self._epoch = epoch
        self._cache.clear()
        return True

    def reset(self) -> None:
        """After a rolled-back transaction: forget cached links (they may be
        uncommitted ones) and re-read the epoch (a rolled-back bump is undone)."""
        self._cache.clear()
        self._epoch = _epoch(self._conn)

    def _moved(self) -> None:
        """Links moved or vanished: tell the other processes' caches."""
        self._epoch = _bump_epoch(self._conn)
        self._cache.clear()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            self.reset()
            raise
        self._conn.execute("COMMIT")

    def _rank_of(self, kind: str) -> int:
        return self._rank.get(kind, len(self._rank))

    def limit(self, kind: str) -> int | None:
        return self._limits.get(kind)

    # -- lookups -----------------------------------------------------------
    def lookup(self, pseudonym: str) -> OneId | None:
        hit = self._cache.get(pseudonym)
        if hit is not None:
            return OneId(hit)
        row = self._conn.execute(
            "SELECT one_id FROM id_links WHERE pseudonym = ?", (pseudonym,)
        ).fetchone()
        if row is None:
            return None
        self._remember(pseudonym, row[0])
        return OneId(row[0])

    def _remember(self, pseudonym: str, one_id: int) -> None:
        self._cache[pseudonym] = one_id
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def cluster(self, one_id: OneId) -> list[tuple[str, str]]:
        """(kind, pseudonym) of every identifier linked to the OneID."""
        rows = self._conn.execute(
            "SELECT kind, pseudonym FROM id_links WHERE one_id = ? ORDER BY kind, pseudonym",
            (one_id,),
        )
        return [(r[0], r[1]) for r in rows]

    def current(self, one_id: OneId) -> OneId:
        """Follow merges: the OneID that now holds what ``one_id`` held."""
        seen = set()
        while True:
            row = self._conn.execute(
                "SELECT merged_into FROM id_people WHERE one_id = ?", (one_id,)
            ).fetchone()
            if row is None or row[0] is None or one_id in seen:
                return one_id
            seen.add(one_id)
            one_id = OneId(row[0])

    def lineage(self, one_id: OneId) -> list[int]:
        """The OneID and every OneID merged into it, directly or transitively."""
        out = [int(one_id)]
        frontier = [int(one_id)]
        while frontier:
            rows = self._conn.execute(
                f"SELECT one_id FROM id_people WHERE merged_into IN ({','.join('?' * len(frontier))})",
                frontier,
            ).fetchall()
            frontier = [r[0] for r in rows if r[0] not in out]
            out.extend(frontier)
        return sorted(out)

    def merge_history(self, one_id: OneId) -> list[MergeRecord]:
        rows = self._conn.execute(
            "SELECT one_id, absorbed, cause_kind, cause, at FROM id_merges"
            " WHERE one_id = ? OR absorbed = ? ORDER BY id",
            (one_id, one_id),
        )
        return [MergeRecord(OneId(r[0]), OneId(r[1]), r[2], r[3], r[4]) for r in rows]

    def conflicts(self, one_id: OneId | None = None) -> list[Conflict]:
        sql = "SELECT kind, pseudonym, reason, other_one_id FROM id_conflicts"
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = ? OR other_one_id = ?"
            args = (one_id, one_id)
        return [
            Conflict(r[0], r[1], r[2], r[3]) for r in self._conn.execute(sql + " ORDER BY id", args)
        ]

    def is_erased(self, one_id: OneId) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM id_tombstones WHERE one_id = ?", (one_id,)
        ).fetchone()
        return row is not None

    def unmigrated(self, kid: str) -> int:
        """Identifiers still linked only under key ``kid``."""
        done, total = relink_progress(self._conn, kid)
        return total - done

    # -- changes -----------------------------------------------------------
    def _counts(self, one_id: int) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT kind, count(*) FROM id_links WHERE one_id = ? AND migrated = 0 GROUP BY kind",
            (one_id,),
        )
        return {r[0]: r[1] for r in rows}

    def _fits(self, counts: Mapping[str, int], extra: Mapping[str, int]) -> str | None:
        for kind, n in extra.items():
            limit = self._limits.get(kind)
            if limit is not None and counts.get(kind, 0) + n > limit:
                return f"{kind} limit {limit} per OneID"
        return None

    def _new_person(self, now: str) -> int:
        cur = self._conn.execute("INSERT INTO id_people (created_at) VALUES (?)", (now,))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _link(self, ident: Identifier, one_id: int, now: str) -> None:
        self._conn.execute(
            "INSERT INTO id_links (pseudonym, kind, kid, one_id, linked_at) VALUES (?, ?, ?, ?, ?)",
            (ident.pseudonym, ident.kind, ident.kid, one_id, now),
        )
        self._remember(ident.pseudonym, one_id)

    def _find(self, ident: Identifier, now: str) -> tuple[int | None, bool]:
        """The identifier's OneID, relinking it under the active key if it was
        only known under a previous one. Returns (one_id, relinked)."""
        found = self.lookup(ident.pseudonym)
        if found is not None:
            return found, False
        for old in ident.previous:
            row = self._conn.execute(
                "SELECT one_id FROM id_links WHERE pseudonym = ?", (old,)
            ).fetchone()
            if row is not None:
                self._conn.execute("UPDATE id_links SET migrated = 1 WHERE pseudonym = ?", (old,))
                self._link(ident, row[0], now)
                return row[0], True
        return None, False

    def resolve(
        self, identifiers: Sequence[Identifier], *, now: datetime | None = None
    ) -> Resolution:
        """Find or create the OneID of a message's identifiers, merging within limits."""
        if not identifiers:
            raise IdentityError("resolve needs at least one identifier")
        known = self.cached_one_id(identifiers)
        if known is not None:
            return Resolution(known, False)
        at = _iso(now)
        unique = {i.pseudonym: i for i in identifiers}.values()
        ordered = sorted(unique, key=lambda i: (self._rank_of(i.kind), i.pseudonym))
        with self._tx():
            located: list[tuple[Identifier, int | None]] = []
            relinked = 0
            for ident in ordered:
                one_id, moved = self._find(ident, at)
                relinked += moved
                located.append((ident, one_id))
            top_ident, primary = located[0]
            created = False
            if primary is None:
                # Keep the OneID an anonymous visitor already has when they log in.
                for _, candidate in located[1:]:
                    if (
                        candidate is not None
                        and self._fits(self._counts(candidate), {top_ident.kind: 1}) is None
                    ):
                        primary = candidate
                        break
                else:
                    primary = self._new_person(at)
                    created = True
                self._link(top_ident, primary, at)
            # Returning people (every identifier already in the primary cluster)
            # need no counts: skip the query on the hot path.
            counts = (
                self._counts(primary) if any(one_id != primary for _, one_id in located[1:]) else {}
            )
            merged: list[OneId] = []
            conflicts: list[Conflict] = []
            for ident, one_id in located[1:]:
                if one_id == primary:
                    continue
                if one_id is None:
                    problem = self._fits(counts, {ident.kind: 1})
                    if problem is None:
                        self._link(ident, primary, at)
                        counts[ident.kind] = counts.get(ident.kind, 0) + 1
                    else:
                        conflicts.append(self._conflict(primary, None, ident, problem, at))
                    continue
                other = self._counts(one_id)
                problem = self._fits(counts, other)
                if problem is None:
                    self._merge(primary, one_id, ident, at)
                    for kind, n in other.items():
                        counts[kind] = counts.get(kind, 0) + n
                    merged.append(OneId(one_id))
                else:
                    conflicts.append(self._conflict(primary, one_id, ident, problem, at))
        return Resolution(OneId(primary), created, tuple(merged), tuple(conflicts), relinked)

    def _conflict(
        self, one_id: int, other: int | None, ident: Identifier, problem: str, at: str
    ) -> Conflict:
        reason = f"refused: would exceed the {problem}"
        self._conn.execute(
            "INSERT INTO id_conflicts (one_id, other_one_id, kind, pseudonym, reason, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (one_id, other, ident.kind, ident.pseudonym, reason, at),
        )
        return Conflict(
            ident.kind, ident.pseudonym, reason, None if other is None else OneId(other)
        )

    def _merge(self, into: int, absorbed: int, cause: Identifier, at: str) -> None:
        self._conn.execute("UPDATE id_links SET one_id = ? WHERE one_id = ?", (into, absorbed))
        self._conn.execute(
            "UPDATE id_people SET merged_into = ? WHERE one_id = ?", (into, absorbed)
        )
        self._conn.execute(
            "INSERT INTO id_merges (one_id, absorbed, cause_kind, cause, at) VALUES (?, ?, ?, ?, ?)",
            (into, absorbed, cause.kind, cause.pseudonym, at),
        )
        self._moved()

    def erase(self, one_id: OneId, *, now: datetime | None = None) -> int:
        """Remove the whole cluster and leave a tombstone; returns identifiers removed."""
        at = _iso(now)
        with self._tx():
            one_id = self.current(one_id)
            # Every OneID merged into this one, however deep: their merge causes
            # and conflicts name the person's pseudonyms too.
            lineage = self.lineage(one_id)
            n = 0
            for oid in lineage:
                n += self._conn.execute("DELETE FROM id_links WHERE one_id = ?", (oid,)).rowcount
                self._conn.execute("UPDATE id_people SET erased_at = ? WHERE one_id = ?", (at, oid))
                self._conn.execute(
                    "DELETE FROM id_merges WHERE one_id = ? OR absorbed = ?", (oid, oid)
                )
                self._conn.execute(
                    "DELETE FROM id_conflicts WHERE one_id = ? OR other_one_id = ?", (oid, oid)
                )
            self._conn.execute(
                "INSERT OR REPLACE INTO id_tombstones (one_id, erased_at, identifiers) VALUES (?, ?, ?)",
                (one_id, at, n),
            )
            self._moved()
        return n


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


# Bumped by every change that moves or removes links, for other processes' caches.
EPOCH_SQL = "SELECT coalesce(max(n), 0) FROM id_epoch"


def _epoch(conn: sqlite3.Connection) -> int:
    return int(conn.execute(EPOCH_SQL).fetchone()[0])


def _bump_epoch(conn: sqlite3.Connection) -> int:
    row = conn.execute("UPDATE id_epoch SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
    return int(row[0]) if row else 0


def one_id_of(conn: sqlite3.Connection, pseudonym: str) -> int | None:
    row = conn.execute("SELECT one_id FROM id_links WHERE pseudonym = ?", (pseudonym,)).fetchone()
    return None if row is None else int(row[0])
