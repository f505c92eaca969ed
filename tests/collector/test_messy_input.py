"""Real-world input (issue 13), against a real `consentry serve` over loopback.

Each test sends what a messy storefront client sends and checks the event is
kept with Segment's semantics, the response lists a warning with its JSON
path, and nothing answers 5xx.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import WRITE_KEY, Server, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("messy")
    srv = Server(root / "data", "[ingest]\nmax_depth = 64\n").start()
    yield srv
    srv.stop()


def _track(marker: str, **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "userId": "messy-user",
        "event": "Messy",
        "properties": {"marker": marker},
        "context": dict(CONSENTED),
    }
    message.update(fields)
    return message


def _out(server: Server, marker: str, count: int = 1) -> list[dict[str, Any]]:
    """The events with this marker that reached the jsonl destination."""

    def found() -> list[dict[str, Any]]:
        return [
            e
            for e in read_jsonl(server.data_dir / "out")
            if isinstance(e.get("properties"), dict) and e["properties"].get("marker") == marker
        ]

    events = wait_for(lambda: len(found()) >= count and found())
    assert events, f"no event {marker!r} reached the destination"
    return events


def _post_raw(server: Server, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + path,
        content=body,
        auth=(WRITE_KEY, ""),
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def _parse(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# -- 1. clock skew and timestamps -------------------------------------------------


def test_clock_skew_is_corrected_with_segment_formula(server: Server) -> None:
    now = datetime.now(UTC)
    sent = now + timedelta(hours=1)
    device = sent - timedelta(seconds=5)
    r = server.post(
        "/v1/batch",
        {
            "sentAt": sent.isoformat(),
            "batch": [
                _track("skew-1", timestamp=device.isoformat()),
                _track("skew-2"),
            ],
        },
    )
    assert r.status_code == 200, r.text
    (one,) = _out(server, "skew-1")
    (two,) = _out(server, "skew-2")
    received = _parse(str(one["receivedAt"]))
    assert abs(received - now) < timedelta(seconds=30)
    # timestamp = receivedAt - (sentAt - originalTimestamp): 5 s before receipt.
    assert _parse(str(one["timestamp"])) == received - timedelta(seconds=5)
    assert _parse(str(one["originalTimestamp"])) == device.replace(
        microsecond=device.microsecond // 1000 * 1000
    )
    assert _parse(str(one["sentAt"])) == sent.replace(microsecond=sent.microsecond // 1000 * 1000)
    # No device time: the receive time.
    assert two["timestamp"] == two["receivedAt"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T10:00:00", "2024-01-01T10:00:00.000Z"),  # no zone: UTC
        ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00.000Z"),
        ("2024-01-01 10:00:00.5", "2024-01-01T10:00:00.500Z"),
        (1714564800000, "2024-05-01T12:00:00.000Z"),  # epoch milliseconds
    ],
)
def test_timestamp_forms_leave_as_utc_z(server: Server, value: object, expected: str) -> None:
    marker = f"form-{value}"
    r = server.post("/v1/track", _track(marker, timestamp=value))
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == []
    (event,) = _out(server, marker)
    assert event["timestamp"] == expected
    assert event["originalTimestamp"] == expected


@pytest.mark.parametrize("value", ["Invalid Date", "", "2024-02-30", True, {"a": 1}])
def test_unreadable_timestamp_keeps_event_with_warning(server: Server, value: object) -> None:
    marker = f"badtime-{value}"
    r = server.post(
        "/v1/batch", {"batch": [_track("neighbour-" + marker), _track(marker, timestamp=value)]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["rejected"] == []
    assert [(w["index"], w["path"]) for w in body["warnings"]] == [(1, "$.batch[1].timestamp")]
    assert "receive time" in body["warnings"][0]["reason"]
    if isinstance(value, str) and value:
        assert value not in body["warnings"][0]["reason"]
    (event,) = _out(server, marker)
    assert event["timestamp"] == event["receivedAt"]
    assert "originalTimestamp" not in event


# -- 2. integer ids ---------------------------------------------------------------


def test_integer_ids_pseudonymize_like_their_string(server: Server) -> None:
    for marker, user in (("int-id", 12345), ("str-id", "12345")):
        r = server.post("/v1/track", _track(marker, userId=user, anonymousId=user))
        assert r.status_code == 200, r.text
    r = server.post("/v1/batch", {"batch": [_track("int-batch", userId=12345)]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    (as_int,) = _out(server, "int-id")
    (as_str,) = _out(server, "str-id")
    (in_batch,) = _out(server, "int-batch")
    assert as_int["userId"] == as_str["userId"] == in_batch["userId"]
    assert as_int["anonymousId"] == as_str["anonymousId"]
    assert "12345" not in json.dumps(as_int)
    r = server.post(
        "/v1/group",
        {"userId": 7, "groupId": 99, "traits": {}, "context": CONSENTED},
    )
    assert r.status_code == 200, r.text
    r = server.post("/v1/alias", {"userId": 7, "previousId": 6, "context": CONSENTED})
    assert r.status_code == 200, r.text


def test_bool_id_is_still_rejected_with_path(server: Server) -> None:
    r = server.post("/v1/track", _track("bool-id", userId=True))
    assert r.status_code == 400
    assert r.json()["path"] == "$.userId"


# -- 3. bytes that are not UTF-8 ---------------------------------------------------


def test_latin1_bytes_are_replaced_with_a_warning(server: Server) -> None:
    text = json.dumps(_track("latin-single", properties={"marker": "latin-single"}))
    body = text.replace('"Messy"', '"caf\\u00e9"').encode().replace(b"caf\\u00e9", b"caf\xe9")
    r = _post_raw(server, "/v1/track", body)
    assert r.status_code == 200, r.text
    (warning,) = r.json()["warnings"]
    assert warning["index"] == 0 and warning["path"] == "$"
    assert "byte" in warning["reason"]
    (event,) = _out(server, "latin-single")
    assert event["event"] == "caf\ufffd"

    messages = [json.dumps(_track(f"latin-{i}")) for i in range(3)]
    messages[1] = messages[1].replace('"Messy"', '"M\\u00e9ssy"')
    batch = ('{"batch": [' + ", ".join(messages) + "]}").encode().replace(b"\\u00e9", b"\xe9")
    r = _post_raw(server, "/v1/batch", batch)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    assert [(w["index"], w["path"]) for w in r.json()["warnings"]] == [(1, "$.batch[1]")]
    assert _out(server, "latin-1")[0]["event"] == "M\ufffdssy"


def test_lone_surrogate_affects_only_its_message(server: Server) -> None:
    messages = [json.dumps(_track(f"surrogate-{i}")) for i in range(3)]
    messages[2] = messages[2].replace('"Messy"', '"Messy \\ud83d"')
    batch = ('{"batch": [' + ", ".join(messages) + "]}").encode()
    r = _post_raw(server, "/v1/batch", batch)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    assert [(w["index"], w["path"]) for w in r.json()["warnings"]] == [(2, "$.batch[2]")]
    assert "U+FFFD" in r.json()["warnings"][0]["reason"]
    assert _out(server, "surrogate-2")[0]["event"] == "Messy \ufffd"
    assert _out(server, "surrogate-0")[0]["event"] == "Messy"
    # A complete pair is an emoji, not a repair.
    ok = json.dumps(_track("surrogate-pair", event="\U0001f600")).encode()
    r = _post_raw(server, "/v1/track", ok)
    assert r.status_code == 200 and r.json()["warnings"] == []


# -- 4. deep nesting -----------------------------------------------------------------


def _deep_track(marker: str, depth: int) -> bytes:
    """A track whose ``properties.n`` nests ``depth`` objects (as text: too deep
    for Python's own JSON encoder)."""
    nested = '{"x": ' * depth + "{}" + "}" * depth
    head = json.dumps(_track(marker, properties={"marker": marker, "n": "N"}))
    return head.replace('"N"', nested).encode()


def test_deep_nesting_is_400_single_and_quarantined_in_batch(server: Server) -> None:
    deep = _deep_track("deep", 980)
    r = _post_raw(server, "/v1/track", deep)
    assert r.status_code == 400, r.text
    assert "64" in r.json()["error"]
    assert r.json()["path"].startswith("$.properties.n.x.x")
    ok = json.dumps(_track("deep-ok")).encode()
    r = _post_raw(server, "/v1/batch", b'{"batch": [' + ok + b", " + deep + b"]}")
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    (rejected,) = r.json()["rejected"]
    assert rejected["index"] == 1 and rejected["path"].startswith("$.batch[1].properties.n.x")
    _out(server, "deep-ok")
    # The top object is level 1, properties 2, n 3: 61 more objects reach 64.
    assert _post_raw(server, "/v1/track", _deep_track("deep-fine", 61)).status_code == 200
    r = _post_raw(server, "/v1/track", _deep_track("deep-fine", 62))
    assert r.status_code == 400
    # Past what the JSON decoder itself can follow: only that message is lost.
    body = b'{"batch": [' + ok + b", " + b"[" * 5000 + b"]" * 5000 + b"]}"
    r = _post_raw(server, "/v1/batch", body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["rejected"][0]["index"] == 1
    r = _post_raw(server, "/v1/track", b"[" * 5000 + b"]" * 5000)
    assert r.status_code == 400
    context = b'{"batch": [], "context": ' + b'{"a": ' * 100 + b"{}" + b"}" * 100 + b"}"
    r = _post_raw(server, "/v1/batch", context)
    assert r.status_code == 400 and r.json()["path"].startswith("$.context.a.a")


def test_depth_limit_is_configurable(server_factory: Any) -> None:
    srv = server_factory("[ingest]\nmax_depth = 4\n").start()
    r = srv.post("/v1/track", _track("d", properties={"a": {"b": {"c": {}}}}))
    assert r.status_code == 400 and r.json()["path"] == "$.properties.a.b.c"
    assert srv.post("/v1/track", _track("d", properties={"a": {"b": {}}})).status_code == 200


# -- 6. IP forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("::ffff:203.0.113.77", "203.0.113.0"),
        ("203.0.113.77:51234", "203.0.113.0"),
        ("[2001:db8::1]:443", "2001:db8::"),
        ("203.0.113.77, 198.51.100.9", "203.0.113.0"),
        (" 203.0.113.77 ", "203.0.113.0"),
    ],
)
def test_ip_forms_are_truncated(server: Server, ip: str, expected: str) -> None:
    marker = f"ip-{ip}"
    r = server.post("/v1/track", _track(marker, context={**CONSENTED, "ip": ip}))
    assert r.status_code == 200, r.text
    (event,) = _out(server, marker)
    assert event["context"]["ip"] == expected


