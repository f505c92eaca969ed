"""Stage A: the encode-once template path gives exactly what the per-destination
path gives, for any message."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import JsonlDestinationConfig
from collector.errors import InvalidMessage
from collector.pipeline.decode import decode_message
from collector.pipeline.prepare import IngestOptions, Preparer
from consent.purposes import DEFAULT_CATEGORY_MAP
from identity import Keyring, Pseudonymizer

FAST = JsonlDestinationConfig(name="fast", purposes=["analytics"], pseudonym_domain="shared")
SLOW = JsonlDestinationConfig(
    name="slow",
    purposes=["analytics"],
    pseudonym_domain="shared",
    fields={"context.locale": "keep"},
)
preparer = Preparer(
    Pseudonymizer(Keyring.generate()),
    IngestOptions(
        destinations=[FAST, SLOW],
        category_map=DEFAULT_CATEGORY_MAP,
        pi_rules={},
        country_jurisdictions={},
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["track", "identify", "alias", "page"]),
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    st.one_of(st.none(), st.sampled_from(["203.0.113.9", "2001:db8::1", "not-an-ip"])),
    st.booleans(),
)
def test_template_path_equals_per_destination_path(kind, props, ip, with_email) -> None:
    msg: dict[str, object] = {
        "type": kind,
        "userId": "RAW-USER-ID",
        "anonymousId": "RAW-ANON-ID",
        "event": "E",
        "previousId": "old-1",
        "properties": props,
        "context": {"locale": "de", "traits": {"email": "x@y.co"} if with_email else {}},
    }
    if ip:
        msg["context"]["ip"] = ip  # type: ignore[index]
    if kind == "identify":
        msg["traits"] = {**props, "email": "Z@Y.co", "phone": "+4915112345678"}
    message = decode_message(msgspec.json.encode(msg), index=0, prefix="$")
    p = preparer.prepare(message, index=0, prefix="$", received_at=datetime(2026, 1, 1, tzinfo=UTC))
    fast, slow = (msgspec.json.decode(p.payloads[n]) for n in ("fast", "slow"))
    assert fast == slow
    if p.alias_user_payloads is not None:
        assert msgspec.json.decode(p.alias_user_payloads["fast"]) == msgspec.json.decode(
            p.alias_user_payloads["slow"]
        )
    raw = p.payloads["fast"]
    assert b"RAW-USER-ID" not in raw and b"RAW-ANON-ID" not in raw and b"__cs" not in raw


def test_placeholders_are_absent_not_errors() -> None:
    """One definition of "no value" (identity's) for ingest and normalization."""
    for junk in ("00000000-0000-0000-0000-000000000000", "[object Object]", " NULL "):
        msg = {"type": "track", "userId": "RAW-USER-ID", "anonymousId": junk, "event": "E"}
        p = preparer.prepare(
            decode_message(msgspec.json.encode(msg), index=0, prefix="$"),
            index=0,
            prefix="$",
            received_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        assert [i.kind for i in p.identifiers] == ["user_id"]
        assert "anonymousId" not in msgspec.json.decode(p.payloads["fast"])


def _fresh() -> Preparer:
    return Preparer(preparer._ps, preparer._opt)


_ids = st.sampled_from(["u-1", "u-2", " U-1 ", "null", "", "ps1.zz.not-ours"]) | st.none()
_consents = st.sampled_from(
    [
        None,
        {"categoryPreferences": {"analytics": True}},
        {"categoryPreferences": {"analytics": False, "advertising": True}},
        {"gpc": True},
        {"categoryPreferences": {"analytics": "yes"}},
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_ids, _ids, _consents), min_size=1, max_size=12))
def test_memoized_prepare_equals_a_fresh_preparer(seq) -> None:
    """The memos (normalized ids, identifiers, consent signals, per-destination
    pseudonyms) never change an answer: a long-lived Preparer answers every
    message, in any order, as a new one would, errors included."""
    warm = _fresh()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (user, anon, consent) in enumerate(seq):
        msg: dict[str, object] = {"type": "track", "event": "E", "messageId": f"m{i}"}
        if user is not None:
            msg["userId"] = user
        if anon is not None:
            msg["anonymousId"] = anon
        if consent is not None:
            msg["context"] = {"consent": consent}
        message = decode_message(msgspec.json.encode(msg), index=0, prefix="$")
        answers = []
        for p in (warm, _fresh()):
            try:
                got = p.prepare(message, index=0, prefix="$", received_at=at)
                answers.append((got.identifiers, got.payloads, got.signals, got.facts))
            except InvalidMessage as exc:
                answers.append(exc.args)
        assert answers[0] == answers[1]
