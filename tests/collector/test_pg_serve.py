"""`consentry serve` on PostgreSQL (issue 18), one replica: ingest, forward,
gauges and readiness; a replica whose database sessions are cut (as by a
server restart) heals without a restart; an unset DSN stops it before
anything is made; `consentry forward --once` delivers what was queued."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psycopg

from tests.collector.pg import needs_pg, pg_dsn
from tests.conftest import Server, cli, read_jsonl, wait_for

__all__ = ["pg_dsn"]
pytestmark = needs_pg

CONFIG = """
[storage]
backend = "postgres"
dsn_env = "CONSENTRY_PG_UNDER_TEST"
lease_seconds = 2
"""
CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


def _event(message_id: str, user: str) -> dict[str, object]:
    return {
        "type": "track",
        "event": "E",
        "userId": user,
        "messageId": message_id,
        "context": CONSENTED,
    }


def _cut_sessions(dsn: str) -> int:
    """Terminate every other session on the test's database, as a server
    restart would; returns how many."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_serve_ingests_and_forwards_from_postgres_and_heals_after_a_restart(
    pg_dsn: str, tmp_path: Path
) -> None:
    server = Server(
        tmp_path / "data", CONFIG, env={"CONSENTRY_PG_UNDER_TEST": pg_dsn}, args=["--workers", "1"]
    )
    try:
        server.start()
        batch = [_event(f"m-{i}", f"user-{i % 3}") for i in range(6)]
        assert server.post("/v1/batch", {"batch": batch}).status_code == 200
        out = tmp_path / "data" / "out"
        got = wait_for(lambda: len(read_jsonl(out)) >= 6)
        assert got, read_jsonl(out)
        with psycopg.connect(pg_dsn) as conn:
            people = conn.execute("SELECT count(*) FROM id_people").fetchone()
            left = conn.execute("SELECT count(*) FROM outbox").fetchone()
            delivered = conn.execute(
                "SELECT count(*) FROM delivery_outcomes WHERE outcome = 'delivered'"
            ).fetchone()
        assert people == (3,) and left == (0,) and delivered == (6,)
        # nothing of ours in SQLite: the data directory holds only keys and output
        assert not (tmp_path / "data" / "consentry.db").exists()
        metrics = httpx.get(server.url + "/metrics", timeout=10).text
        assert 'consentry_outbox_depth{destination="lake"} 0.0' in metrics
        assert httpx.get(server.url + "/readyz", timeout=10).json()["status"] == "ready"

        assert _cut_sessions(pg_dsn) >= 2  # the writer's and the lane's
        # The first group after the cut meets the broken connection and is
        # answered with the error; the next one runs on a new connection.
        codes = []
        for i in range(10):
            r = server.post("/v1/batch", {"batch": [_event(f"after-{i}", "user-0")]})
            codes.append(r.status_code)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert codes[-1] == 200 and all(c in (200, 503) for c in codes), codes
        assert wait_for(lambda: httpx.get(server.url + "/readyz", timeout=10).status_code == 200)
        # the lane's reader reconnected too
        assert wait_for(
            lambda: any(m["messageId"] == f"after-{len(codes) - 1}" for m in read_jsonl(out))
        )
    finally:
        server.stop()
    # a graceful stop (uvicorn re-raises the SIGTERM it handled)
    assert server.proc is not None and server.proc.returncode in (0, -15)


def test_serve_without_the_dsn_variable_stops_before_making_anything(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", CONFIG, args=["--workers", "1"])
    server.env.pop("CONSENTRY_PG_UNDER_TEST", None)
    try:
        server.start(timeout=20)
    except RuntimeError as exc:
        assert "CONSENTRY_PG_UNDER_TEST" in str(exc)
    else:
        raise AssertionError("serve started without its DSN")
    assert server.proc is not None and server.proc.wait(10) == 2
    assert not (tmp_path / "data" / "keyring.json").exists()


def test_forward_once_delivers_what_a_no_forward_replica_queued(
    pg_dsn: str, tmp_path: Path
) -> None:
    server = Server(
        tmp_path / "data",
        CONFIG,
        env={"CONSENTRY_PG_UNDER_TEST": pg_dsn},
        args=["--workers", "1", "--no-forward"],
    )
    try:
        server.start()
        batch = [_event(f"q-{i}", "queued") for i in range(5)]
        assert server.post("/v1/batch", {"batch": batch}).status_code == 200
    finally:
        server.stop()
    out = tmp_path / "data" / "out"
    assert read_jsonl(out) == []
    done = cli(server, "forward", "--once")
    assert done.returncode == 0, done.stderr
    assert sorted(m["messageId"] for m in read_jsonl(out)) == [f"q-{i}" for i in range(5)]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
