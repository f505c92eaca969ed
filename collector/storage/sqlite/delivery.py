"""What the forwarder reads and writes, over SQLite.

``SqliteDelivery`` is the ``storage.ports.DeliveryStorage`` of a data
directory: each lane gets a ``SqliteDeliveryReader`` (its own read-only
connection, so a slow lane never blocks another), and the forwarder's writes
are units of work for the group-commit writer (``Writer.run(unit)``). One
process delivers each outbox (the other worker processes do not), so rows are
read, not leased.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.storage.ports import DeliveryUnit, Drop, OutboxRow
from collector.storage.sqlite import outbox
from collector.storage.sqlite.connection import connect
from collector.storage.sqlite.graph import current_one_id
from collector.storage.sqlite.ledger import read_state
from consent.decide import ConsentState


class SqliteDeliveryReader:
    """Read-only views of the outbox, the ledger head and people's current
    OneID and consent, on a connection of its own (close it when done)."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, readonly=True)

    def close(self) -> None:
        self._conn.close()

    def due_rows(self, destination: str, now: float, limit: int) -> list[OutboxRow]:
        return outbox.due_rows(self._conn, destination, now, limit)

    def next_due(self, destination: str) -> float | None:
        return outbox.next_due(self._conn, destination)

    def backoff_until(self, destination: str) -> float | None:
        return outbox.backoff_until(self._conn, destination)

    def ledger_seq(self) -> int:
        return outbox.ledger_seq(self._conn)

    def person(self, one_id: int) -> tuple[int, bool]:
        return current_one_id(self._conn, one_id)

    def consent_state(self, one_id: int) -> ConsentState:
        return read_state(self._conn, one_id)

    def pending_erasures(self) -> list[tuple[int, str, list[int]]]:
        return outbox.pending_erasures(self._conn)


class SqliteDelivery:
    """``storage.ports.DeliveryStorage`` over the SQLite database at ``path``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def open_reader(self) -> SqliteDeliveryReader:
        return SqliteDeliveryReader(self._path)

    def listen(self, wake: Callable[[], None]) -> Callable[[], None] | None:
        return None  # commits in this process wake the lanes; the others' are polled

    def delivered(self, destination: str, rows: Sequence[OutboxRow], at: float) -> DeliveryUnit:
        return functools.partial(delivered_unit, destination, list(rows), at)

    def dropped(self, destination: str, drops: Sequence[Drop], at: float) -> DeliveryUnit:
        return functools.partial(dropped_unit, destination, drops, at)

    def retry(
        self,
        destination: str,
        plans: Sequence[tuple[int, float, bool, str]],
        at: float,
        backoff: tuple[float, str] | None,
    ) -> DeliveryUnit:
        return functools.partial(retry_unit, destination, list(plans), at, backoff)

    def in_flight(self, destination: str, n: int, at: float) -> DeliveryUnit:
        return functools.partial(outbox.set_in_flight, destination, n, at)

    def finish_erasure(
        self, erasure_id: int, status: str, deleted: int | None, detail: str | None, at: float
    ) -> DeliveryUnit:
        return functools.partial(finish_erasure_unit, erasure_id, status, deleted, detail, at)


def finish_erasure_unit(
    erasure_id: int,
    status: str,
    deleted: int | None,
    detail: str | None,
    at: float,
    conn: sqlite3.Connection,
) -> None:
    outbox.finish_erasure(conn, erasure_id, status, deleted, detail, at)


def delivered_unit(name: str, rows: list[OutboxRow], at: float, conn: sqlite3.Connection) -> None:
    outbox.record_delivered(conn, name, rows, at)
    outbox.set_in_flight(name, 0, at, conn)
    outbox.clear_backoff(name, conn)


def dropped_unit(name: str, drops: Sequence[Drop], at: float, conn: sqlite3.Connection) -> None:
    outbox.record_dropped(conn, name, drops, at)


def retry_unit(
    name: str,
    plans: list[tuple[int, float, bool, str]],
    at: float,
    backoff: tuple[float, str] | None,
    conn: sqlite3.Connection,
) -> None:
    """plans: (row id, next attempt at, dead?, error); ``backoff``: (until,
    reason) when the whole destination waits."""
    outbox.retry_rows(conn, plans)
    outbox.set_in_flight(name, 0, at, conn)
    if backoff is not None:
        outbox.set_backoff(name, backoff[0], backoff[1], conn)
