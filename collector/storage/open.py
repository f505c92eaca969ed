"""Opening Consentry's own database outside ``consentry serve``: the unit of
work of the configured backend (``[storage] backend``), for the CLI's
commands and offline tools.

``open_uow(config)`` -> a ``ClosableUnitOfWork``: the SQLite file in the data
directory, or a PostgreSQL connection with the DSN from the environment
variable ``[storage] dsn_env``. Read-write opens bring the schema to the
newest version first (as ``serve`` does at start-up); ``readonly=True``
changes nothing, refuses writes, and on SQLite works on a read-only copy.
``transaction(uow)`` runs a command's changes as one transaction that waits
for the serving writers' lock, so a command and ingestion take turns.

Errors: ``StorageError`` when there is no database (a wrong ``--data-dir``, a
PostgreSQL database never migrated) or it cannot be reached; ``ConfigError``
when the DSN variable is unset.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Protocol

import psycopg

from collector.config import Config
from collector.errors import StorageError
from collector.storage.ports import UnitOfWork
from collector.storage.postgres import connection as pg_connection
from collector.storage.postgres.locks import take_write_lock
from collector.storage.postgres.migrate import version as pg_version
from collector.storage.postgres.unit import PostgresUnitOfWork
from collector.storage.sqlite import connection as sqlite_connection
from collector.storage.sqlite.migrate import version as sqlite_version
from collector.storage.sqlite.unit import SqliteUnitOfWork

__all__ = ["ClosableUnitOfWork", "migrate", "open_uow", "transaction"]


class ClosableUnitOfWork(UnitOfWork, Protocol):
    """A unit of work a command opened itself, and closes."""

    def close(self) -> None: ...


def open_uow(config: Config, *, readonly: bool = False) -> ClosableUnitOfWork:
    """The configured backend's unit of work on a connection of its own
    (autocommit: open ``transaction(uow)`` around changes)."""
    if config.storage.backend == "postgres":
        return _open_postgres(config, readonly=readonly)
    path = config.data_dir / sqlite_connection.DB_NAME
    if readonly:
        if not path.exists():
            raise StorageError(f"no database at {path}; is --data-dir right?")
        return sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, factory=SqliteUnitOfWork
        )
    if not config.data_dir.is_dir():
        raise StorageError(f"no data directory at {config.data_dir}; is --data-dir right?")
    return sqlite_connection.connect(path, upgrade=True)


def _open_postgres(config: Config, *, readonly: bool) -> PostgresUnitOfWork:
    dsn_env = config.storage.dsn_env
    dsn = pg_connection.dsn_from_env(dsn_env)
    try:
        conn = pg_connection.connect(dsn, upgrade=not readonly)
    except psycopg.OperationalError as exc:
        raise StorageError(
            f"cannot reach the PostgreSQL database named by {dsn_env}: {exc}"
        ) from None
    if readonly:
        conn.execute("SET default_transaction_read_only = on")
        if pg_version(conn) == 0:
            conn.close()
            raise StorageError(
                f"the PostgreSQL database named by {dsn_env} has no Consentry schema;"
                " run `consentry db migrate` (or start `consentry serve`) first"
            )
    return PostgresUnitOfWork(conn)


def migrate(config: Config) -> int:
    """Bring the configured database's schema to the newest version
    (``consentry db migrate``; on PostgreSQL under an advisory lock, safe
    while replicas start) and return the version reached. A missing SQLite
    data directory is created."""
    if config.storage.backend != "postgres":
        config.data_dir.mkdir(parents=True, exist_ok=True)
    uow = open_uow(config)
    try:
        if isinstance(uow, PostgresUnitOfWork):
            return pg_version(uow.conn)
        assert isinstance(uow, SqliteUnitOfWork)
        return sqlite_version(uow)
    finally:
        uow.close()


@contextlib.contextmanager
def transaction(uow: UnitOfWork) -> Iterator[None]:
    """One transaction on a unit of work from ``open_uow``: committed when
    the block ends, rolled back if it raises. It first takes the write lock
    the serving writers share (SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's
    ``locks.WRITE_LOCK``), so it never interleaves with a batch."""
    if isinstance(uow, PostgresUnitOfWork):
        with uow.conn.transaction():
            take_write_lock(uow.conn)
            yield
        return
    assert isinstance(uow, SqliteUnitOfWork), type(uow)
    uow.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        uow.execute("ROLLBACK")
        raise
    uow.execute("COMMIT")
