"""`consentry audit` tells the truth (issue 14 §6), through `consentry serve`
over loopback, real SQLite and the CLI: `why` reports each message's final
delivery outcome, and a witness file outside the database detects ledger
records deleted after the last checkpoint."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.collector.receiver import Receiver
from tests.conftest import Server, ServerFactory, cli, read_jsonl, wait_for

SECRET = "hook-secret-456"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def outbox(server: Server) -> dict[str, dict[str, object]]:
    out = cli(server, "outbox", "status")
    assert out.returncode == 0, out.stderr
    status: dict[str, dict[str, object]] = json.loads(out.stdout)
    return status


def consent(server: Server, user: str, granted: bool) -> None:
    state = "granted" if granted else "denied"
    r = server.post("/v1/consent", {"userId": user, "purposes": {"analytics": state}})
    assert r.status_code == 200, r.text


def track(server: Server, user: str, message_id: str) -> None:
    r = server.post("/v1/track", {"userId": user, "event": "E", "messageId": message_id})
    assert r.status_code == 200, r.text


def test_why_reports_the_final_outcome(server_factory: ServerFactory, receiver: Receiver) -> None:
    config = f"""
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "{receiver.url}"
secret_env = "HOOK_SECRET"
backoff_base_seconds = 0.05
backoff_max_seconds = 3600
"""
    server = server_factory(config, env={"HOOK_SECRET": SECRET}).start()
    consent(server, "p", True)
    # dead-lettered: the hook refuses it for good
    receiver.status = 400
    track(server, "p", "dead-1")
    assert wait_for(lambda: outbox(server)["hook"]["dead"] == 1)
    # dropped at send time: queued while the hook fails, then consent is withdrawn
    receiver.status, receiver.headers = 503, {"Retry-After": "1"}
    track(server, "p", "drop-1")
    assert wait_for(lambda: any(b"drop-1" in body for _, body in receiver.requests))
    assert wait_for(
        lambda: any(m["messageId"] == "drop-1" for m in read_jsonl(server.data_dir / "out"))
    )
    consent(server, "p", False)
    receiver.status, receiver.headers = 200, {}
    assert wait_for(lambda: outbox(server)["hook"]["pending"] == 0)
    assert "drop-1" not in {m["messageId"] for m in receiver.messages()}
    # pending: another person's event, refused with a retry an hour away
    consent(server, "q", True)
    receiver.status, receiver.headers = 503, {"Retry-After": "3600"}
    track(server, "q", "pend-1")
    assert wait_for(lambda: any(b"pend-1" in body for _, body in receiver.requests))
    assert wait_for(
        lambda: any(m["messageId"] == "pend-1" for m in read_jsonl(server.data_dir / "out"))
    )
    server.stop()

    records = json.loads(cli(server, "audit", "export", "--format", "json").stdout)
    [withdrawal] = [r for r in records if r["action"] == "withdraw"]

    def why(message_id: str, destination: str) -> str:
        out = cli(server, "audit", "why", message_id, destination)
        assert out.returncode == 0, out.stderr
        return out.stdout

    delivered = why("drop-1", "lake")
    assert "ALLOW under GDPR" in delivered
    assert "final outcome: DELIVERED at" in delivered and "in batch" in delivered
    dropped = why("drop-1", "hook")
    assert "ALLOW under GDPR" in dropped  # the decision at ingest ...
    assert "final outcome: DROPPED at send time" in dropped  # ... and what became of it
    assert f"denied by record {withdrawal['seq']}" in dropped
    assert f"record {withdrawal['seq']}: withdraw" in dropped
    dead = why("dead-1", "hook")
    assert "final outcome: DEAD-LETTERED after 1 attempt" in dead and "HTTP 400" in dead
    pending = why("pend-1", "hook")
    assert "final outcome: PENDING after 1 attempt" in pending and "HTTP 503" in pending
    assert "final outcome: DELIVERED" in why("pend-1", "lake")


def _witness_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_witness_detects_deleted_tail_records(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    witness = tmp_path / "witness" / "ledger.jsonl"
    server = server_factory(f'[audit]\nwitness_file = "{witness}"\n').start()
    for user in ("w1", "w2", "w3"):
        consent(server, user, True)
    assert wait_for(
        lambda: witness.exists() and max(int(str(w["seq"])) for w in _witness_lines(witness)) == 3
    )
    server.stop()
    assert witness.stat().st_mode & 0o777 == 0o600

    ok = cli(server, "audit", "verify", "--witness", str(witness))
    assert ok.returncode == 0, ok.stderr
    # a checkpoint at every commit that appended records: nothing is unsealed
    assert ok.stdout.startswith("OK: 3 records") and "0 records after it" in ok.stdout
    assert "witness OK" in ok.stdout

    # Cut the last record off together with its checkpoint: the shorter ledger
    # is consistent, and verify alone cannot tell ...
    conn = sqlite3.connect(server.data_dir / "consentry.db")
    conn.execute("DELETE FROM consent_ledger WHERE seq = 3")
    conn.execute("DELETE FROM consent_checkpoints WHERE seq = 3")
    conn.commit()
    conn.close()
    alone = cli(server, "audit", "verify")
    assert alone.returncode == 0 and alone.stdout.startswith("OK: 2 records")
    # ... but the witness can.
    caught = cli(server, "audit", "verify", "--witness", str(witness))
    assert caught.returncode == 1
    assert "record 3" in caught.stderr and "gone" in caught.stderr


def test_checkpoints_are_posted_to_the_witness_url(
    server_factory: ServerFactory, receiver: Receiver, tmp_path: Path
) -> None:
    server = server_factory(f'[audit]\nwitness_url = "{receiver.url}"\n').start()
    consent(server, "h1", True)
    consent(server, "h2", True)
    assert wait_for(
        lambda: max((json.loads(b)["seq"] for _, b in receiver.requests), default=0) == 2
    )
    headers, body = receiver.requests[-1]
    line = json.loads(body)
    assert headers["content-type"] == "application/json"
    assert set(line) == {"seq", "hash", "signed_at"} and len(line["hash"]) == 64
    server.stop()
    # the posted hash is the ledger's own at that seq
    conn = sqlite3.connect(server.data_dir / "consentry.db")
    stored = conn.execute("SELECT hash FROM consent_ledger WHERE seq = 2").fetchone()[0]
    assert bytes(stored).hex() == line["hash"]


def test_history_shows_merges_and_erasures(server_factory: ServerFactory) -> None:
    server = server_factory(env={"CONSENTRY_ADMIN_TOKEN": "adm"}).start()
    for body in (
        {"userId": "hist-user", "event": "A"},
        {"anonymousId": "hist-anon", "event": "B"},
    ):
        assert server.post("/v1/track", body).status_code == 200
    linked = {"userId": "hist-user", "anonymousId": "hist-anon"}
    assert server.post("/v1/identify", linked).status_code == 200
    server.stop()
    conn = sqlite3.connect(server.data_dir / "consentry.db")
    [(into, absorbed)] = conn.execute("SELECT one_id, absorbed FROM id_merges").fetchall()
    conn.close()
    merged = cli(server, "audit", "history", str(into))
    assert merged.returncode == 0, merged.stderr
    assert f"OneID {into}" in merged.stdout
    assert f"merge: OneID {absorbed} joined {into} through " in merged.stdout

    server.start()
    erased = httpx.post(
        server.url + "/v1/erase",
        json={"userId": "hist-user"},
        headers={"Authorization": "Bearer adm"},
        timeout=30,
    )
    assert erased.status_code == 200, erased.text
    server.stop()
    after = cli(server, "audit", "history", str(into)).stdout
    assert "erasure at " in after and "lake " in after
    assert "no merges" not in after
