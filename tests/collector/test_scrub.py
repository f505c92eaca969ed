"""Personal data anywhere in a message never leaves raw (issue 14 §1), in process:
the scrub step alone, then the Preparer's payloads for every kind of destination."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import FieldRule, JsonlDestinationConfig
from collector.pipeline import scrub
from collector.pipeline.decode import decode_message
from collector.pipeline.prepare import IngestOptions, Preparer
from consent.purposes import DEFAULT_CATEGORY_MAP
from identity import Keyring, Pseudonymizer
from identity.pseudonym import INTERNAL
from tests.identity.test_pii import _paths, _plant, cards, cn_ids, e164_phones, emails, trees

AT = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = scrub.policy(region="CN")
planted_values = st.one_of(
    emails().map(lambda e: ("email", e)),
    e164_phones().map(lambda p: ("phone", p[0])),
    st.sampled_from(["138 0013 8000", "13800138000"]).map(lambda p: ("phone", p)),
    cards().map(lambda c: ("card", c)),
    cn_ids().map(lambda c: ("cn_resident_id", c)),
)


def _placeholder(i: int) -> str:
    return f"<<{i}>>"


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["properties", "traits", "context"]), trees, st.data(), planted_values)
def test_scrub_replaces_a_planted_value_and_leaves_the_input_alone(
    section: str, tree: dict[str, Any], data: st.DataObject, planted: tuple[str, str]
) -> None:
    kind, value = planted
    message: dict[str, Any] = {"type": "track", section: tree}
    path = data.draw(st.sampled_from(_paths(tree, (section,))))
    _plant(message, path, f"see {value} ")
    before = copy.deepcopy(message)
    result = scrub.scrub(message, POLICY, placeholder=_placeholder, first=3)
    assert message == before  # copied on write
    assert result is not None
    assert value not in msgspec.json.encode(result.data).decode()
    assert [(r.kind, r.path) for r in result.replaced] == [(kind, scrub.json_path(path))]
    if kind in ("email", "phone"):
        assert len(result.values) == 1 and result.values[0][0] == kind
        assert "<<3>>" in msgspec.json.encode(result.data).decode()
    else:
        assert result.values == () and "[removed]" in msgspec.json.encode(result.data).decode()


def test_a_value_that_is_only_a_removed_number_loses_its_key() -> None:
    result = scrub.scrub(
        {"properties": {"card": "4111 1111 1111 1111", "list": ["4111111111111111", "ok"]}},
        POLICY,
        placeholder=_placeholder,
        first=0,
    )
    assert result is not None
    assert result.data == {"properties": {"list": [None, "ok"]}}


def test_actions_and_kinds_are_tunable() -> None:
    rules = scrub.policy(region=None, actions={"card": "pseudonymize"}, kinds=["card"])
    message = {"properties": {"c": "4111111111111111", "e": "a@b.co"}}
    result = scrub.scrub(message, rules, placeholder=_placeholder, first=0)
    assert result is not None
    assert result.data == {"properties": {"c": "<<0>>", "e": "a@b.co"}}


# -- the Preparer: every destination's payload --------------------------------------------
PLAIN = JsonlDestinationConfig(name="plain", purposes=["analytics"])
KEEPER = JsonlDestinationConfig(name="keeper", purposes=["analytics"])


def _preparer(fields: dict[str, FieldRule]) -> Preparer:
    keeper = JsonlDestinationConfig(name="keeper", purposes=["analytics"], fields=fields)
    allow = JsonlDestinationConfig(
        name="allow", purposes=["analytics"], allow_properties=["planted", "a", "b", "c", "d"]
    )
    return Preparer(
        PS,
        IngestOptions(
            destinations=[PLAIN, keeper, allow],
            category_map=DEFAULT_CATEGORY_MAP,
            pi_rules={},
            country_jurisdictions={},
            scrub=POLICY,
        ),
    )


PS = Pseudonymizer(Keyring.generate())


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["track", "identify", "alias", "page"]),
    st.sampled_from(["properties", "traits", "context"]),
    trees,
    st.data(),
    planted_values,
)
def test_no_destination_payload_holds_a_planted_value(
    kind: str, section: str, tree: dict[str, Any], data: st.DataObject, planted: tuple[str, str]
) -> None:
    what, value = planted
    message: dict[str, Any] = {
        "type": kind,
        "userId": "u-1",
        "previousId": "old-1",
        "event": "E",
        section: {"a": tree},
    }
    path = data.draw(st.sampled_from(_paths(message[section], (section,))))
    _plant(message, path, f"note {value}")
    # A destination that asks to keep exactly that path still never gets it raw.
    dotted = ".".join(str(k) for k in path)
    preparer = _preparer({dotted: "keep"} if all(isinstance(k, str) for k in path) else {})
    decoded = decode_message(msgspec.json.encode(message), index=0, prefix="$")
    p = preparer.prepare(decoded, index=0, prefix="$", received_at=AT)
    outputs = [*p.payloads.values(), *(p.alias_user_payloads or {}).values()]
    for payload in outputs:
        assert value.encode() not in payload
        assert b"__cs" not in payload  # every placeholder filled
    if value not in msgspec.json.encode(decoded).decode():
        return  # a section this message type does not have (traits of a track)
    assert p.scrubbed and p.scrubbed[0].startswith(f"pii: {what} ")
    if what in ("email", "phone"):
        plain = msgspec.json.decode(p.payloads["plain"])
        dest = PS.pseudonym_normalized(what, _normalized(value, what), "dest:plain")
        assert dest in msgspec.json.encode(plain).decode()
        assert (
            PS.pseudonym_normalized(what, _normalized(value, what), INTERNAL).encode()
            not in (p.payloads["plain"])
        )


def _normalized(value: str, kind: str) -> str:
    from identity.pii import scan_text

    (span,) = scan_text(value, POLICY.options)
    assert span.kind == kind
    return span.normalized


def test_identifier_keys_device_ids_and_urls_in_a_real_looking_message() -> None:
    message = {
        "type": "page",
        "userId": "u-1",
        "properties": {"phone": "+86 138 0013 8000", "name": "Widget"},
        "context": {
            "traits": {"Email": "Jane@Example.com", "emailAddress": "jane@example.com"},
            "page": {"url": "https://shop.example/?email=jane%40example.com&utm=x"},
            "device": {"advertisingId": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "id": "d-1"},
        },
    }
    p = _preparer({}).prepare(
        decode_message(msgspec.json.encode(message), index=0, prefix="$"),
        index=0,
        prefix="$",
        received_at=AT,
    )
    out = msgspec.json.decode(p.payloads["plain"])
    email = PS.pseudonym_normalized("email", "jane@example.com", "dest:plain")
    assert out["context"]["traits"] == {"Email": email, "emailAddress": email}
    assert out["context"]["page"]["url"] == f"https://shop.example/?email={email}&utm=x"
    device = out["context"]["device"]
    assert device["advertisingId"] == PS.pseudonym_normalized(
        "device_id", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "dest:plain"
    )
    assert out["properties"]["phone"] == PS.pseudonym_normalized(
        "phone", "+8613800138000", "dest:plain"
    )
    assert "jane" not in msgspec.json.encode(out).decode().lower()
    assert sorted(p.scrubbed) == sorted(
        [
            "pii: email pseudonymized at $.context.traits.Email",
            "pii: email pseudonymized at $.context.traits.emailAddress",
            "pii: phone pseudonymized at $.properties.phone",
            "pii: email pseudonymized at $.context.page.url",
            "pii: device_id pseudonymized at $.context.device.advertisingId",
            "pii: device_id pseudonymized at $.context.device.id",
        ]
    )


def test_a_rejection_never_quotes_a_consent_category_named_by_an_email() -> None:
    message = {
        "type": "track",
        "userId": "u-1",
        "event": "E",
        "context": {"consent": {"categoryPreferences": {"jane.doe@example.com": "yes"}}},
    }
    try:
        _preparer({}).prepare(
            decode_message(msgspec.json.encode(message), index=0, prefix="$"),
            index=0,
            prefix="$",
            received_at=AT,
        )
    except ValueError as exc:
        reason, path = exc.args
    else:
        raise AssertionError("a non-boolean category is rejected")
    for text in (reason, path):
        assert "jane" not in text and "example" not in text and "@" not in text
    assert path.startswith("$.context.consent.categoryPreferences")


def test_warnings_and_rejections_never_quote_a_key_that_is_personal_data() -> None:
    from collector.pipeline.decode import Rejection
    from collector.pipeline.warnings import InputWarning

    path = "$.batch[2].properties.jane.doe@example.com.note"
    warning = InputWarning(2, "nul_replaced", "U+0000 became U+FFFD", path)
    rejection = Rejection(2, f"{path} must be a string", path, b"")
    for text in (warning.path, rejection.path, rejection.reason):
        assert "jane" not in text and "@" not in text
        assert text.startswith("$.batch[2].properties.<redacted>")
    assert warning.reason == "U+0000 became U+FFFD"
