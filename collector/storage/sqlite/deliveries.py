"""Webhook deliveries already stored, by source and the platform's delivery id.

Order systems retry a delivery for days (Shopify 48 hours, Shoplazza two days)
and a retry carries the same id: claiming the id in the same transaction as the
delivery's outbox and ledger rows makes a repeat a no-op that is still
acknowledged, across restarts. Ids older than ``KEEP_SECONDS`` are pruned.
"""

from __future__ import annotations

import sqlite3

KEEP_SECONDS = 30 * 86400.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    source TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (source, delivery_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_deliveries_age ON webhook_deliveries(received_at);
"""


def create(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


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
