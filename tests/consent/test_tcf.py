"""TCF v2 decoder against published vectors (IAB decoders' test fixtures)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import ConsentSignalError, tcf

# From GDPR::IAB::TCFv2's test suite (t/01-parse.t), values as asserted there.
BITFIELD = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
RANGE = "COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA"
RESTRICTIONS = "COxPe2TOxPe2TALABAENAPCgAAAAAAAAAAAAAFAAAAoAAA4IACACAIABgACAFA4ADACAAIygAGADwAQBIAIAIB0AEAEBSACACAA"


def test_bitfield_vector() -> None:
    t = tcf.decode(BITFIELD)
    assert t.version == 2
    assert t.created == datetime.fromtimestamp(1228644257.7, UTC)
    assert t.last_updated == datetime.fromtimestamp(1326215413.4, UTC)
    assert (t.cmp_id, t.cmp_version, t.consent_screen) == (21, 7, 2)
    assert (t.consent_language, t.vendor_list_version, t.policy_version) == ("EN", 23, 2)
    assert t.is_service_specific and not t.use_non_standard_texts and not t.purpose_one_treatment
    assert t.publisher_cc == "KM"
    assert t.purpose_consents == {1, 3, 9, 10}
    assert t.purpose_legitimate_interests == {3, 4, 5, 8, 9, 10}
    assert t.special_feature_optins == {2}
    assert t.vendor_consents == {
        2,
        3,
        6,
        7,
        8,
        10,
        12,
        13,
        14,
        15,
        16,
        21,
        25,
        27,
        30,
        31,
        34,
        35,
        37,
        38,
        39,
        42,
        43,
        49,
        52,
        54,
        55,
        56,
        57,
        59,
        60,
        63,
        64,
        65,
        66,
        67,
        68,
        69,
        73,
        74,
        76,
        78,
        83,
        86,
        87,
        89,
        90,
        92,
        96,
        99,
        100,
        106,
        109,
        110,
        114,
        115,
    }
    assert t.vendor_legitimate_interests == {1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113}
    assert (t.max_vendor_consent, t.max_vendor_legitimate_interest) == (115, 113)
    assert t.publisher_restrictions == () and t.publisher_tc is None


def test_range_vector() -> None:
    t = tcf.decode(RANGE)
    assert t.created == datetime.fromtimestamp(1587946020, UTC)
    assert (t.cmp_id, t.cmp_version, t.consent_screen, t.vendor_list_version) == (3, 2, 7, 48)
    assert not t.is_service_specific and t.publisher_cc == "AA"
    assert t.purpose_consents == set() and t.special_feature_optins == set()
    assert t.vendor_consents == {23, 42, 126, 127, 128, 587, 613, 626}
    assert t.vendor_legitimate_interests == {24, 44, 129, 130, 131, 591, 614, 628}


def test_publisher_restrictions_vector() -> None:
    t = tcf.decode(RESTRICTIONS)
    by_vendor: dict[int, dict[int, set[int]]] = {}
    for r in t.publisher_restrictions:
        for v in r.vendors:
            by_vendor.setdefault(v, {}).setdefault(r.purpose_id, set()).add(r.restriction_type)
    assert by_vendor[32] == {1: {0}, 2: {0, 1}, 7: {0, 1}, 10: {0, 1}}
    assert 0 in by_vendor[5][2] and 0 in by_vendor[11][2]
    assert 44 not in by_vendor and 284 not in by_vendor


def test_publisher_tc_segments() -> None:
    p = tcf.decode(BITFIELD + ".argAC0gAAAAAAAAAAAA").publisher_tc
    assert p is not None
    assert p.purpose_consents == {2, 4, 6, 8, 9, 10} and p.purpose_legitimate_interests == {
        2,
        4,
        5,
        7,
        10,
    }
    assert p.num_custom_purposes == 0
    p = tcf.decode(BITFIELD + ".YAAAAAAAAXA").publisher_tc
    assert p is not None and p.num_custom_purposes == 2
    assert p.custom_purpose_consents == {1, 2} and p.custom_purpose_legitimate_interests == {1}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASAAAAAAAAAA", "version 1 is not supported"),
        ("Clc", "ends early"),
        (RANGE[:-2] + "!A", "not base64url"),
        ("COvcSpYOvcSpYC9AAAENAPCAAAAAAAAAAAAAAFAAAAA", "ends early"),
        ("COvcSpYOvcSpYC9AAAENAPCAAAAAAAAAAAAAAFQBgAAgABAACAAEAAQAAgAA", "ends early"),
        (BITFIELD + ".4AAA", "unknown type"),
    ],
)
def test_malformed_strings_raise_consent_signal_error(text: str, needle: str) -> None:
    with pytest.raises(ConsentSignalError, match=needle):
        tcf.decode(text)


def test_encoder_reproduces_the_range_vector() -> None:
    assert tcf.encode(tcf.decode(RANGE), ranges=True) == RANGE


@settings(max_examples=300)
@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~ ",
        max_size=200,
    )
)
def test_decoder_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(ConsentSignalError):
        tcf.decode(text)


@settings(max_examples=200)
@given(st.data())
def test_prefix_mutations_never_raise_anything_else(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from([BITFIELD, RANGE, RESTRICTIONS]))
    cut = data.draw(st.integers(0, len(base)))
    ch = data.draw(st.sampled_from("AQgw_-9"))
    with contextlib.suppress(ConsentSignalError):
        tcf.decode(base[:cut] + ch + base[cut + 1 :])


ids = st.frozensets(st.integers(1, 300), max_size=40)


@settings(max_examples=150)
@given(
    st.frozensets(st.integers(1, 24)),
    st.frozensets(st.integers(1, 24)),
    st.frozensets(st.integers(1, 12)),
    ids,
    ids,
    st.booleans(),
    st.integers(0, 4095),
    st.sampled_from(["EN", "DE", "ZH"]),
)
def test_round_trip(purposes, li, special, vendors, vendors_li, ranges, cmp_id, lang) -> None:
    base = tcf.decode(BITFIELD)
    tc = replace(
        base,
        purpose_consents=purposes,
        purpose_legitimate_interests=li,
        special_feature_optins=special,
        vendor_consents=vendors,
        vendor_legitimate_interests=vendors_li,
        cmp_id=cmp_id,
        consent_language=lang,
        publisher_restrictions=(tcf.PublisherRestriction(2, 1, frozenset({5, 6, 7, 40})),),
        disclosed_vendors=vendors,
        publisher_tc=tcf.PublisherTC(purposes, li, 3, frozenset({1}), frozenset({3})),
    )
    again = tcf.decode(tcf.encode(tc, ranges=ranges))
    assert again == tc


@pytest.mark.parametrize("tail", ["\n", " ", "=", "\t"])
def test_a_string_with_a_trailing_non_base64url_character_is_a_signal_error(tail: str) -> None:
    # "^...$" with re.match accepted a final newline and the decoder raised KeyError.
    from consent.bits import decode_b64url

    with pytest.raises(ConsentSignalError, match="not base64url"):
        decode_b64url("CPXxRfAPXxRfAAfKABENB" + tail, "tcString")
