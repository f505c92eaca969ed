"""``SqliteUnitOfWork``: a SQLite connection that carries its stores.

``connect()`` creates connections of this class, so the group-commit writer
hands each unit of work one object that is both the transaction's connection
(for the storage adapters) and a ``collector.storage.ports.UnitOfWork`` (for
the pipeline, which sees only the stores).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from collector.storage.portable.dsr import SqlDsrStore
from collector.storage.portable.keys import SqlKeyLinks
from collector.storage.portable.outbox_admin import SqlOutboxAdmin
from collector.storage.sqlite.audit import SqliteAuditStore
from collector.storage.sqlite.decisions import SqliteDecisionStore
from collector.storage.sqlite.dedupe import SqliteDedupeStore
from collector.storage.sqlite.deliveries import SqliteDeliveryStore
from collector.storage.sqlite.erasures import SqliteErasureStore
from collector.storage.sqlite.graph import EPOCH_SQL, SqliteGraphStore
from collector.storage.sqlite.ledger import HEAD_SQL, SqliteLedgerStore, SqliteSubjectKeys
from collector.storage.sqlite.outbox import SqliteOutboxStore
from collector.storage.sqlite.quarantine import SqliteQuarantineStore
from collector.storage.sqlite.statements import SqliteStatements

# One statement for both heads: the ledger's (seq, hash) and the graph's epoch.
_HEADS_SQL = f"SELECT ({HEAD_SQL.replace('seq, hash', 'seq')}), ({HEAD_SQL.replace('seq, hash', 'hash')}), ({EPOCH_SQL})"


class SqliteUnitOfWork(sqlite3.Connection):
    """A connection with its stores (``graph_store``, ``ledger_store``,
    ``outbox``, ``decisions``, ``quarantine``, ``erasures``, ``deliveries``,
    ``dedupe``; ``outbox_admin``, ``audit``, ``dsr``, ``key_links``) bound to it.

    Also a ``ports.WriteUnitOfWork``: ``begin()`` is ``BEGIN IMMEDIATE``;
    ``commit()``, ``rollback()``, ``in_transaction`` and ``close()`` are the
    connection's own (with ``isolation_level=None`` they end the explicit
    transaction)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graph_store = SqliteGraphStore(self)
        self.ledger_store = SqliteLedgerStore(self)
        self.subject_keys = SqliteSubjectKeys(self)
        self.outbox = SqliteOutboxStore(self)
        self.decisions = SqliteDecisionStore(self)
        self.quarantine = SqliteQuarantineStore(self)
        self.erasures = SqliteErasureStore(self)
        self.deliveries = SqliteDeliveryStore(self)
        self.dedupe = SqliteDedupeStore(self)
        statements = SqliteStatements(self)
        self.outbox_admin = SqlOutboxAdmin(statements, in_flight="forwarder_state")
        self.audit = SqliteAuditStore(self)
        self.dsr = SqlDsrStore(statements)
        self.key_links = SqlKeyLinks(statements)

    def heads(self) -> tuple[tuple[int, bytes] | None, int]:
        seq, digest, epoch = self.execute(_HEADS_SQL).fetchone()
        return (None if seq is None else (seq, digest)), int(epoch or 0)

    def begin(self) -> None:
        self.execute("BEGIN IMMEDIATE")

    def ping(self) -> None:
        self.execute("SELECT 1").fetchone()
