"""The seen set of ``messageId`` keys (collector.pipeline.dedupe), in SQLite.

Inserting random 64-bit keys one by one into a B-tree dirties about one page
per key (measured: ~15-25 µs of CPU per message, the cost of a random-UUID
unique index). So new keys are first appended to a log, and merged into the
B-tree in large sorted runs:

- ``dedupe_recent (id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER)``: the
  keys not merged yet, appended in order (one page or two per batch); every
  process keeps them in memory as a set, reading only the log's tail (rows
  after the last id it has seen) on each call;
- ``dedupe_current`` / ``dedupe_previous (k INTEGER PRIMARY KEY)``: the
  merged keys of the current and the previous generation; the key is the rowid,
  so a probe is one B-tree descent (a batch's keys in one ``IN`` probe each);
- once ``MERGE_AT`` keys wait in the log they are merged in one sorted
  ``INSERT ... SELECT ... ORDER BY k``: the pages of the B-tree are each
  written about once per merge instead of once per key, and the log is
  emptied; ``dedupe_state.epoch`` moves so that other processes drop their
  in-memory copy (those keys are now in the B-tree);
- ``dedupe_state.started``: when the current generation began. Past the window
  the log is merged, the previous table dropped and the current one renamed (a
  compare-and-set on ``started``, so that of several worker processes exactly
  one rotates). A key is remembered for at least one window and at most two.

Memory per process is bounded by ``MERGE_AT`` keys (about 3 MB); disk by two
windows of keys (about 20 bytes each). Everything runs inside the writer's
transaction: a batch that rolls back leaves no keys behind (and ``discard``
drops the in-memory copy), and the file lock that serializes writers makes the
check exact across processes and restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

MERGE_AT = 50_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS dedupe_current (k INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS dedupe_previous (k INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS dedupe_recent (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " k INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dedupe_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " started REAL NOT NULL, epoch INTEGER NOT NULL DEFAULT 0)",
)
_CHUNK = 500  # bound parameters per statement (SQLite allows 32766)


class SeenSet:
    """The seen keys of the last one to two windows (``window_s`` seconds)."""

    def __init__(self, window_s: float, *, merge_at: int = MERGE_AT) -> None:
        self.window_s = window_s
        self.merge_at = merge_at
        self._ready = False
        self._started = 0.0
        self._epoch = -1
        self._recent: set[int] = set()
        self._last_id = 0

    def seen(self, conn: sqlite3.Connection, keys: Sequence[int], *, now: float) -> set[int]:
        """Which of ``keys`` (distinct) were seen within the window; the others
        are recorded as seen now. Runs inside the caller's transaction."""
        if not keys:
            return set()
        self._sync(conn, now)
        recent = self._recent
        found = {k for k in keys if k in recent}
        rest = [k for k in keys if k not in found]
        for start in range(0, len(rest), _CHUNK):
            chunk = rest[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for table in ("dedupe_current", "dedupe_previous"):
                found.update(
                    k for (k,) in conn.execute(f"SELECT k FROM {table} WHERE k IN ({marks})", chunk)
                )
        new = [k for k in rest if k not in found]
        for start in range(0, len(new), _CHUNK):
            chunk = new[start : start + _CHUNK]
            cur = conn.execute(
                f"INSERT INTO dedupe_recent (k) VALUES {','.join(['(?)'] * len(chunk))}", chunk
            )
            assert cur.lastrowid is not None
            self._last_id = cur.lastrowid  # ours are contiguous: we hold the write lock
        recent.update(new)
        if len(recent) >= self.merge_at:
            self._merge(conn)
        return found

    def _sync(self, conn: sqlite3.Connection, now: float) -> None:
        """Catch up with what other processes did since our last call."""
        if not self._ready:
            for statement in _SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(dedupe_state)")}
            if "epoch" not in columns:  # written by the first version of this store
                conn.execute("ALTER TABLE dedupe_state ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
            conn.execute("INSERT OR IGNORE INTO dedupe_state (id, started) VALUES (1, ?)", (now,))
            self._ready = True
        started, epoch = conn.execute("SELECT started, epoch FROM dedupe_state").fetchone()
        if epoch != self._epoch:  # merged or rotated elsewhere (or first call)
            self._epoch, self._started = epoch, started
            self._recent = set()
            self._last_id = 0
        for row_id, k in conn.execute(
            "SELECT id, k FROM dedupe_recent WHERE id > ? ORDER BY id", (self._last_id,)
        ):
            self._recent.add(k)
            self._last_id = row_id
        if now - started >= self.window_s:
            self._rotate(conn, started, now)

    def _merge(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO dedupe_current (k) SELECT k FROM dedupe_recent ORDER BY k"
        )
        conn.execute("DELETE FROM dedupe_recent")
        conn.execute("UPDATE dedupe_state SET epoch = epoch + 1")
        self._epoch += 1
        self._recent = set()

    def _rotate(self, conn: sqlite3.Connection, started: float, now: float) -> None:
        self._merge(conn)
        cur = conn.execute(
            "UPDATE dedupe_state SET started = ?, epoch = epoch + 1 WHERE id = 1 AND started = ?",
            (now, started),
        )
        assert cur.rowcount == 1  # under the write lock, and started was read just now
        conn.execute("DROP TABLE dedupe_previous")
        conn.execute("ALTER TABLE dedupe_current RENAME TO dedupe_previous")
        conn.execute("CREATE TABLE dedupe_current (k INTEGER PRIMARY KEY)")
        self._epoch += 1
        self._started = now

    def discard(self) -> None:
        """The transaction rolled back: read everything again next time."""
        self._ready = False
        self._epoch = -1


class SqliteDedupeStore:
    """collector.storage.ports.DedupeStore on the writer's connection: one
    ``SeenSet`` per window, kept with the connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._sets: dict[float, SeenSet] = {}

    def seen(self, keys: Sequence[int], *, now: float, window_s: float) -> set[int]:
        seen_set = self._sets.get(window_s)
        if seen_set is None:
            seen_set = self._sets[window_s] = SeenSet(window_s)
        return seen_set.seen(self.conn, keys, now=now)

    def discard(self) -> None:
        for seen_set in self._sets.values():
            seen_set.discard()
