"""The seen set of ``messageId`` keys (collector.pipeline.dedupe), in SQLite.

Two tables, ``dedupe_current`` and ``dedupe_previous``, each ``(k INTEGER
PRIMARY KEY)``: the key is the rowid, so a probe or an insert is one B-tree
descent. ``dedupe_state`` holds when the current generation began. When it is
older than the window the previous table is dropped and the current one
renamed (a compare-and-set on the start time, so that of several worker
processes sharing the file exactly one rotates). Everything runs inside the
writer's transaction: a batch that rolls back leaves no keys behind, and the
file lock that serializes writers makes the check exact across processes and
restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS dedupe_current (k INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS dedupe_previous (k INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS dedupe_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    " started REAL NOT NULL)",
)
_CHUNK = 500  # bound parameters per statement (SQLite allows 32766)


class SeenSet:
    """The seen keys of the last one to two windows (``window_s`` seconds)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._ready = False
        self._started: float | None = None

    def seen(self, conn: sqlite3.Connection, keys: Sequence[int], *, now: float) -> set[int]:
        """Which of ``keys`` (distinct) were seen within the window; the others
        are recorded as seen now. Runs inside the caller's transaction."""
        if not keys:
            return set()
        self._prepare(conn, now)
        found: set[int] = set()
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for table in ("dedupe_current", "dedupe_previous"):
                found.update(
                    k for (k,) in conn.execute(f"SELECT k FROM {table} WHERE k IN ({marks})", chunk)
                )
        new = [k for k in keys if k not in found]
        for start in range(0, len(new), _CHUNK):
            chunk = new[start : start + _CHUNK]
            conn.execute(
                f"INSERT INTO dedupe_current (k) VALUES {','.join(['(?)'] * len(chunk))}", chunk
            )
        return found

    def _prepare(self, conn: sqlite3.Connection, now: float) -> None:
        if not self._ready:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO dedupe_state (id, started) VALUES (1, ?)", (now,))
            self._ready = True
            self._started = None
        if self._started is None or now - self._started >= self.window_s:
            (self._started,) = conn.execute("SELECT started FROM dedupe_state").fetchone()
            assert self._started is not None
            if now - self._started >= self.window_s:
                self._rotate(conn, self._started, now)

    def _rotate(self, conn: sqlite3.Connection, started: float, now: float) -> None:
        cur = conn.execute(
            "UPDATE dedupe_state SET started = ? WHERE id = 1 AND started = ?", (now, started)
        )
        if cur.rowcount == 1:
            conn.execute("DROP TABLE dedupe_previous")
            conn.execute("ALTER TABLE dedupe_current RENAME TO dedupe_previous")
            conn.execute("CREATE TABLE dedupe_current (k INTEGER PRIMARY KEY)")
            self._started = now
        else:  # another process rotated first
            (self._started,) = conn.execute("SELECT started FROM dedupe_state").fetchone()

    def discard(self) -> None:
        """The transaction rolled back: read the state again next time."""
        self._ready = False


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
