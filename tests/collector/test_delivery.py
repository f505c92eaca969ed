"""Delivery: transforms per destination, consent re-check at send time, erasure
fan-out, the segment destination into another real collector, and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import WRITE_KEY, Server, ServerFactory, cli, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True, "advertising": True}}}
PG_DSN = os.environ.get("CONSENTRY_TEST_PG_DSN")
needs_pg = pytest.mark.skipif(
    not PG_DSN,
    reason="CONSENTRY_TEST_PG_DSN is not set: PostgreSQL warehouse tests NOT RUN (.ci/run sets it)",
)


def test_field_policies_per_destination(server_factory: ServerFactory) -> None:
    config = """
[[destinations]]
name = "ads"
type = "jsonl"
purposes = ["advertising"]
allow_properties = ["total", "email", "coupon"]
[destinations.fields]
"properties.email" = "hash_sha256_normalized"
"properties.coupon" = "drop"
"context.ip" = "keep"

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
[destinations.fields]
"properties.email" = "pseudonymize"
"properties.secret" = "drop"
"""
    server = server_factory(config).start()
    r = server.post(
        "/v1/track",
        {
            "userId": "fp-1",
            "event": "Order",
            "messageId": "fp-1",
            "properties": {
                "total": 10,
                "email": " Jane@Example.com ",
                "coupon": "X",
                "secret": "s",
                "sku": "A",
            },
            "context": {**CONSENTED, "ip": "198.51.100.23"},
        },
    )
    assert r.status_code == 200
    lines = wait_for(lambda: got if len(got := read_jsonl(server.data_dir / "out")) >= 2 else None)
    assert lines
    by = {m["context"]["consentry"]["domain"]: m for m in lines}
    ads, lake = by["dest:ads"], by["dest:lake"]
    assert ads["properties"] == {
        "total": 10,
        "email": hashlib.sha256(b"jane@example.com").hexdigest(),
    }
    assert lake["properties"]["email"].startswith("ps1.") and "secret" not in lake["properties"]
    assert lake["properties"]["sku"] == "A" and lake["properties"]["coupon"] == "X"
    # each destination has its own pseudonym space: the two cannot join on userId
    assert ads["userId"] != lake["userId"]


def test_withdrawal_before_forwarding_means_zero_delivered(server_factory: ServerFactory) -> None:
    server = server_factory(args=["--no-forward"]).start()
    ids = [str(uuid.uuid4()) for _ in range(25)]
    batch = [
        {
            "type": "track",
            "userId": "racer",
            "event": "E",
            "messageId": i,
            "context": {"consent": {"categoryPreferences": {"analytics": True}}},
        }
        for i in ids
    ]
    assert server.post("/v1/batch", {"batch": batch}).status_code == 200
    r = server.post(
        "/v1/consent",
        {"userId": "racer", "purposes": {"analytics": "denied"}, "method": "preferences"},
    )
    assert r.status_code == 200 and r.json()["action"] == "withdraw"
    server.stop()
    status = json.loads(cli(server, "outbox", "status").stdout)
    assert status["lake"]["pending"] == 25
    result = cli(server, "forward", "--once")
    assert result.returncode == 0, result.stderr
    assert read_jsonl(server.data_dir / "out") == []
    status = json.loads(cli(server, "outbox", "status").stdout)
    assert status["lake"]["pending"] == 0
    import sqlite3

    conn = sqlite3.connect(server.data_dir / "consentry.db")
    assert (
        conn.execute(
            "SELECT sum(count) FROM delivery_log WHERE event = 'dropped_for_consent'"
        ).fetchone()[0]
        == 25
    )


def test_segment_destination_feeds_another_collector(server_factory: ServerFactory) -> None:
    downstream = server_factory(name="cdp").start()
    config = f"""
[[destinations]]
name = "cdp"
type = "segment"
purposes = ["analytics"]
url = "{downstream.url}/v1/batch"
write_key_env = "CDP_KEY"
"""
    upstream = server_factory(config, name="edge", env={"CDP_KEY": WRITE_KEY}).start()
    batch = [
        {
            "type": "track",
            "userId": f"seg-{i}",
            "event": "E",
            "messageId": f"seg-{i}",
            "context": {"consent": {"categoryPreferences": {"analytics": True}}},
        }
        for i in range(30)
    ]
    assert upstream.post("/v1/batch", {"batch": batch}).status_code == 200
    got = wait_for(
        lambda: got if len(got := read_jsonl(downstream.data_dir / "out")) >= 30 else None,
        timeout=20,
    )
    assert got and {m["messageId"] for m in got} == {f"seg-{i}" for i in range(30)}


def test_metrics_count_delivery_outcomes(server: Server) -> None:
    server.post(
        "/v1/batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "m1",
                    "event": "E",
                    "context": {"consent": {"categoryPreferences": {"analytics": True}}},
                },
                {"type": "track", "userId": "m2", "event": "E"},
                {"type": "track", "userId": True, "event": "E"},  # not an id: quarantined
            ]
        },
    )
    assert wait_for(lambda: read_jsonl(server.data_dir / "out"))
    text = wait_for(
        lambda: (
            t
            if 'consentry_forwarded_total{destination="lake"} 1.0'
            in (t := httpx.get(server.url + "/metrics").text)
            else None
        )
    )
    assert text is not None
    assert 'consentry_consent_denied_total{destination="lake"} 1.0' in text
    assert 'consentry_messages_quarantined_total{source="default"} 1.0' in text
    assert 'consentry_outbox_depth{destination="lake"} 0.0' in text


# -- PostgreSQL -------------------------------------------------------------------------
@pytest.fixture
def pg_table() -> Iterator[str]:
    assert PG_DSN
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{name}")


@needs_pg
def test_postgres_warehouse_end_to_end_and_erasure(
    server_factory: ServerFactory, pg_table: str
) -> None:
    config = f"""
