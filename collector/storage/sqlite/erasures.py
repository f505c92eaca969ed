"""Deletion requests to destinations (``erasures``): one row per erased person
and destination, ``pending`` until the forwarder has asked the destination
(the forwarder's side is in ``outbox.py``: ``pending_erasures``, ``finish_erasure``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


class SqliteErasureStore:
    """collector.storage.ports.ErasureStore on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def add(
        self, *, one_id: int, one_ids: Sequence[int], destination: str, deleted: int, at: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO erasures (one_id, one_ids, destination, outbox_rows_deleted, status, at)"
            " VALUES (?, ?, ?, ?, 'pending', ?)",
            (one_id, ",".join(map(str, one_ids)), destination, deleted, at),
        )

    def status(self, one_ids: Sequence[int]) -> list[dict[str, object]]:
        if not one_ids:
            return []
        rows = self.conn.execute(
            "SELECT destination, status, outbox_rows_deleted, remote_rows_deleted, detail"
            f" FROM erasures WHERE one_id IN ({','.join('?' * len(one_ids))}) ORDER BY id",
            list(one_ids),
        )
        return [
            {
                "destination": r[0],
                "status": r[1],
                "outbox_rows_deleted": r[2],
                "remote_rows_deleted": r[3],
                "detail": r[4],
            }
            for r in rows
        ]
