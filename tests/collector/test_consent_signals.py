"""US opt-outs and unreadable consent strings, through `consentry serve` (real HTTP,
real SQLite, the jsonl destination, `audit why`).

Issue 14 §5: a GPP `usca` section with sale and sharing opted out and a `uspv1`
"1YYN" must not reach an advertising destination under the US pack, and the
decision names the section and field. Issue 13 case 8: an unreadable consent
string never rejects the event; it grants nothing, the event continues on its
other signals, and a warning names the JSON path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

import httpx

from consent import gpp
from tests.conftest import Server, ServerFactory, wait_for

ADS_AND_LAKE = """
[privacy]
default_jurisdiction = "{jurisdiction}"

[[destinations]]
name = "ads"
type = "jsonl"
purposes = ["advertising"]

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""
USCA_OPTED_OUT = "DBABBg~BVWSSSVY.YA"  # iabgpp-java UsCaTest.testEncode2: sale+sharing opted out
USCA_DEFAULT = "DBABBg~BAAAAABA.QA"  # iabgpp-java UsCaTest.testEncode1: nothing stated
UNREADABLE_TC = [
    "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",  # TCF v1.1 (the v1 spec's example)
    "DOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",  # version field 3
    "%%%garbage%%%",
]


def why(server: Server, message_id: str, destination: str) -> str:
    cmd = [sys.executable, "-m", "collector.cli", "audit", "why", message_id, destination]
    cmd += ["--data-dir", str(server.data_dir)]
    if server.config_path is not None:
        cmd += ["--config", str(server.config_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=server.env, timeout=60)
    return done.stdout + done.stderr


def track(message_id: str, consent: Mapping[str, object], user: str = "us-1") -> dict[str, object]:
    return {
        "type": "track",
        "userId": user,
        "event": "Viewed",
        "messageId": message_id,
        "context": {"consent": consent},
    }


def ids(server: Server, name: str) -> list[str]:
    path = server.data_dir / "out" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [str(json.loads(line)["messageId"]) for line in path.read_text().splitlines() if line]


def metric(server: Server, name: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def test_every_us_section_opt_out_keeps_events_from_advertising(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(ADS_AND_LAKE.format(jurisdiction="CCPA")).start()
    cases = {
        "usca": {"gppString": USCA_OPTED_OUT},
        "uspv1-in-gpp": {"gppString": gpp.encode_header([6]) + "~1YYN"},
        "usprivacy": {"usPrivacy": "1YYN"},
        "usva-unreadable": {"gppString": gpp.encode_header([9]) + "~BVW"},
        "allowed": {"gppString": USCA_DEFAULT},
    }
    batch = [track(name, consent, user=f"u-{name}") for name, consent in cases.items()]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 5 and body["rejected"] == []
    assert body["warnings"] == [
        {
            "index": 3,
            "reason": body["warnings"][0]["reason"],
            "path": "$.batch[3].context.consent.gppString",
        }
    ]
    assert "usva cannot be read" in body["warnings"][0]["reason"]
    # Analytics (not a sale) still flows for all five; advertising only for the one
    # without an opt-out.
    assert wait_for(lambda: len(ids(server, "lake")) == 5)
    assert wait_for(lambda: ids(server, "ads") == ["allowed"])
    server.stop()
    assert ids(server, "ads") == ["allowed"]
    assert "gpp.usca.SaleOptOut, gpp.usca.SharingOptOut" in why(server, "usca", "ads")
    assert "gpp.uspv1.OptOutSale" in why(server, "uspv1-in-gpp", "ads")
    assert "usPrivacy.OptOutSale" in why(server, "usprivacy", "ads")
    assert "gpp.usva (unreadable)" in why(server, "usva-unreadable", "ads")
    assert "Traceback" not in server.log.read_text()


def test_unreadable_tc_string_never_rejects_and_grants_nothing(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(ADS_AND_LAKE.format(jurisdiction="GDPR")).start()
    batch = [
        track(
            f"tc-{i}",
            {"tcString": tc, "categoryPreferences": {"analytics": True}},
            user=f"tc-user-{i}",
        )
        for i, tc in enumerate(UNREADABLE_TC)
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 3 and body["rejected"] == []
    assert [w["path"] for w in body["warnings"]] == [
        f"$.batch[{i}].context.consent.tcString" for i in range(3)
    ]
    assert all("grants nothing" in w["reason"] for w in body["warnings"])
    # No reason quotes the string itself.
    assert not any(tc in w["reason"] for tc in UNREADABLE_TC for w in body["warnings"])

    # A single call: the same, with the path relative to the message.
    single = server.post(
        "/v1/track",
        {
            "userId": "tc-single",
            "event": "Viewed",
            "messageId": "tc-single",
            "context": {
                "consent": {
                    "tcString": UNREADABLE_TC[1],
                    "gppString": "DBABBg~z",
                    "categoryPreferences": {"analytics": True},
                }
            },
        },
    )
    assert single.status_code == 200, single.text
    assert [w["path"] for w in single.json()["warnings"]] == [
        "$.context.consent.tcString",
        "$.context.consent.gppString",
    ]
    # The categoryPreferences grant carries the events to the analytics lake;
    # the unreadable strings grant no advertising.
    assert wait_for(lambda: len(ids(server, "lake")) == 4)
    assert metric(server, "consentry_ingest_warnings_total") == 5
    server.stop()
    assert sorted(ids(server, "lake")) == ["tc-0", "tc-1", "tc-2", "tc-single"]
    assert ids(server, "ads") == []
