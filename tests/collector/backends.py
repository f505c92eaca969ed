"""Storage tests on both backends: the ``backend`` fixture (params ``sqlite``
and ``postgres``) hands a test a fresh database and opens units of work on
it, through the same ``open_uow`` the CLI uses.

SQLite: a file under ``tmp_path``. PostgreSQL: one database per test module
(at ``CONSENTRY_TEST_PG_DSN``), and a schema of its own per test (selected by
``search_path`` in the DSN), so a test costs a migration, not a database.
The postgres param is skipped, loudly, when the variable is absent."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from collector import config
from collector.storage.open import ClosableUnitOfWork, open_uow
from collector.storage.postgres.statements import PostgresStatements
from collector.storage.postgres.unit import PostgresUnitOfWork
from collector.storage.sqlite.statements import SqliteStatements
from collector.storage.sqlite.unit import SqliteUnitOfWork
from tests.collector.pg import fresh_database

DSN_ENV = "CONSENTRY_TEST_BACKEND_DSN"


@dataclass
class Backend:
    """One fresh database of one backend. ``toml`` is the ``[storage]``
    section that selects it; ``env`` the environment a command needs."""

    name: str
    data_dir: Path
    toml: str
    env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch

    def config_path(self, extra: str = "") -> Path:
        """A configuration file selecting this backend, with ``extra`` TOML
        after the ``[storage]`` section; the environment is set for it."""
        path = self.data_dir.parent / f"{self.name}.toml"
        path.write_text(self.toml + extra)
        for key, value in self.env.items():
            self.monkeypatch.setenv(key, value)
        return path

    def config(self, extra: str = "") -> config.Config:
        return config.load(self.config_path(extra), data_dir=str(self.data_dir))

    def open(self, *, readonly: bool = False) -> ClosableUnitOfWork:
        return open_uow(self.config(), readonly=readonly)

    def run(self, uow: ClosableUnitOfWork, sql: str, args: Sequence[object] = ()) -> int:
        """A change in test setup (``?`` placeholders) the ports do not offer."""
        return _statements(uow).change(sql, args)

    def rows(
        self, uow: ClosableUnitOfWork, sql: str, args: Sequence[object] = ()
    ) -> list[tuple[Any, ...]]:
        return _statements(uow).rows(sql, args)


def _statements(uow: ClosableUnitOfWork) -> SqliteStatements | PostgresStatements:
    if isinstance(uow, PostgresUnitOfWork):
        return PostgresStatements(uow.conn)
    assert isinstance(uow, SqliteUnitOfWork)
    return SqliteStatements(uow)


@pytest.fixture(scope="module")
def pg_module_dsn() -> Iterator[str]:
    """A database for the whole module; dropped (connections terminated) after it."""
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        yield Backend("sqlite", data_dir, "[storage]\nbackend = 'sqlite'\n", {}, monkeypatch)
        return
    dsn = request.getfixturevalue("pg_module_dsn")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    toml = f"[storage]\nbackend = 'postgres'\ndsn_env = '{DSN_ENV}'\n"
    env = {DSN_ENV: make_conninfo(dsn, options=f"-c search_path={schema}")}
    try:
        yield Backend("postgres", data_dir, toml, env, monkeypatch)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
