"""Erasure leaves nothing linkable on disk (issue 14 §4), and key rotation neither
splits a person at a destination nor defeats erasure (§3).

A person is merged (two clusters joined by an identify), forwarded to every
built-in destination type (JSONL in the data directory, an HTTP webhook, a
Segment-compatible receiver, PostgreSQL), the internal key is rotated, then one
destination's key; then POST /v1/erase. Afterwards every file of the data
directory is scanned for every pseudonym the person ever had: every identifier
and OneID, in every domain, under every key version."""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from identity import Keyring, Pseudonymizer
from identity.keyring import parse_master_key
from identity.pseudonym import INTERNAL
from tests.collector.receiver import Receiver
from tests.conftest import Server, ServerFactory, cli, read_jsonl, wait_for

PG_DSN = os.environ.get("CONSENTRY_TEST_PG_DSN")
needs_pg = pytest.mark.skipif(
    not PG_DSN,
    reason="CONSENTRY_TEST_PG_DSN is not set: the every-destination erasure test NOT RUN",
)
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}
PERSON = {
    "anonymous_id": "anon-erase-1",
    "user_id": "user-erase-1",
    "email": "erase.me@example.org",
}
ADMIN = {"Authorization": "Bearer adm"}


@pytest.fixture
def pg_table() -> Iterator[str]:
    assert PG_DSN
    name = f"t_erase_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{name}")


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    hook, seg = Receiver(), Receiver()
    yield hook, seg
    hook.close()
    seg.close()


def _config(hook: Receiver, seg: Receiver, table: str) -> str:
    return f"""
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "{hook.url}"
secret = "hook-secret"

[[destinations]]
name = "seg"
type = "segment"
purposes = ["analytics"]
url = "{seg.url}"
write_key = "seg-key"
gzip = false
delete_hook_url = "{seg.url}"

[[destinations]]
name = "wh"
type = "postgres"
purposes = ["analytics"]
dsn_env = "WAREHOUSE_DSN"
table = "{table}"
"""


def _events(tag: str, n: int = 2) -> list[dict[str, Any]]:
    """The person's events, and one of someone else who must survive."""
    out: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": PERSON["user_id"],
            "event": "Viewed",
            "messageId": f"{tag}-p{i}",
            "context": CONSENT,
        }
        for i in range(n)
    ]
    out.append(
        {"type": "track", "userId": "bystander", "event": "Viewed", "messageId": f"{tag}-b"}
        | {"context": CONSENT}
    )
    return out


