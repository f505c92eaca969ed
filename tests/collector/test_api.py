"""Every error path of the ingest API, against the real server over loopback."""

from __future__ import annotations

import gzip
import json
import sqlite3

import httpx
import pytest

from tests.conftest import WRITE_KEY, Server, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


def test_unknown_write_key_is_401(server: Server) -> None:
    r = httpx.post(server.url + "/v1/batch", json={"batch": []}, auth=("nope", ""))
    assert r.status_code == 401
    assert "write key" in r.json()["error"]
    r = httpx.post(server.url + "/v1/batch", json={"batch": []})
    assert r.status_code == 401


def test_write_key_in_body_is_accepted(server: Server) -> None:
    r = httpx.post(
        server.url + "/v1/batch",
        json={
            "writeKey": WRITE_KEY,
            "batch": [{"type": "track", "userId": "u1", "event": "E", "context": CONSENTED}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1


def test_not_json_is_400(server: Server) -> None:
    r = httpx.post(server.url + "/v1/batch", content=b"{not json", auth=(WRITE_KEY, ""))
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "path"),
    [({"batch": "x"}, "$.batch"), ({"nobatch": []}, "$"), ([1, 2], "$")],
)
def test_not_a_batch_is_400_with_path(server: Server, body: object, path: str) -> None:
    r = server.post("/v1/batch", body)
    assert r.status_code == 400
    assert r.json()["path"] == path
    assert r.json()["error"].startswith("not a batch")


def test_request_over_500kb_is_413(server: Server) -> None:
    big = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "a" * 30000}}]
        * 18
    }
    r = server.post("/v1/batch", big)
    assert r.status_code == 413
    assert "limit" in r.json()["error"]


