"""Advisory lock keys shared by every replica (bigint keys for
``pg_advisory_xact_lock``; released when the transaction ends).

``WRITE_LOCK`` serializes the write transactions that append to the consent
ledger and change the identity graph, across all replicas: the ledger is one
hash chain (each record's hash covers the previous one), and two replicas
resolving the same new person must not both create a OneID. A replica takes
it once per group-committed batch, so the cost is one lock per batch, not per
event. Forwarders, the dedupe window and the outbox do not take it.
"""

from __future__ import annotations

from typing import Any

import psycopg

WRITE_LOCK = 0x436F6E73_77726974  # "Cons" "writ"


def take_write_lock(conn: psycopg.Connection[Any]) -> None:
    """Wait for ``WRITE_LOCK`` inside the open transaction (reentrant: taking
    it twice in one transaction is a no-op)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
