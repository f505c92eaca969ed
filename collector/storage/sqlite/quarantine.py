"""Rejected messages (``quarantine``): sealed (encrypted) raw bytes with a
time-to-live; the reason and JSON path are kept in the clear."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from collector.storage.ports import QuarantinedRow, SealFn


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

    def rows(
        self, *, source: str | None = None, ids: Sequence[int] = (), limit: int = 10_000
    ) -> list[QuarantinedRow]:
        sql = "SELECT id, received_at, expires_at, source, reason, path, sealed FROM quarantine"
        where: list[str] = []
        args: list[object] = []
        if source is not None:
            where.append("source = ?")
            args.append(source)
        if ids:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if where:
            sql += " WHERE " + " AND ".join(where)
        args.append(limit)
        return [
            QuarantinedRow(*row) for row in self.conn.execute(sql + " ORDER BY id LIMIT ?", args)
        ]

    def delete(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        return self.conn.execute(
            f"DELETE FROM quarantine WHERE id IN ({marks})", tuple(ids)
        ).rowcount


def expire_quarantine(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("DELETE FROM quarantine WHERE expires_at < ?", (now,)).rowcount
