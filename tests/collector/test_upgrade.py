"""A data directory written by the release before versioned schema (commit
0129e50, tests/fixtures/make_datadir_0129e50.py) opens with the current code
and is upgraded in place: nothing it held is lost, the ledger still verifies,
its queued rows are delivered. And the migrator applies files in order, once."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from collector.errors import StorageError
from collector.storage.sqlite.migrate import migrate, migrations, statements, version
from tests.conftest import ServerFactory, cli, read_jsonl, wait_for

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "datadir-0129e50"
CONFIG = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""


def _counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("consent_ledger", "consent_checkpoints", "id_links", "id_merges")
        }
    finally:
        conn.close()


def test_a_0129e50_data_dir_is_upgraded_in_place(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    db = data / "consentry.db"
    conn = sqlite3.connect(db)
    assert version(conn) == 0
    queued = [r[0] for r in conn.execute("SELECT message_id FROM outbox ORDER BY id")]
    conn.close()
    assert queued == [f"old-{i}" for i in range(1, 6)]
    before = _counts(db)

    master = (data / "master.key").read_text().strip()
    server = server_factory(CONFIG, env={"CONSENTRY_MASTER_KEY": master}).start()

    conn = sqlite3.connect(db)
    assert version(conn) == migrations()[-1][0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    columns = {r[1] for r in conn.execute("PRAGMA table_info(consent_state)")}
    conn.close()
    assert {"consent_subject_keys", "webhook_deliveries", "destination_backoff"} <= tables
    assert {"scope", "notice"} <= columns
    # The rows queued by the old release reach the destination.
    delivered = wait_for(
        lambda: got if len(got := read_jsonl(data / "out")) >= len(queued) else None
    )
    assert delivered and [m["messageId"] for m in delivered] == queued
    # The old ledger and graph are intact and the chain verifies.
    after = _counts(db)
    assert {k: after[k] for k in ("consent_checkpoints", "id_merges")} == {
        k: before[k] for k in ("consent_checkpoints", "id_merges")
    }
    assert after["consent_ledger"] >= before["consent_ledger"]
    verified = cli(server, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The person the old release knew is still known: a new event of theirs
    # resolves to the same OneID (no new link for their user id).
    links = after["id_links"]
    ok = server.post(
        "/v1/track", {"userId": "upgrade-user", "event": "Again", "messageId": "new-1"}
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    assert _counts(db)["id_links"] == links


def test_migrations_apply_in_order_once_and_refuse_a_newer_database(tmp_path: Path) -> None:
    steps = tmp_path / "schema"
    steps.mkdir()
    (steps / "0002_second.sql").write_text(
        "-- a comment; with a semicolon\nALTER TABLE t ADD COLUMN b TEXT;\n"
        "CREATE TRIGGER t_b AFTER INSERT ON t BEGIN UPDATE t SET b = 'x'; END;\n"
    )
    (steps / "0001_first.sql").write_text("CREATE TABLE t (a INTEGER);\n")
    available = migrations(steps)
    assert [n for n, _, _ in available] == [1, 2]
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn, available) == 2
    assert migrate(conn, available) == 2  # nothing left to do
    conn.execute("INSERT INTO t (a) VALUES (1)")
    assert conn.execute("SELECT a, b FROM t").fetchall() == [(1, "x")]
    # A database from a newer Consentry is refused, not changed.
    conn.execute("PRAGMA user_version = 9")
    with pytest.raises(StorageError, match="newer"):
        migrate(conn, available)
    assert version(conn) == 9


def test_schema_files_are_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError, match="without gaps"):
        migrations(tmp_path)
    assert statements("CREATE TABLE x (a);\n-- trailing comment\n") == ["CREATE TABLE x (a);"]
