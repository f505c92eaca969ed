"""A fresh PostgreSQL database per test at ``CONSENTRY_TEST_PG_DSN`` (created
with a random name, dropped afterwards). Tests using ``pg_dsn`` are skipped,
loudly, when the variable is absent."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

PG_DSN = os.environ.get("CONSENTRY_TEST_PG_DSN")
needs_pg = pytest.mark.skipif(
    not PG_DSN,
    reason="CONSENTRY_TEST_PG_DSN is not set: PostgreSQL storage backend tests NOT RUN"
    " (.ci/run sets it)",
)


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The DSN of a new, empty database, dropped (connections terminated) on
    exit; skips, loudly, without CONSENTRY_TEST_PG_DSN."""
    if not PG_DSN:
        pytest.skip("CONSENTRY_TEST_PG_DSN is not set: PostgreSQL storage tests NOT RUN")
    name = f"consentry_{secrets.token_hex(6)}"
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(PG_DSN, dbname=name)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A new, empty database for the test."""
    with fresh_database() as dsn:
        yield dsn
