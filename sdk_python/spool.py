"""An on-disk FIFO of encoded messages (SQLite), for the ``spool`` overflow policy.

Messages are stored in chunks (one row per up to ``chunk_items`` messages, as a
msgpack list of ``[seq, message]``), so spilling a burst costs a few row writes,
not one per message. Rows are keyed by the first sequence number they hold:
whatever order chunks are written in (overflow spills, failed batches put
back), they are read back in the order the calls were made. Shared by the
caller's thread and the sender thread, hence one lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import msgspec

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[tuple[int, bytes]]).decode


class Spool:
    def __init__(
        self, path: Path, *, chunk_items: int = 500, chunk_bytes: int = 256 * 1024
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._chunk_items = chunk_items
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS spool_chunks"
            " (seq INTEGER PRIMARY KEY, last INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL)"
        )
        self._count = int(
            self._conn.execute("SELECT coalesce(sum(n), 0) FROM spool_chunks").fetchone()[0]
        )

    def __len__(self) -> int:
        return self._count

    def max_seq(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(last) FROM spool_chunks").fetchone()
        return int(row[0] or 0)

    def _chunks(self, items: list[tuple[int, bytes]]) -> list[tuple[int, int, int, bytes]]:
        rows = []
        start = 0
        size = 0
        for i, (_, data) in enumerate(items):
            if i > start and (
                i - start >= self._chunk_items or size + len(data) > self._chunk_bytes
            ):
                chunk = items[start:i]
                rows.append((chunk[0][0], chunk[-1][0], len(chunk), _encode(chunk)))
                start, size = i, 0
            size += len(data)
        chunk = items[start:]
        rows.append((chunk[0][0], chunk[-1][0], len(chunk), _encode(chunk)))
        return rows

    def put(self, items: list[tuple[int, bytes]]) -> None:
        """Store messages (in call order, as the queue holds them)."""
        if not items:
            return
        rows = self._chunks(items)
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT INTO spool_chunks (seq, last, n, data) VALUES (?, ?, ?, ?)", rows
            )
            self._conn.execute("COMMIT")
            self._count += len(items)

    def head(self, limit: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """The oldest whole chunks, up to ``limit`` messages and ``max_bytes``
        (always at least one chunk)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM spool_chunks ORDER BY seq LIMIT ?", (max(1, limit // 50),)
            ).fetchall()
        out: list[tuple[int, bytes]] = []
        size = 0
        for (blob,) in rows:
            chunk = _decode(blob)
            chunk_size = sum(len(d) + 1 for _, d in chunk)
            if out and (len(out) + len(chunk) > limit or size + chunk_size > max_bytes):
                break
            out.extend(chunk)
            size += chunk_size
        return out

    def delete(self, seqs: list[int]) -> None:
        """Forget a delivered head batch: the whole chunks that held it. ``head``
        returns whole chunks with the lowest sequence numbers and only the sender
        adds lower ones, so the chunks are exactly those starting in its range."""
        if not seqs:
            return
        with self._lock:
            self._conn.execute(
                "DELETE FROM spool_chunks WHERE seq BETWEEN ? AND ?", (min(seqs), max(seqs))
            )
            self._count -= len(seqs)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
