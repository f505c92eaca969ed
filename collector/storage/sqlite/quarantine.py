"""Rejected messages (``quarantine``): sealed (encrypted) raw bytes with a
time-to-live; the reason and JSON path are kept in the clear."""

from __future__ import annotations

import sqlite3

from collector.storage.ports import SealFn


class SqliteQuarantineStore:
    """collector.storage.ports.QuarantineStore on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(
        self,
        *,
        received_at: float,
        expires_at: float,
        source: str,
        reason: str,
        path: str,
        seal: SealFn,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO quarantine (received_at, expires_at, source, reason, path, sealed)"
            " VALUES (?, ?, ?, ?, ?, x'')",
            (received_at, expires_at, source, reason, path),
        )
        row_id = cur.lastrowid
        assert row_id is not None
        self.conn.execute("UPDATE quarantine SET sealed = ? WHERE id = ?", (seal(row_id), row_id))
        return row_id

    def expire(self, now: float) -> int:
        return expire_quarantine(self.conn, now)


def expire_quarantine(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("DELETE FROM quarantine WHERE expires_at < ?", (now,)).rowcount