def _pg(table: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(PG_DSN or "") as conn:
        return conn.execute(sql.format(t=f"public.{table}")).fetchall()


def _delivered(server: Server, hook: Receiver, seg: Receiver, table: str, ids: set[str]) -> bool:
    def has(messages: list[dict[str, Any]]) -> bool:
        return ids <= {m.get("messageId") for m in messages}

    try:
        rows = {r[0] for r in _pg(table, "SELECT message_id FROM {t}")}
    except psycopg.Error:
        return False
    return (
        has(read_jsonl(server.data_dir / "out"))
        and has(hook.messages())
        and has([m for m in _seg_messages(seg)])
        and ids <= rows
    )


def _seg_messages(seg: Receiver) -> list[dict[str, Any]]:
    import json

    out: list[dict[str, Any]] = []
    with seg.lock:
        bodies = [b for _, b in seg.requests]
    for body in bodies:
        doc = json.loads(body)
        out.extend(doc.get("batch", []))
    return out


def _one_id_at(server: Server, message_id: str) -> str:
    (line,) = [m for m in read_jsonl(server.data_dir / "out") if m["messageId"] == message_id]
    return str(line["context"]["consentry"]["oneId"])


def _restart(server: Server) -> None:
    server.stop()
    server.start()


def _every_pseudonym(server: Server, one_ids: list[int]) -> dict[str, str]:
    """Every pseudonym the person can have had: identifiers and OneIDs, every
    domain (internal and each destination's), every key version still known."""
    master = parse_master_key(server.env["CONSENTRY_MASTER_KEY"])
    ring = Keyring.load(server.data_dir / "keyring.json", master)
    ps = Pseudonymizer(ring)
    out: dict[str, str] = {}
    domains = [INTERNAL, *(f"dest:{n}" for n in ("lake", "hook", "seg", "wh"))]
    for domain in domains:
        kids = ps.lookup_kids() if domain == INTERNAL else ps.domain_kids(domain)
        for kid in kids:
            for kind, value in PERSON.items():
                out[f"{kind}@{domain}/{kid}"] = ps.pseudonym(kind, value, domain, kid=kid)
            for one_id in one_ids:
                out[f"oneId {one_id}@{domain}/{kid}"] = ps.derive_opaque(
                    "one_id", str(one_id), domain, kid=kid
                )
    return out


@needs_pg
def test_erasure_of_a_merged_rotated_person_leaves_no_pseudonym_in_any_file(
    server_factory: ServerFactory, receivers: tuple[Receiver, Receiver], pg_table: str
) -> None:
    hook, seg = receivers
    server = server_factory(
        _config(hook, seg, pg_table),
        env={"WAREHOUSE_DSN": PG_DSN or "", "CONSENTRY_ADMIN_TOKEN": "adm"},
    ).start()
    # Two clusters (an anonymous visitor; a known user with an email), merged by identify.
    first = [
        {
            "type": "page",
            "anonymousId": PERSON["anonymous_id"],
            "name": "Home",
            "messageId": "m-anon",
            "context": CONSENT,
        },
        {
            "type": "identify",
            "userId": PERSON["user_id"],
            "traits": {"email": PERSON["email"]},
            "messageId": "m-user",
            "context": CONSENT,
        },
        *_events("a"),
    ]
    assert server.post("/v1/batch", {"batch": first}).status_code == 200
    merge = {
        "type": "identify",
        "userId": PERSON["user_id"],
        "anonymousId": PERSON["anonymous_id"],
        "messageId": "m-merge",
        "context": CONSENT,
    }
    assert server.post("/v1/batch", {"batch": [merge]}).status_code == 200
    ids = {m["messageId"] for m in first} | {"m-merge"}
    assert wait_for(lambda: _delivered(server, hook, seg, pg_table, ids), timeout=30)
    before_rotation = _one_id_at(server, "a-p0")

    # §3: rotating the internal key does not split the person at a destination.
    rotated = cli(server, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    _restart(server)
    assert server.post("/v1/batch", {"batch": _events("b")}).status_code == 200
    assert wait_for(
        lambda: _delivered(server, hook, seg, pg_table, {"b-p0", "b-p1", "b-b"}), timeout=30
    )
    assert _one_id_at(server, "b-p0") == before_rotation
    user_at_lake = {
        m["userId"]
        for m in read_jsonl(server.data_dir / "out")
        if m["messageId"] in ("a-p0", "b-p0")
    }
    assert len(user_at_lake) == 1

    # The operator rotates one destination's key on purpose: its ids change.
    own = cli(server, "keys", "rotate", "--destination", "wh")
    assert own.returncode == 0, own.stderr
    _restart(server)
    assert server.post("/v1/batch", {"batch": _events("c")}).status_code == 200
    assert wait_for(
        lambda: _delivered(server, hook, seg, pg_table, {"c-p0", "c-p1", "c-b"}), timeout=30
    )
    wh_ids = {r[0] for r in _pg(pg_table, "SELECT one_id FROM {t} WHERE user_id IS NOT NULL")}
    assert _one_id_at(server, "c-p0") == before_rotation  # the lake did not move
    person_rows = _pg(pg_table, "SELECT count(*) FROM {t} WHERE message_id NOT LIKE '%-b'")[0][0]
    assert len(wh_ids) >= 3  # bystander, and the person under k1 and under d2

    # Before erasure the person is all over the data directory (so the scan
    # below can fail): internal pseudonyms in the database, the lake's in JSONL.
    lake_user = next(iter(user_at_lake))
    disk = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert lake_user.rsplit(".", 1)[1].encode() in disk
    assert before_rotation.rsplit(".", 1)[1].encode() in disk

    # §4: erase, then scan every file of the data directory.
    r = httpx.post(server.url + "/v1/erase", json={"userId": PERSON["user_id"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["erased"] and summary["wal_truncated"] is True
    (person,) = summary["people"]
    assert len(person["one_ids"]) == 2  # merged: both OneIDs erased
    status = {d["destination"]: d for d in summary["destinations"]}
    assert status["lake"]["status"] == "deleted" and status["lake"]["remote_rows_deleted"] >= 6
    assert status["seg"]["status"] == "deleted"
    assert status["wh"]["status"] == "deleted"
    assert status["wh"]["remote_rows_deleted"] == person_rows
    assert "k1:" in status["wh"]["detail"] and "d2:" in status["wh"]["detail"]
    assert status["hook"]["status"] == "not_supported"
    assert summary["manual_deletion"]["hook"]  # told to the caller, never stored

    pseudonyms = _every_pseudonym(server, person["one_ids"])
    files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        for name, value in pseudonyms.items():
            digest = value.rsplit(".", 1)[1]
            assert digest.encode() not in data, f"{name} left in {path.name}"
            raw = base64.urlsafe_b64decode(digest + "=")
            assert raw not in data, f"{name} (raw digest) left in {path.name}"
        for value in PERSON.values():
            assert value.encode() not in data, f"raw identifier in {path.name}"

    # Downstream: the warehouse lost the person under both key versions, the
    # bystander stayed; the Segment receiver got an erasure request per version.
    assert _pg(pg_table, "SELECT count(*) FROM {t} WHERE message_id NOT LIKE '%-b'")[0][0] == 0
    assert _pg(pg_table, "SELECT count(*) FROM {t} WHERE message_id LIKE '%-b'")[0][0] == 3
    erasure_requests = [b for _, b in seg.requests if b'"type": "erasure"' in b]
    assert len(erasure_requests) >= 2
    lake = read_jsonl(server.data_dir / "out")
    assert {m["messageId"] for m in lake} == {"a-b", "b-b", "c-b"}

    # The ledger still verifies, and says how many records were crypto-shredded.
    verified = cli(server, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "records of erased people" in verified.stdout
    conn = sqlite3.connect(f"file:{server.data_dir / 'consentry.db'}?mode=ro", uri=True)
    try:
        links = conn.execute("SELECT count(*) FROM id_links").fetchone()[0]
        keys = conn.execute("SELECT count(*) FROM consent_subject_keys").fetchone()[0]
    finally:
        conn.close()
    assert links >= 1 and keys >= 1  # the bystander's links and key are still there


def test_jsonl_erasure_rewrites_only_the_persons_lines(tmp_path: Path) -> None:
    """The rewrite keeps every other line byte for byte, across rotated files."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from collector.config import JsonlDestinationConfig
    from collector.delivery.destinations.jsonl import JsonlDestination

    dest = JsonlDestination(
        JsonlDestinationConfig(name="lake", purposes=["analytics"], max_bytes=1024),
        data_dir=tmp_path,
    )

    def line(i: int, who: str) -> bytes:
        return (
            b'{"messageId":"m%d","context":{"consentry":{"domain":"dest:lake","oneId":"%s"}}}'
            % (i, who.encode())
        )

    def run(coro: Any) -> Any:
        # On its own thread: another test may have left an event loop running here.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    lines = [line(i, "ps1.k1.A" if i % 3 == 0 else "ps1.k1.B") for i in range(60)]
    for i in range(0, 60, 6):
        assert run(dest.send(lines[i : i + 6])).ok
    assert len(dest.files()) > 1  # rotated by size
    result = run(dest.delete(["ps1.k1.A"]))
    assert result.ok and result.deleted == 20
    kept = b"".join(p.read_bytes() for p in dest.files())
    assert kept == b"".join(x + b"\n" for x in lines if b"ps1.k1.B" in x)
    assert not list(tmp_path.rglob("*.erasing"))
