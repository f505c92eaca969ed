"""The operator and auditor commands against a real data directory."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from identity import Keyring
from identity.keyring import parse_master_key
from tests.conftest import Server, ServerFactory, cli, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


def one_ids(server: Server) -> dict[str, int]:
    conn = sqlite3.connect(server.data_dir / "consentry.db")
    return {p: o for p, o in conn.execute("SELECT pseudonym, one_id FROM id_links")}


def test_rotation_mid_stream_keeps_one_id_then_retire_destroys_key(server: Server) -> None:
    assert (
        server.post(
            "/v1/identify",
            {
                "userId": "rot-user",
                "anonymousId": "rot-anon",
                "traits": {"email": "rot@example.com"},
                "context": CONSENTED,
            },
        ).status_code
        == 200
    )
    assert (
        server.post("/v1/identify", {"userId": "gone-user", "context": CONSENTED}).status_code
        == 200
    )
    before = one_ids(server)
    person = before[next(iter(before))]
    server.stop()
    rotated = cli(server, "keys", "rotate")
    assert rotated.returncode == 0 and "k2" in rotated.stdout
    server.start()
    assert (
        server.post(
            "/v1/track", {"userId": "rot-user", "event": "Back", "context": CONSENTED}
        ).status_code
        == 200
    )
    after = one_ids(server)
    k2 = {p: o for p, o in after.items() if p.startswith("ps1.k2.")}
    assert len(k2) == 1 and next(iter(k2.values())) == person  # same OneID under the new key
    status = cli(server, "keys", "status").stdout
    assert "k2\tactive" in status and "1/4 identifiers relinked, 3 not yet" in status
    refused = cli(server, "keys", "retire", "k1")
    assert refused.returncode == 1 and "3 identifiers" in refused.stderr
    server.stop()
    keyring_path = server.data_dir / "keyring.json"
    old = Keyring.load(keyring_path, parse_master_key(server.env["CONSENTRY_MASTER_KEY"]))
    k1_secret = old.secret("k1")
    forced = cli(server, "keys", "retire", "k1", "--force")
    assert forced.returncode == 0, forced.stderr
    ring = Keyring.load(keyring_path, parse_master_key(server.env["CONSENTRY_MASTER_KEY"]))
    assert ring.lookup_kids() == ("k2",)
    disk = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert k1_secret not in disk and k1_secret.hex().encode() not in disk
    sealed = json.loads(keyring_path.read_text())["keys"][0]
    assert sealed["kid"] == "k1" and sealed["state"] == "retired" and sealed.get("sealed") is None
    assert not any(p.startswith("ps1.k1.") for p in one_ids(server))


def test_audit_verify_export_and_why(server: Server) -> None:
    r = server.post(
        "/v1/consent",
        {
            "userId": "aud",
            "purposes": {"analytics": "granted"},
            "noticeId": "banner",
            "noticeVersion": "7",
            "method": "banner_accept",
        },
    )
    assert r.status_code == 200
    paid = {"userId": "aud", "event": "Paid"}
    assert server.post("/v1/track", {**paid, "messageId": "why-1"}).status_code == 200
    # why-1 is delivered before the withdrawal, so `audit why` reports it as delivered
    delivered = wait_for(lambda: read_jsonl(server.data_dir / "out"))
    assert [m["messageId"] for m in delivered] == ["why-1"]
    withdrawn = server.post(
        "/v1/consent",
        {"userId": "aud", "purposes": {"analytics": "denied"}, "method": "preferences"},
    )
    assert withdrawn.status_code == 200
    assert server.post("/v1/track", {**paid, "messageId": "why-2"}).status_code == 200
    server.stop()

    pub = server.data_dir.parent / "ledger.pem"
    exported = cli(server, "audit", "pubkey")
    assert exported.returncode == 0 and "BEGIN PUBLIC KEY" in exported.stdout
    pub.write_text(exported.stdout)
    ok = cli(server, "audit", "verify", "--pubkey", str(pub))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 2 records")

    why = cli(server, "audit", "why", "why-1", "lake")
    assert why.returncode == 0 and "ALLOW under GDPR" in why.stdout
    assert "record 1: grant" in why.stdout and "notice banner@7" in why.stdout
    why2 = cli(server, "audit", "why", "why-2", "lake")
    assert "DENY" in why2.stdout and "denied by record 2" in why2.stdout
    assert cli(server, "audit", "why", "nope", "lake").returncode == 1

    rows = list(
        csv.DictReader(io.StringIO(cli(server, "audit", "export", "--format", "csv").stdout))
    )
    assert [r["action"] for r in rows] == ["grant", "withdraw"]
    data = json.loads(
        cli(server, "audit", "export", "--format", "json", "--subject", rows[0]["one_id"]).stdout
    )
    assert len(data) == 2 and data[1]["method"] == "preferences"

    # another key cannot vouch for this ledger
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pub.write_bytes(other)
    bad = cli(server, "audit", "verify", "--pubkey", str(pub))
    assert bad.returncode == 1 and "not signed by the expected key" in bad.stderr

    conn = sqlite3.connect(server.data_dir / "consentry.db")
    conn.execute(
        "UPDATE consent_ledger SET body = replace(body, 'banner_accept', 'banner_reject') WHERE seq = 1"
    )
    conn.commit()
    tampered = cli(server, "audit", "verify")
    assert tampered.returncode == 1 and "record 1" in tampered.stderr


def test_event_consent_modes(server_factory: ServerFactory) -> None:
    srv = server_factory("[privacy]\nevent_consent = 'restrict_only'\n").start()
    track = {"userId": "ro", "event": "E"}
    statuses = [
        srv.post("/v1/track", {**track, "messageId": "ro-1", "context": CONSENTED}).status_code,
        srv.post("/v1/consent", {"userId": "ro", "purposes": {"analytics": "granted"}}).status_code,
        srv.post(
            "/v1/track",
            {
                **track,
                "messageId": "ro-2",
                "context": {"consent": {"categoryPreferences": {"analytics": False}}},
            },
        ).status_code,
        srv.post("/v1/track", {**track, "messageId": "ro-3", "context": CONSENTED}).status_code,
    ]
    assert statuses == [200, 200, 200, 200]
    srv.stop()
    # restrict_only: the event's grant is not recorded, its denial is and sticks
    assert read_jsonl(srv.data_dir / "out") == []
