"""What the forwarder reads and writes, over the shared PostgreSQL database.

``PostgresDelivery`` is the ``storage.ports.DeliveryStorage`` of a replica.
Every replica's forwarder drains the same outboxes, so:

- ``due_rows`` *claims* the rows it returns (``outbox.claim``: ``FOR UPDATE
  SKIP LOCKED`` and a lease of ``lease_s`` seconds); the delivered, dropped
  and retry units release them (by deleting the rows or clearing the lease).
  A replica that dies mid-batch only delays its rows until the lease runs
  out; another replica then sends them again (at-least-once, ``messageId``
  the idempotency key).
- ``pending_erasures`` holds each erasure it returns with a session-level
  advisory lock (``ERASURE_LOCK`` and the erasure id) until the reader is
  closed: two replicas never propagate the same erasure at the same time, and
  a replica that dies releases its locks with its session. An erasure already
  finished when the lock is taken is skipped.
- ``person`` and ``consent_state`` read the database at send time, so a
  withdrawal or an erasure committed by any replica stops every replica's
  forwarding.
- ``listen`` wakes the lanes when any replica commits new rows (``LISTEN
  consentry_outbox``; the writer's commit sends the ``NOTIFY``), so they need
  not wait for their poll.

Each reader has its own connection (autocommit: every read sees what was
committed before it), and reconnects on its next read when the server went
away, so a lane heals after a database restart.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from collector.storage.ports import DeliveryUnit, Drop, OutboxRow
from collector.storage.postgres import outbox
from collector.storage.postgres.connection import connect
from collector.storage.postgres.ledger import read_state
from consent.decide import ConsentState

log = logging.getLogger("consentry.forwarder")
Conn = psycopg.Connection[Any]
DEFAULT_LEASE_SECONDS = 30.0
# Two-key advisory locks (class, erasure id): a key space apart from the
# single-key WRITE_LOCK.
ERASURE_LOCK = 0x436F6E73  # "Cons"


class PostgresDeliveryReader:
    """``storage.ports.DeliveryReader`` on a connection of its own."""

    def __init__(self, dsn: str, *, lease_s: float) -> None:
        self._dsn = dsn
        self._lease_s = lease_s
        self._conn: Conn = connect(dsn)

    def _c(self) -> Conn:
        if self._conn.closed:  # the server went away since: start a new session
            self._conn = connect(self._dsn)
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def due_rows(self, destination: str, now: float, limit: int) -> list[OutboxRow]:
        return outbox.claim(self._c(), destination, now=now, limit=limit, lease_s=self._lease_s)

    def next_due(self, destination: str) -> float | None:
        return outbox.next_due(self._c(), destination)

    def backoff_until(self, destination: str) -> float | None:
        return outbox.backoff_until(self._c(), destination)

    def ledger_seq(self) -> int:
        row = self._c().execute("SELECT coalesce(max(seq), 0) FROM consent_ledger").fetchone()
        return 0 if row is None else int(row[0])

    def person(self, one_id: int) -> tuple[int, bool]:
        return current_one_id(self._c(), one_id)

    def consent_state(self, one_id: int) -> ConsentState:
        return read_state(self._c(), one_id)

    def pending_erasures(self) -> list[tuple[int, str, list[int]]]:
        conn = self._c()
        rows = conn.execute(
            "SELECT id, destination, one_ids FROM erasures WHERE status = 'pending' ORDER BY id"
        ).fetchall()
        held: list[tuple[int, str, list[int]]] = []
        for erasure_id, destination, one_ids in rows:
            key = (ERASURE_LOCK, int(erasure_id) & 0x7FFFFFFF)
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            if got is None or not got[0]:
                continue  # another replica is propagating it
            # It may have been finished between the read and the lock.
            still = conn.execute(
                "SELECT 1 FROM erasures WHERE id = %s AND status = 'pending'", (erasure_id,)
            ).fetchone()
            if still is None:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
                continue
            held.append(
                (int(erasure_id), str(destination), [int(x) for x in str(one_ids).split(",") if x])
            )
        return held


def current_one_id(conn: Conn, one_id: int) -> tuple[int, bool]:
    """Follow merges; returns (OneID now, erased?) (a OneID unknown counts as erased)."""
    seen: set[int] = set()
    while True:
        row = conn.execute(
            "SELECT merged_into, erased_at FROM id_people WHERE one_id = %s", (one_id,)
        ).fetchone()
        if row is None or row[1] is not None:
            return one_id, True
        if row[0] is None or one_id in seen:
            return one_id, False
        seen.add(one_id)
        one_id = int(row[0])


class PostgresDelivery:
    """``storage.ports.DeliveryStorage`` over the database at ``dsn``; rows
    are leased for ``lease_s`` seconds when claimed."""

    def __init__(self, dsn: str, *, lease_s: float = DEFAULT_LEASE_SECONDS) -> None:
        self._dsn = dsn
        self._lease_s = lease_s

    def open_reader(self) -> PostgresDeliveryReader:
        return PostgresDeliveryReader(self._dsn, lease_s=self._lease_s)

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        return OutboxListener(self._dsn, wake).close

    def delivered(self, destination: str, rows: Sequence[OutboxRow], at: float) -> DeliveryUnit:
        return functools.partial(_delivered, destination, list(rows), at)

    def dropped(self, destination: str, drops: Sequence[Drop], at: float) -> DeliveryUnit:
        return functools.partial(_dropped, destination, list(drops), at)

    def retry(
        self,
        destination: str,
        plans: Sequence[tuple[int, float, bool, str]],
        at: float,
        backoff: tuple[float, str] | None,
    ) -> DeliveryUnit:
        return functools.partial(_retry, destination, list(plans), at, backoff)

    def in_flight(self, destination: str, n: int, at: float) -> DeliveryUnit:
        return functools.partial(_in_flight, destination, n, at)

    def finish_erasure(
        self, erasure_id: int, status: str, deleted: int | None, detail: str | None, at: float
    ) -> DeliveryUnit:
        return functools.partial(_finish_erasure, erasure_id, status, deleted, detail, at)


class OutboxListener:
    """Calls ``wake`` (thread-safe) whenever a replica committed outbox rows:
    a thread of its own, on a connection of its own that ``LISTEN``s on
    ``outbox.CHANNEL``. A lost connection is opened again after ``retry_s``
    (lanes still poll meanwhile). ``close()`` stops it."""

    def __init__(self, dsn: str, wake: Callable[[], None], *, retry_s: float = 1.0) -> None:
        self._dsn = dsn
        self._wake = wake
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consentry-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._dsn) as conn:
                    conn.execute(f"LISTEN {outbox.CHANNEL}")
                    while not self._stop.is_set():
                        # A burst of commits wakes the lanes once.
                        if any(True for _ in conn.notifies(timeout=0.5)):
                            self._wake()
            except psycopg.Error as exc:
                log.warning("outbox notifications interrupted (%s); listening again", exc)
                self._stop.wait(self._retry_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


# The units: the writer hands each the PostgresUnitOfWork (its ``conn`` is in
# the group's transaction).
def _delivered(name: str, rows: list[OutboxRow], at: float, uow: Any) -> None:
    outbox.record_delivered(uow.conn, name, rows, at)
    outbox.set_in_flight(uow.conn, name, 0, at)
    outbox.clear_backoff(uow.conn, name)


def _dropped(name: str, drops: list[Drop], at: float, uow: Any) -> None:
    outbox.record_dropped(uow.conn, name, drops, at)


def _retry(
    name: str,
    plans: list[tuple[int, float, bool, str]],
    at: float,
    backoff: tuple[float, str] | None,
    uow: Any,
) -> None:
    outbox.retry_rows(uow.conn, plans)
    outbox.set_in_flight(uow.conn, name, 0, at)
    if backoff is not None:
        outbox.set_backoff(uow.conn, name, backoff[0], backoff[1])


def _in_flight(name: str, n: int, at: float, uow: Any) -> None:
    outbox.set_in_flight(uow.conn, name, n, at)


def _finish_erasure(
    erasure_id: int, status: str, deleted: int | None, detail: str | None, at: float, uow: Any
) -> None:
    uow.conn.execute(
        "UPDATE erasures SET status = %s, remote_rows_deleted = %s, detail = %s, done_at = %s"
        " WHERE id = %s",
        (status, deleted, detail, at, erasure_id),
    )
