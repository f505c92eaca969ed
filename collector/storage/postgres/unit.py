"""``PostgresUnitOfWork``: one PostgreSQL connection with its stores, the
``collector.storage.ports.UnitOfWork`` a replica's writer hands each batch.

``heads()`` is the first thing a write transaction does: it takes the write
lock (``locks.WRITE_LOCK``) and then reads the ledger head and the graph
epoch in one statement, so the in-memory caches (ledger head and consent
states, cached links) are re-synchronized with what other replicas committed
before anything is decided on them.

It is also the writer's ``ports.WriteUnitOfWork``: ``begin()`` is ``BEGIN``
(the lock comes with ``heads()``), ``commit()`` refuses to report a commit
that PostgreSQL turned into a rollback. When the DSN is known, a connection
that broke (the server restarted) is replaced in ``begin()``: at once when
the break shows at ``BEGIN`` (nothing ran yet), else in the next group's,
after the writer answered the group that met it with the error. Every store
then runs on the new connection.
"""

from __future__ import annotations

from typing import Any

import psycopg

from collector.errors import StorageError
from collector.storage.portable.dsr import SqlDsrStore
from collector.storage.portable.keys import SqlKeyLinks
from collector.storage.portable.outbox_admin import SqlOutboxAdmin
from collector.storage.postgres.audit import PostgresAuditStore
from collector.storage.postgres.connection import connect
from collector.storage.postgres.graph import EPOCH_SQL, PostgresGraphStore
from collector.storage.postgres.ledger import HEAD_SQL, PostgresLedgerStore, PostgresSubjectKeys
from collector.storage.postgres.locks import take_write_lock
from collector.storage.postgres.outbox import CHANNEL, PostgresOutboxStore
from collector.storage.postgres.statements import PostgresStatements
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


_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)


class PostgresUnitOfWork:
    """The stores of one connection (autocommit; transactions explicit).
    ``dsn``: where to reconnect when the connection breaks (None: never)."""

    def __init__(self, conn: psycopg.Connection[Any], *, dsn: str | None = None) -> None:
        self.conn = conn
        self._dsn = dsn
        self.graph_store = PostgresGraphStore(conn)
        self.ledger_store = PostgresLedgerStore(conn)
        self.subject_keys = PostgresSubjectKeys(conn)
        self.outbox = PostgresOutboxStore(conn)
        self.decisions = PostgresDecisionStore(conn)
        self.quarantine = PostgresQuarantineStore(conn)
        self.erasures = PostgresErasureStore(conn)
        self.deliveries = PostgresDeliveryStore(conn)
        self.dedupe = PostgresDedupeStore(conn)

    # Made on each use (cheap), so they follow ``self.conn`` if it is replaced.
    @property
    def outbox_admin(self) -> SqlOutboxAdmin:
        return SqlOutboxAdmin(PostgresStatements(self.conn), in_flight="leases")

    @property
    def audit(self) -> PostgresAuditStore:
        return PostgresAuditStore(self.conn)

    @property
    def dsr(self) -> SqlDsrStore:
        return SqlDsrStore(PostgresStatements(self.conn))

    @property
    def key_links(self) -> SqlKeyLinks:
        return SqlKeyLinks(PostgresStatements(self.conn))

    def heads(self) -> tuple[tuple[int, bytes] | None, int]:
        """(ledger head or None, graph epoch); inside a transaction it takes
        the write lock first."""
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            # One round trip for both, in order: the read is a statement of
            # its own, so its snapshot is taken once the lock is granted. Each
            # round trip under the lock hands the GIL to the event loop thread,
            # which may keep it for the whole switch interval (5 ms).
            with self.conn.pipeline():
                take_write_lock(self.conn)
                cur = self.conn.execute(_HEADS_SQL)
            row = cur.fetchone()
        else:
            row = self.conn.execute(_HEADS_SQL).fetchone()
        assert row is not None
        seq, digest, epoch = row
        return (None if seq is None else (int(seq), bytes(digest))), int(epoch or 0)

    def ping(self) -> None:
        self.conn.execute("SELECT 1").fetchone()

    # -- the writer's transaction (ports.WriteUnitOfWork) ---------------------
    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status in _OPEN

    def begin(self) -> None:
        if self.conn.closed and self._dsn is not None:
            self._reconnect(self._dsn)
        self.outbox.queued = False
        try:
            self.conn.execute("BEGIN")
        except psycopg.OperationalError:
            # The session died while idle (found out only now): nothing of this
            # transaction ran yet, so a new session may start it.
            if self._dsn is None or not self.conn.closed:
                raise
            self._reconnect(self._dsn)
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        # NOTIFY and COMMIT in one round trip (the write lock is held until
        # the COMMIT is done). A failing NOTIFY aborts the pipeline: COMMIT is
        # not run and the error reaches the writer, which rolls back.
        with self.conn.pipeline():
            if self.outbox.queued:
                # Delivered with the commit, to every replica's listening forwarder.
                self.conn.execute(f"NOTIFY {CHANNEL}")
            done = self.conn.execute("COMMIT")
        # COMMIT of a transaction in which a statement failed is answered
        # "ROLLBACK", not an error: nothing may be acknowledged then.
        status = done.statusmessage
        if status != "COMMIT":
            raise StorageError(f"the transaction was not committed (PostgreSQL said {status})")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def _reconnect(self, dsn: str) -> None:
        """A new session for this unit of work and every store bound to the old one."""
        old, new = self.conn, connect(dsn)
        for store in vars(self).values():
            if getattr(store, "conn", None) is old:
                store.conn = new
        self.conn = new
