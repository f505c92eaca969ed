"""Opening Consentry's PostgreSQL database.

Every connection runs with ``synchronous_commit = on``: a commit returns once
its WAL is flushed (and, with synchronous standbys configured by the
operator, replicated), so an acknowledged event survives a crash as it does
with SQLite's ``synchronous=FULL``. The DSN comes from the environment
variable named by ``[storage] dsn_env`` (default ``CONSENTRY_DATABASE_DSN``),
never from the configuration file (it may carry a password).
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from collector.errors import ConfigError
from collector.storage.postgres.migrate import migrate

DEFAULT_DSN_ENV = "CONSENTRY_DATABASE_DSN"


def dsn_from_env(dsn_env: str = DEFAULT_DSN_ENV) -> str:
    """The DSN in ``os.environ[dsn_env]``; raises ConfigError naming the
    variable when it is unset or empty."""
    dsn = os.environ.get(dsn_env, "").strip()
    if not dsn:
        raise ConfigError(
            f'[storage] backend = "postgres" needs the database DSN in the environment'
            f" variable {dsn_env}, which is unset"
        )
    return dsn


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET synchronous_commit = on")
    conn.execute("SET application_name = 'consentry'")


def connect(dsn: str, *, upgrade: bool = False) -> psycopg.Connection[Any]:
    """One connection in autocommit mode (transactions are explicit, as with
    SQLite), ``synchronous_commit = on``. ``upgrade``: bring the schema to the
    newest version first (safe with several replicas starting at once)."""
    conn = psycopg.connect(dsn, autocommit=True)
    _configure(conn)
    if upgrade:
        migrate(conn)
    return conn


def pool(dsn: str, *, min_size: int = 1, max_size: int = 4) -> ConnectionPool:
    """A connection pool (psycopg_pool) for the readers of one replica (the
    forwarder lanes, the console, health checks): connections in autocommit
    mode with ``synchronous_commit = on``; opened at once, closed by the caller."""

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.autocommit = True
        _configure(conn)

    return ConnectionPool(dsn, min_size=min_size, max_size=max_size, configure=configure, open=True)
