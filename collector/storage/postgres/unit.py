"""``PostgresUnitOfWork``: one PostgreSQL connection with its stores, the
``collector.storage.ports.UnitOfWork`` a replica's writer hands each batch.

``heads()`` is the first thing a write transaction does: it takes the write
lock (``locks.WRITE_LOCK``) and then reads the ledger head and the graph
epoch in one statement, so the in-memory caches (ledger head and consent
states, cached links) are re-synchronized with what other replicas committed
before anything is decided on them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from collector.storage.postgres.graph import EPOCH_SQL, PostgresGraphStore
from collector.storage.postgres.ledger import HEAD_SQL, PostgresLedgerStore, PostgresSubjectKeys
from collector.storage.postgres.locks import take_write_lock
from collector.storage.postgres.outbox import PostgresOutboxStore
from collector.storage.postgres.stores import (
    PostgresDecisionStore,
    PostgresDedupeStore,
    PostgresDeliveryStore,
    PostgresErasureStore,
    PostgresQuarantineStore,
)

_HEADS_SQL = (
    f"SELECT ({HEAD_SQL.replace('seq, hash', 'seq')}),"
    f" ({HEAD_SQL.replace('seq, hash', 'hash')}), ({EPOCH_SQL})"
)


class PostgresUnitOfWork:
    """The stores of one connection (autocommit; transactions explicit)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.graph_store = PostgresGraphStore(conn)
        self.ledger_store = PostgresLedgerStore(conn)
        self.subject_keys = PostgresSubjectKeys(conn)
        self.outbox = PostgresOutboxStore(conn)
        self.decisions = PostgresDecisionStore(conn)
        self.quarantine = PostgresQuarantineStore(conn)
        self.erasures = PostgresErasureStore(conn)
        self.deliveries = PostgresDeliveryStore(conn)
        self.dedupe = PostgresDedupeStore(conn)

    def heads(self) -> tuple[tuple[int, bytes] | None, int]:
        """(ledger head or None, graph epoch); inside a transaction it takes
        the write lock first."""
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            take_write_lock(self.conn)
        row = self.conn.execute(_HEADS_SQL).fetchone()
        assert row is not None
        seq, digest, epoch = row
        return (None if seq is None else (int(seq), bytes(digest))), int(epoch or 0)

    def ping(self) -> None:
        self.conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self.conn.close()
