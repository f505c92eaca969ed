"""Webhook deliveries already stored, by source and the platform's delivery id.

Order systems retry a delivery for days (Shopify 48 hours, Shoplazza two days)
and a retry carries the same id: claiming the id in the same transaction as the
delivery's outbox and ledger rows makes a repeat a no-op that is still
acknowledged, across restarts. Ids older than ``KEEP_SECONDS`` are pruned.
The table is created by ``schema/0002_webhook_deliveries.sql``.
"""

from __future__ import annotations

import sqlite3

KEEP_SECONDS = 30 * 86400.0


class SqliteDeliveryStore:
    """collector.storage.ports.DeliveryStore on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def claim(self, source: str, delivery_id: str, at: float) -> bool:
        return claim(self.conn, source, delivery_id, at)

    def prune(self, now: float) -> int:
        return prune(self.conn, now)


def claim(conn: sqlite3.Connection, source: str, delivery_id: str, at: float) -> bool:
    """True when this delivery id is new for the source (and is now recorded)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO webhook_deliveries (source, delivery_id, received_at)"
        " VALUES (?, ?, ?)",
        (source, delivery_id, at),
    )
    return cur.rowcount == 1


def prune(conn: sqlite3.Connection, now: float) -> int:
    cur = conn.execute(
        "DELETE FROM webhook_deliveries WHERE received_at < ?", (now - KEEP_SECONDS,)
    )
    return cur.rowcount
