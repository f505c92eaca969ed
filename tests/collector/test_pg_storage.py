"""The PostgreSQL storage backend (issue 18) against a real PostgreSQL:
concurrent migrators, serialized ledger appends across connections, one OneID
when several connections resolve the same new person at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.errors import ConfigError, StorageError
from collector.storage.postgres.connection import connect, dsn_from_env, pool
from collector.storage.postgres.graph import PostgresGraphStore
from collector.storage.postgres.ledger import PostgresLedgerStore
from collector.storage.postgres.migrate import migrate, migrations, version
from consent.ledger import Ledger, verify
from identity import Graph, Identifier, Keyring, Pseudonymizer
from tests.collector.pg import needs_pg, pg_dsn

__all__ = ["pg_dsn"]
pytestmark = needs_pg

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ps = Pseudonymizer(Keyring.generate())


def ident(kind: str, value: str) -> Identifier:
    return Identifier(kind, ps.pseudonym(kind, value))


def run_together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` on n threads released at the same moment; re-raise errors."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_concurrent_migrators_apply_each_file_once(pg_dsn: str) -> None:
    newest = migrations()[-1][0]

    def start(_: int) -> int:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            return migrate(conn)

    assert run_together(6, start) == [newest] * 6
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT version FROM consentry_schema ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, newest + 1))
        assert conn.execute("SELECT n FROM id_epoch").fetchall() == [(0,)]  # seeded once
        assert version(conn) == newest
        assert migrate(conn) == newest  # again: nothing to do


def test_a_database_newer_than_the_code_is_refused(pg_dsn: str) -> None:
    conn = connect(pg_dsn, upgrade=True)
    conn.execute("INSERT INTO consentry_schema (version, name) VALUES (999, '0999_future.sql')")
    with pytest.raises(StorageError, match="schema version 999"):
        migrate(conn)
    # the advisory lock was released: another migrator is not blocked
    other = psycopg.connect(pg_dsn, autocommit=True)
    other.execute("SET lock_timeout = '2s'")
    with pytest.raises(StorageError):
        migrate(other)


def test_connections_commit_synchronously(pg_dsn: str) -> None:
    conn = connect(pg_dsn, upgrade=True)
    assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    with pool(pg_dsn, max_size=2) as p, p.connection() as pooled:
        assert pooled.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert pooled.autocommit


def test_missing_dsn_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENTRY_TEST_UNSET_DSN", raising=False)
    with pytest.raises(ConfigError, match="CONSENTRY_TEST_UNSET_DSN"):
        dsn_from_env("CONSENTRY_TEST_UNSET_DSN")


def test_appends_from_several_connections_form_one_verified_chain(pg_dsn: str) -> None:
    connect(pg_dsn, upgrade=True).close()
    key = Ed25519PrivateKey.generate()
    per_writer, writers = 25, 4

    def writer(w: int) -> int:
        conn = connect(pg_dsn)
        store = PostgresLedgerStore(conn)
        ledger = Ledger(store, signer=key, checkpoint_every=7, checkpoint_seconds=3600)
        for i in range(per_writer):
            at = T0 + timedelta(seconds=i)
            with conn.transaction():
                ledger.sync(store.head())  # takes the write lock, as the writer's heads()
                ledger.append(
                    one_id=w * 1000 + i % 5 + 1,
                    subject=f"ps1.k1.s{w}-{i}",
                    purposes={"analytics": (i + w) % 2 == 0},
                    jurisdiction="GDPR",
                    method="banner_accept",
                    given_at=at,
                    received_at=at,
                    notice_id="banner",
                    notice_version="4",
                )
                if ledger.due(at):
                    ledger.checkpoint(at)
        conn.close()
        return w

    run_together(writers, writer)
    conn = connect(pg_dsn)
    result = verify(PostgresLedgerStore(conn), key.public_key())
    assert result.ok, result.problem
    assert result.records == per_writer * writers
    assert result.last_checkpoint is not None
    # the effective state matches each person's last record
    state = PostgresLedgerStore(conn).state(1001)
    assert set(state.purposes) == {"analytics"}


def test_same_new_person_on_several_connections_gets_one_one_id(pg_dsn: str) -> None:
    connect(pg_dsn, upgrade=True).close()
    people = [
        [ident("user_id", f"u{p}"), ident("anonymous_id", f"a{p}-{k}")]
        for p in range(10)
        for k in range(1)
    ]

    def replica(r: int) -> list[int]:
        graph = Graph(PostgresGraphStore(connect(pg_dsn)))
        # each replica sees the person first under its own anonymous id, then logs in
        out = []
        for p, ids in enumerate(people):
            anon = ident("anonymous_id", f"a{p}-r{r}")
            out.append(int(graph.resolve([ids[0], anon]).one_id))
        return out

    results = run_together(4, replica)
    for p in range(len(people)):
        assert len({results[r][p] for r in range(4)}) == 1, f"person {p}: {results}"
    conn = connect(pg_dsn)
    row = conn.execute("SELECT count(DISTINCT one_id) FROM id_links").fetchone()
    assert row == (len(people),)


def test_concurrent_merges_of_overlapping_clusters_end_in_one(pg_dsn: str) -> None:
    connect(pg_dsn, upgrade=True).close()
    setup = Graph(PostgresGraphStore(connect(pg_dsn)))
    anons = [ident("anonymous_id", f"anon-{i}") for i in range(6)]
    for a in anons:
        setup.resolve([a])
    email = ident("email", "shared@example.com")
    limits = {"anonymous_id": 4, "email": 1, "user_id": 1}

    def replica(r: int) -> int:
        graph = Graph(PostgresGraphStore(connect(pg_dsn)), limits=limits)
        # every replica links the same email with two anonymous ids, overlapping
        return int(graph.resolve([email, anons[r], anons[(r + 1) % 6]]).one_id)

    results = run_together(6, replica)
    assert len(set(results)) == 1
    store = PostgresGraphStore(connect(pg_dsn))
    counts = store.counts(results[0])
    assert counts["email"] == 1 and counts["anonymous_id"] <= 4


def consentry(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "consentry.toml"
    cfg.write_text('[storage]\nbackend = "postgres"\ndsn_env = "CONSENTRY_PG_UNDER_TEST"\n')
    base = {k: v for k, v in os.environ.items() if k != "CONSENTRY_PG_UNDER_TEST"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            *args,
            "--config",
            str(cfg),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_db_migrate_command(pg_dsn: str, tmp_path: Path) -> None:
    newest = migrations()[-1][0]
    done = consentry(tmp_path, {"CONSENTRY_PG_UNDER_TEST": pg_dsn}, "db", "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"schema version {newest} (postgres)"
    again = consentry(tmp_path, {"CONSENTRY_PG_UNDER_TEST": pg_dsn}, "db", "migrate")
    assert again.returncode == 0 and again.stdout == done.stdout
    unset = consentry(tmp_path, {}, "db", "migrate")
    assert unset.returncode == 2 and "CONSENTRY_PG_UNDER_TEST" in unset.stderr
    check = consentry(tmp_path, {}, "config")
    assert check.returncode == 2 and "CONSENTRY_PG_UNDER_TEST" in check.stderr
