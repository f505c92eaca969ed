"""One event, for real: SDK -> HTTP -> collector -> SQLite -> forwarder -> JSONL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from sdk_python import Client
from tests.conftest import WRITE_KEY, Server, ServerFactory, read_jsonl, wait_for

RAW = {
    "user_id": "customer-8812",
    "anonymous_id": "anon-7f3a9c1e",
    "email": "Jane.Doe@Example.com",
    "phone": "+44 20 7946 0958",
    "ip": "203.0.113.77",
}


def consent_ctx(**prefs: bool) -> dict[str, object]:
    return {"consent": {"categoryPreferences": prefs}, "ip": RAW["ip"]}


def files_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_sdk_to_jsonl_pseudonymized_and_no_raw_identifier_on_disk(server: Server) -> None:
    with Client(WRITE_KEY, host=server.url, flush_interval=0.05) as client:
        client.identify(
            RAW["user_id"],
            traits={"email": RAW["email"], "phone": RAW["phone"], "plan": "gold"},
            anonymous_id=RAW["anonymous_id"],
            context=consent_ctx(analytics=True),
        )
        for i in range(20):
            client.track(
                RAW["user_id"], "Order Completed", {"total": i}, context=consent_ctx(analytics=True)
            )
        assert client.flush(10)
    out_dir = server.data_dir / "out"
    lines = wait_for(lambda: got if len(got := read_jsonl(out_dir)) >= 21 else None)
    assert lines is not None and len(lines) == 21
    identify = next(m for m in lines if m["type"] == "identify")
    traits = identify["traits"]
    assert isinstance(traits, dict)
    assert traits["plan"] == "gold"
    assert str(traits["email"]).startswith("ps1.k1.")
    assert str(identify["userId"]).startswith("ps1.k1.")
    tracks = [m for m in lines if m["type"] == "track"]
    # one person: same pseudonym and OneID on every event
    assert len({m["userId"] for m in tracks}) == 1
    assert len({m["context"]["consentry"]["oneId"] for m in lines}) == 1
    assert all(m["context"]["ip"] == "203.0.113.0" for m in lines)
    assert all(m.get("receivedAt") and m.get("messageId") for m in lines)
    server.stop()
    disk = files_bytes(server.data_dir)
    for name, value in RAW.items():
        for form in {value, value.lower(), "jane.doe@example.com", "+442079460958"}:
            assert form.encode() not in disk, f"raw {name} found on disk"


def test_default_deny_no_consent_or_wrong_purpose(server: Server) -> None:
    batch = [
        {"type": "track", "userId": "u-none", "event": "No consent", "messageId": "m-none"},
        {
            "type": "track",
            "userId": "u-wrong",
            "event": "Wrong purpose",
            "messageId": "m-wrong",
            "context": {
                "consent": {"categoryPreferences": {"advertising": True, "analytics": False}}
            },
        },
        {
            "type": "track",
            "userId": "u-ok",
            "event": "Consented",
            "messageId": "m-ok",
            "context": {"consent": {"categoryPreferences": {"analytics": True}}},
        },
    ]
    response = server.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    lines = wait_for(lambda: read_jsonl(server.data_dir / "out"))
    assert [m["messageId"] for m in lines] == ["m-ok"]
    # and nothing else arrives later
    server.stop()
    assert [m["messageId"] for m in read_jsonl(server.data_dir / "out")] == ["m-ok"]


def test_every_acknowledged_event_survives_sigkill(server_factory: ServerFactory) -> None:
    srv = server_factory().start()
    acked: list[str] = []
    with httpx.Client(auth=(WRITE_KEY, ""), timeout=30) as http:
        for b in range(30):
            batch: list[dict[str, Any]] = [
                {
                    "type": "track",
                    "userId": f"user-{b}-{i}",
                    "event": "Viewed",
                    "messageId": str(uuid.uuid4()),
                    "context": {"consent": {"categoryPreferences": {"analytics": True}}},
                }
                for i in range(50)
            ]
            r = http.post(srv.url + "/v1/batch", json={"batch": batch})
            assert r.status_code == 200
            acked += [m["messageId"] for m in batch]
    srv.kill()  # right after the last ack, forwarding likely mid-flight
    srv.start()
    out = srv.data_dir / "out"
    ids = wait_for(
        lambda: (s := {m["messageId"] for m in read_jsonl(out)}) >= set(acked) and s, timeout=30
    )
    assert ids and set(acked) <= ids
    delivered = [m["messageId"] for m in read_jsonl(out)]
    assert set(delivered) == set(acked)  # duplicates, if any, are identifiable by messageId
