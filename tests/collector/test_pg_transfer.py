"""`consentry migrate-storage --from sqlite --to postgres` on a real SQLite
data directory into a real PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.errors import StorageError
from collector.storage.postgres.connection import connect
from collector.storage.postgres.graph import PostgresGraphStore
from collector.storage.postgres.ledger import PostgresLedgerStore
from collector.storage.postgres.transfer import transfer
from collector.storage.postgres.unit import PostgresUnitOfWork
from collector.storage.sqlite.connection import DB_NAME, open_database
from consent.ledger import Ledger, verify
from identity import Graph, Identifier, Keyring, Pseudonymizer
from tests.collector.pg import needs_pg, pg_dsn

__all__ = ["pg_dsn"]
pytestmark = needs_pg
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ps = Pseudonymizer(Keyring.generate())


def ident(kind: str, value: str) -> Identifier:
    return Identifier(kind, ps.pseudonym(kind, value))


def data_dir(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """A data directory written through the SQLite stores: people (one merged),
    a signed ledger, outbox rows and dedupe keys."""
    directory = tmp_path / "data"
    directory.mkdir()
    db = open_database(directory / DB_NAME)
    graph = Graph(db.graph_store)
    ledger = Ledger(db.ledger_store, signer=Ed25519PrivateKey.generate(), checkpoint_every=4)
    ids = {}
    for p in range(5):
        ids[f"p{p}"] = int(graph.resolve([ident("user_id", f"u{p}")]).one_id)
    anon = int(graph.resolve([ident("anonymous_id", "a0")]).one_id)
    merged = graph.resolve([ident("user_id", "u0"), ident("anonymous_id", "a0")])
    assert merged.merged == (anon,)
    db.execute("BEGIN IMMEDIATE")
    for i in range(10):
        at = T0 + timedelta(minutes=i)
        ledger.append(
            one_id=ids[f"p{i % 5}"],
            subject=f"ps1.k1.s{i}",
            purposes={"analytics": i % 3 != 0},
            jurisdiction="GDPR",
            method="banner_accept",
            given_at=at,
            received_at=at,
            notice_id="banner",
            notice_version="4",
        )
        if ledger.due(at):
            ledger.checkpoint(at)
    db.outbox.insert([("lake", f"m{i}", ids["p1"], "GDPR", 0, "", 1.0, b"{}") for i in range(7)])
    db.dedupe.seen([11, 12, 13], now=1.0, window_s=3600)
    db.execute("COMMIT")
    db.close()
    return directory, ids


def test_transfer_moves_everything_and_the_ledger_verifies(pg_dsn: str, tmp_path: Path) -> None:
    directory, ids = data_dir(tmp_path)
    report = transfer(directory / DB_NAME, connect(pg_dsn, upgrade=True), now=2.0)
    assert report.ledger_records == 10 and report.head_seq == 10
    assert report.rows["outbox"] == 7 and report.rows["dedupe_seen"] == 3
    conn = connect(pg_dsn)
    assert verify(PostgresLedgerStore(conn)).ok
    graph = Graph(PostgresGraphStore(conn))
    # same OneIDs, merge followed, and a new person gets an id past the copied ones
    assert graph.lookup(ident("anonymous_id", "a0").pseudonym) == ids["p0"]
    fresh = int(graph.resolve([ident("user_id", "new")]).one_id)
    assert fresh > max(ids.values()) + 1
    uow = PostgresUnitOfWork(conn)
    with conn.transaction():
        assert uow.dedupe.seen([11, 99], now=3.0, window_s=3600) == {11}
    assert uow.outbox.depth() == [("lake", 7)]
    source = open_database(directory / DB_NAME)
    for one_id in ids.values():  # effective consent state moved as it was
        assert uow.ledger_store.state(one_id) == source.ledger_store.state(one_id)
    p1 = uow.ledger_store.state(ids["p1"]).purposes["analytics"]
    assert not p1.granted and p1.record_id == 7  # its last record (i = 6) withdrew
    # a second move into the same database is refused, nothing changes
    with pytest.raises(StorageError, match="already holds data"):
        transfer(directory / DB_NAME, conn)


def test_migrate_storage_command(pg_dsn: str, tmp_path: Path) -> None:
    directory, _ = data_dir(tmp_path)
    cfg = tmp_path / "consentry.toml"
    cfg.write_text('[storage]\ndsn_env = "CONSENTRY_PG_UNDER_TEST"\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "migrate-storage",
            "--from",
            "sqlite",
            "--to",
            "postgres",
            "--config",
            str(cfg),
            "--data-dir",
            str(directory),
        ],
        env={**os.environ, "CONSENTRY_PG_UNDER_TEST": pg_dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "outbox: 7 rows" in done.stdout
    assert done.stdout.strip().endswith("ledger verified on PostgreSQL: 10 records, head seq 10")

    # `consentry audit` reads the PostgreSQL backend: verify, export
    cfg.write_text('[storage]\nbackend = "postgres"\ndsn_env = "CONSENTRY_PG_UNDER_TEST"\n')

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "collector.cli",
                "audit",
                *args,
                "--config",
                str(cfg),
                "--data-dir",
                str(tmp_path / "elsewhere"),
            ],
            env={**os.environ, "CONSENTRY_PG_UNDER_TEST": pg_dsn},
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = audit("verify")
    assert ok.returncode == 0, ok.stderr + ok.stdout
    exported = audit("export", "--format", "json")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.count('"seq"') == 10
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # tamper with one record
        conn.execute("UPDATE consent_ledger SET body = body || '\\x20'::bytea WHERE seq = 5")
    bad = audit("verify")
    assert bad.returncode == 1 and "5" in bad.stdout + bad.stderr