[[destinations]]
name = "warehouse"
type = "postgres"
purposes = ["analytics"]
dsn_env = "WAREHOUSE_DSN"
table = "{pg_table}"
"""
    server = server_factory(config, env={"WAREHOUSE_DSN": PG_DSN or ""}).start()
    consent = {"consent": {"categoryPreferences": {"analytics": True}}}
    batch = [
        {
            "type": "identify",
            "userId": "pg-alice",
            "traits": {"email": "alice@example.com", "plan": "pro"},
            "messageId": "pg-a0",
            "context": consent,
        }
    ]
    batch += [
        {
            "type": "track",
            "userId": "pg-alice",
            "event": "Viewed",
            "messageId": f"pg-a{i}",
            "properties": {"n": i},
            "context": consent,
        }
        for i in range(1, 6)
    ]
    batch += [
        {
            "type": "track",
            "userId": "pg-bob",
            "event": "Viewed",
            "messageId": f"pg-b{i}",
            "context": consent,
        }
        for i in range(3)
    ]
    assert server.post("/v1/batch", {"batch": batch}).status_code == 200

    def count(where: str = "true") -> int:
        with psycopg.connect(PG_DSN or "") as conn:
            row = conn.execute(f"SELECT count(*) FROM public.{pg_table} WHERE {where}").fetchone()
            assert row is not None
            return int(row[0])

    assert wait_for(lambda: _safe(count) == 9, timeout=20)
    with psycopg.connect(PG_DSN or "") as conn:
        row = conn.execute(
            f"SELECT type, user_id, properties->>'n', traits->>'email', one_id, received_at IS NOT NULL"
            f" FROM public.{pg_table} WHERE message_id = 'pg-a0'"
        ).fetchone()
        dump = " ".join(str(r) for r in conn.execute(f"SELECT * FROM public.{pg_table}").fetchall())
    assert (
        row is not None
        and row[0] == "identify"
        and row[1].startswith("ps1.")
        and row[3].startswith("ps1.")
    )
    assert row[4] and row[5]
    assert "alice@example.com" not in dump and "pg-alice" not in dump

    admin = {"Authorization": "Bearer adm"}
    server.stop()
    server.env["CONSENTRY_ADMIN_TOKEN"] = "adm"
    server.start()
    r = httpx.post(server.url + "/v1/erase", json={"userId": "pg-alice"}, headers=admin, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["erased"] and body["destinations"][0]["status"] == "deleted"
    assert body["destinations"][0]["remote_rows_deleted"] == 6
    assert count() == 3 and count("user_id IS NULL") == 0


def _safe(fn):
    try:
        return fn()
    except psycopg.Error:
        return None


@needs_pg
def test_postgres_redelivery_never_duplicates(tmp_path: Path, pg_table: str) -> None:
    from collector.config import PostgresDestinationConfig
    from collector.delivery.destinations.postgres import PostgresDestination

    dest = PostgresDestination(
        PostgresDestinationConfig(name="wh", purposes=["analytics"], dsn=PG_DSN, table=pg_table),
        data_dir=tmp_path,
    )
    batch = [
        json.dumps(
            {
                "type": "track",
                "messageId": f"r-{i}",
                "event": "E",
                "userId": "ps1.k1.x",
                "receivedAt": "2026-11-23T04:00:00+00:00",
                "properties": {"i": i},
                "context": {"consentry": {"oneId": "ps1.k1.o"}},
            }
        ).encode()
        for i in range(50)
    ]

    async def run() -> None:
        assert (
            await dest.send(batch[:30])
        ).ok  # delivered, then "crash" before the outbox is cleared
        assert (await dest.send(batch)).ok  # redelivery of the whole batch
        await dest.close()

    asyncio.run(run())
    with psycopg.connect(PG_DSN or "") as conn:
        n, distinct = conn.execute(
            f"SELECT count(*), count(DISTINCT message_id) FROM public.{pg_table}"
        ).fetchone()  # type: ignore[misc]
    assert n == distinct == 50


def test_personal_fields_are_pseudonymized_unless_a_destination_keeps_them(
    server_factory: ServerFactory,
) -> None:
    config = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "crm"
type = "jsonl"
purposes = ["analytics"]
[destinations.fields]
"traits.firstName" = "keep"
"traits.email" = "keep"
"""
    server = server_factory(config).start()
    r = server.post(
        "/v1/identify",
        {
            "userId": "pii-1",
            "messageId": "pii-1",
            "context": CONSENTED,
            "traits": {
                "firstName": "Margarethe",
                "lastName": "Quinterova",
                "email": "mq@example.com",
                "plan": "pro",
            },
        },
    )
    assert r.status_code == 200
    lines = wait_for(lambda: got if len(got := read_jsonl(server.data_dir / "out")) >= 2 else None)
    assert lines
    by = {m["context"]["consentry"]["domain"]: m["traits"] for m in lines}
    lake, crm = by["dest:lake"], by["dest:crm"]
    assert (
        lake["firstName"].startswith("ps1.")
        and lake["lastName"].startswith("ps1.")
        and lake["plan"] == "pro"
    )
    assert crm["firstName"] == "Margarethe" and crm["lastName"].startswith("ps1.")
    assert crm["email"].startswith("ps1.")  # identifiers never leave raw, even with `keep`
    server.stop()
    outbox_and_db = b"".join(p.read_bytes() for p in server.data_dir.glob("consentry.db*"))
    assert b"Quinterova" not in outbox_and_db and b"mq@example.com" not in outbox_and_db
