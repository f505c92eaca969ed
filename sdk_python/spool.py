"""An on-disk FIFO of encoded messages (SQLite), for the ``spool`` overflow policy.

Rows are keyed by the client's sequence number, so whatever order they are
written in (overflow spills, failed batches put back), they are read back in
the order the calls were made. Shared by the caller's thread (spills) and the
sender thread, hence one lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


class Spool:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)"
        )
        self._count = int(self._conn.execute("SELECT count(*) FROM spool").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def max_seq(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(seq) FROM spool").fetchone()
        return int(row[0] or 0)

    def put(self, items: list[tuple[int, bytes]]) -> None:
        if not items:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            cur = self._conn.executemany(
                "INSERT OR IGNORE INTO spool (seq, data) VALUES (?, ?)", items
            )
            self._conn.execute("COMMIT")
            self._count += cur.rowcount

    def head(self, limit: int, max_bytes: int) -> list[tuple[int, bytes]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, data FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        out: list[tuple[int, bytes]] = []
        size = 0
        for seq, data in rows:
            if out and size + len(data) + 1 > max_bytes:
                break
            out.append((seq, bytes(data)))
            size += len(data) + 1
        return out

    def delete(self, seqs: list[int]) -> None:
        """Forget a delivered head batch. ``head`` returns the lowest sequence
        numbers and only the sender adds lower ones, so the batch is exactly the
        rows in its range: one range delete."""
        if not seqs:
            return
        with self._lock:
            cur = self._conn.execute(
                "DELETE FROM spool WHERE seq BETWEEN ? AND ?", (min(seqs), max(seqs))
            )
            self._count -= cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()