def test_unreadable_ip_is_removed_with_warning(server: Server) -> None:
    r = server.post("/v1/track", _track("ip-junk", context={**CONSENTED, "ip": "unknown"}))
    assert r.status_code == 200, r.text
    assert [(w["index"], w["path"]) for w in r.json()["warnings"]] == [(0, "$.context.ip")]
    (event,) = _out(server, "ip-junk")
    assert "ip" not in event["context"]


# -- 7. gzip ----------------------------------------------------------------------------------


def test_gzip_members_x_gzip_and_truncated_trailer(server: Server) -> None:
    text = json.dumps({"batch": [_track("gz-multi")]}).encode()
    two = gzip.compress(text[:20]) + gzip.compress(text[20:])
    r = _post_raw(server, "/v1/batch", two, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    _out(server, "gz-multi")
    text = json.dumps({"batch": [_track("gz-x")]}).encode()
    r = _post_raw(server, "/v1/batch", gzip.compress(text), **{"Content-Encoding": "x-gzip"})
    assert r.status_code == 200, r.text
    text = json.dumps({"batch": [_track("gz-cut")]}).encode()
    r = _post_raw(server, "/v1/batch", gzip.compress(text)[:-8], **{"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert "truncated" in r.json()["error"]
    r = _post_raw(server, "/v1/batch", gzip.compress(text)[:-3], **{"Content-Encoding": "gzip"})
    assert r.status_code == 400


# -- 8. the path prefix of a consent-string error -------------------------------------------


def test_consent_string_path_is_not_doubled(server: Server) -> None:
    # A TCF v1 string (version field 1).
    bad = _track("tcf-v1", context={"consent": {"tcString": "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"}})
    r = server.post("/v1/batch", {"batch": [bad]})
    assert r.status_code == 200, r.text
    body = r.json()
    (path,) = [x["path"] for x in body["rejected"] + body.get("warnings", [])]
    assert path == "$.batch[0].context.consent.tcString"  # was $.batch[0].batch[0]


def test_response_lists_no_warnings_for_clean_input(server: Server) -> None:
    r = server.post("/v1/batch", {"batch": [_track("clean")]})
    assert r.status_code == 200
    assert r.json()["warnings"] == []


def test_warnings_are_counted_in_metrics(server: Server) -> None:
    def count() -> float:
        text = httpx.get(server.url + "/metrics").text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("consentry_ingest_warnings_total{") and (
                'warning="time_unreadable"' in line
            ):
                total += float(line.split()[-1])
        return total

    before = count()
    r = server.post("/v1/track", _track("metric", timestamp="Invalid Date"))
    assert r.status_code == 200
    assert count() == before + 1


# -- 5. malformed identifying traits -------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "email"),  # markers hold no address or number: the PII scan would rewrite them
    [
        ("trait-na", "n/a"),
        ("trait-localhost", "jane.doe@localhost"),
        ("trait-display", "Jane Doe <jane@example.com>"),
        ("trait-number", 42),
        ("trait-object", {"v": 1}),
    ],
)
def test_unusable_email_trait_keeps_event_never_raw(
    server: Server, marker: str, email: object
) -> None:
    message = _track(marker, context={**CONSENTED, "traits": {"email": email}})
    r = server.post("/v1/batch", {"batch": [message]})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["rejected"] == []
    (warning,) = r.json()["warnings"]
    assert "not used to link" in warning["reason"]
    assert warning["path"] == "$.batch[0].context.traits.email"
    assert str(email) not in warning["reason"]
    (event,) = _out(server, marker)
    kept = event["context"]["traits"]["email"]
    assert isinstance(kept, str) and kept != email and "jane" not in kept.lower()


def test_national_phone_without_region_keeps_event(server: Server) -> None:
    r = server.post(
        "/v1/track",
        _track("phone-national", context={**CONSENTED, "traits": {"phone": "030 1234567"}}),
    )
    assert r.status_code == 200, r.text
    assert [(w["index"], w["path"]) for w in r.json()["warnings"]] == [
        (0, "$.context.traits.phone")
    ]
    (event,) = _out(server, "phone-national")
    assert "1234567" not in json.dumps(event)


# -- 12. request errors name what is allowed ---------------------------------------------------


def test_consent_method_error_lists_the_allowed_values(server: Server) -> None:
    call = {"userId": "u-consent", "purposes": {"analytics": "granted"}, "method": "checkbox"}
    r = server.post("/v1/consent", call)
    assert r.status_code == 400 and r.json()["path"] == "$.method"
    assert "banner_accept" in r.json()["error"] and "checkbox" not in r.json()["error"]
    r = server.post("/v1/consent", {**call, "method": "api", "purposes": {"analytics": "yes"}})
    assert r.status_code == 400 and "granted, denied" in r.json()["error"]