def test_gzip_bomb_is_413(server: Server) -> None:
    body = gzip.compress(b'{"batch": [' + b" " * 2_000_000 + b"]}")
    r = httpx.post(
        server.url + "/v1/batch",
        content=body,
        auth=(WRITE_KEY, ""),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_gzip_body_is_accepted(server: Server) -> None:
    body = gzip.compress(
        json.dumps(
            {
                "batch": [
                    {
                        "type": "track",
                        "userId": "gz",
                        "event": "Gz",
                        "messageId": "gz-1",
                        "context": CONSENTED,
                    }
                ]
            }
        ).encode()
    )
    r = httpx.post(
        server.url + "/v1/batch",
        content=body,
        auth=(WRITE_KEY, ""),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert wait_for(
        lambda: [m for m in read_jsonl(server.data_dir / "out") if m["messageId"] == "gz-1"]
    )


def test_invalid_messages_are_quarantined_encrypted_and_listed(server: Server) -> None:
    secret_email = "leaky.person@example.org"
    batch = [
        {
            "type": "track",
            "userId": "ok-1",
            "event": "Good",
            "messageId": "good-1",
            "context": CONSENTED,
        },
        {"type": "track", "userId": True, "event": "Bad id", "traits": {"email": secret_email}},
        {"type": "track", "anonymousId": "a1"},
        {"type": "teleport", "userId": "x"},
        {
            "type": "identify",
            "userId": "null",
            "anonymousId": "undefined",
            "traits": {"email": secret_email},
        },
        {"type": "identify", "userId": "u9", "traits": {"email": "not-an-email"}},
        {"type": "track", "userId": "big", "event": "Big", "properties": {"blob": "b" * 33000}},
        {"type": "alias", "userId": "u1"},
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    # An unusable email trait keeps its event, with a warning (issue 13 case 5).
    assert body["accepted"] == 2
    rejected = {x["index"]: x for x in body["rejected"]}
    assert set(rejected) == {1, 2, 3, 4, 6, 7}
    assert [(w["index"], w["path"]) for w in body["warnings"]] == [(5, "$.batch[5].traits.email")]
    assert rejected[1]["path"] == "$.batch[1].userId"
    assert rejected[2]["path"] == "$.batch[2]" and "event" in rejected[2]["reason"]
    assert rejected[3]["path"] == "$.batch[3].type"
    assert "userId or an anonymousId" in rejected[4]["reason"]
    assert "32768" in rejected[6]["reason"]
    assert rejected[7]["path"] == "$.batch[7]" and "previousId" in rejected[7]["reason"]
    server.stop()
    conn = sqlite3.connect(server.data_dir / "consentry.db")
    rows = conn.execute("SELECT reason, path, sealed FROM quarantine ORDER BY id").fetchall()
    assert len(rows) == 6
    assert all(len(sealed) > 28 for _, _, sealed in rows)
    disk = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert secret_email.encode() not in disk


def test_single_message_endpoints(server: Server) -> None:
    calls: dict[str, dict[str, object]] = {
        "track": {"userId": "s1", "event": "Single"},
        "identify": {"userId": "s1", "traits": {"plan": "x"}},
        "page": {"userId": "s1", "name": "Home"},
        "screen": {"userId": "s1", "name": "Cart"},
        "group": {"userId": "s1", "groupId": "acme", "traits": {"email": "billing@acme.test"}},
        "alias": {"userId": "s1", "previousId": "anon-s1"},
    }
    for kind, body in calls.items():
        body = {**body, "messageId": f"single-{kind}", "context": CONSENTED}
        r = server.post(f"/v1/{kind}", body)
        assert r.status_code == 200, (kind, r.text)
    lines = wait_for(lambda: got if len(got := read_jsonl(server.data_dir / "out")) >= 6 else None)
    assert lines
    assert {m["type"] for m in lines} == set(calls)
    group = next(m for m in lines if m["type"] == "group")
    assert group["traits"]["email"].startswith("ps1.")
    bad = server.post("/v1/track", {"userId": "s1"})
    assert bad.status_code == 400 and "event" in bad.json()["error"]
    bad = server.post("/v1/identify", {"userId": ["x"]})
    assert bad.status_code == 400 and bad.json()["path"] == "$.userId"


def test_missing_message_id_is_generated_and_received_at_set(server: Server) -> None:
    r = server.post("/v1/track", {"userId": "gen", "event": "NoId", "context": CONSENTED})
    assert r.status_code == 200
    [line] = wait_for(lambda: read_jsonl(server.data_dir / "out"))
    assert len(line["messageId"]) == 36
    assert line["receivedAt"]


def test_health_ready_openapi(server: Server) -> None:
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    assert httpx.get(server.url + "/readyz").json()["status"] == "ready"
    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/batch" in doc["paths"] and "/v1/consent" in doc["paths"]
    track = doc["components"]["schemas"]["Track"]
    assert "event" in track["required"]
    assert "messageId" in track["properties"]


def test_metrics_endpoint(server: Server) -> None:
    server.post("/v1/track", {"userId": "m", "event": "E", "context": CONSENTED})
    text = httpx.get(server.url + "/metrics").text
    assert 'consentry_messages_accepted_total{source="default"} 1.0' in text
    assert "consentry_outbox_depth" in text


def test_openapi_document_is_valid() -> None:
    from openapi_spec_validator import validate

    from collector.http.openapi import document

    validate(document())  # raises with the JSON path of any problem


def test_rejection_reasons_never_echo_the_value(server: Server) -> None:
    leaked = "someone.private@example.net"
    r = server.post("/v1/batch", {"batch": [{"type": leaked, "userId": "u"}]})
    assert r.status_code == 200
    [rejected] = r.json()["rejected"]
    assert rejected["path"] == "$.batch[0].type" and leaked not in rejected["reason"]
    r = server.post("/v1/consent", {"userId": "u", "purposes": {"analytics": leaked}})
    assert r.status_code == 400 and leaked not in r.text
    server.stop()
    disk = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert leaked.encode() not in disk
