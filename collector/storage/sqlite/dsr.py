"""Data subject requests, the access log and a person's facts on a SQLite
connection: the ``portable.dsr`` store as functions, for the callers not yet
handed ``uow.dsr`` (schema version 7). Times are Unix seconds."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from collector.storage.portable.dsr import SqlDsrStore
from collector.storage.ports import AccessEntry, DestinationCount
from collector.storage.sqlite.statements import SqliteStatements

__all__ = ["AccessEntry", "DestinationCount"]


def _store(conn: sqlite3.Connection) -> SqlDsrStore:
    return SqlDsrStore(SqliteStatements(conn))


def save_request(
    conn: sqlite3.Connection,
    *,
    id: str,
    type: str,
    state: str,
    received_at: float,
    due_at: float,
    body: bytes,
) -> None:
    _store(conn).save_request(
        id=id, type=type, state=state, received_at=received_at, due_at=due_at, body=body
    )


def load_request(conn: sqlite3.Connection, id: str) -> bytes | None:
    return _store(conn).load_request(id)


def list_requests(conn: sqlite3.Connection) -> list[bytes]:
    return _store(conn).list_requests()


def log_access(conn: sqlite3.Connection, entry: AccessEntry) -> None:
    _store(conn).log_access(entry)


def access_log(
    conn: sqlite3.Connection, *, subject: str | None = None, limit: int = 1000
) -> list[AccessEntry]:
    return _store(conn).access_log(subject=subject, limit=limit)


def identifier_kinds(
    conn: sqlite3.Connection, one_ids: Sequence[int]
) -> list[tuple[str, int, str, str]]:
    return _store(conn).identifier_kinds(one_ids)


def destination_counts(conn: sqlite3.Connection, one_ids: Sequence[int]) -> list[DestinationCount]:
    return _store(conn).destination_counts(one_ids)


def decision_totals(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return _store(conn).decision_totals()


def pseudonyms(conn: sqlite3.Connection, one_ids: Sequence[int]) -> list[tuple[str, str]]:
    return _store(conn).pseudonyms(one_ids)
