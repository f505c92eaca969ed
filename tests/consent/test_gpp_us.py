"""GPP US state sections and the US Privacy string against the IAB's published vectors.

Vectors (field values and the strings they encode to) come from the IAB Tech
Lab reference encoders' test suites:
- ``IABTechLab/iabgpp-java`` ``iabgpp-encoder/src/test/java/com/iab/gpp/encoder/section/``
  ``UsCaTest``, ``UsVaTest``, ``UsCoTest``, ``UsUtTest``, ``UsCtTest``, ``UsFlTest``,
  ``UsTxTest`` (testEncode1,
  testEncode2, testEncodeWithGpcSegmentExcluded, testDecode1) and ``UspV1Test``;
- ``IABTechLab/iabgpp-es`` ``modules/cmpapi/test/encoder/section/UsCa.test.ts`` (same
  vectors). Whole strings with several sections and a ranged header come from
  ``LiveRamp/iabconsent`` ``gpp_parsed_consent_fixture_test.go``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import ConsentSignalError, gpp, gpp_us
from consent.gpp_us import LAYOUTS, decode_state, decode_usp, encode_state

MSPA_112 = {"MspaCoveredTransaction": 1, "MspaOptOutOptionMode": 1, "MspaServiceProviderMode": 2}


def _defaults(sid: int) -> dict[str, Any]:
    """The reference encoders' defaults: every field 0, MspaCoveredTransaction 1."""
    _, layout, _ = LAYOUTS[sid]
    return {
        name: (1 if name == "MspaCoveredTransaction" else 0) if n is None else (0,) * n
        for name, n in layout
    }


# (section id, encoded, non-default field values, GPC sub-section: None = absent, else its flag)
VECTORS: list[tuple[int, str, dict[str, Any], bool | None]] = [
    # UsCaTest.testEncode1 / testEncodeWithGpcSegmentExcluded / testEncode2 + testDecode1
    (8, "BAAAAABA.QA", {}, False),
    (8, "BAAAAABA", {}, None),
    (
        8,
        "BVWSSSVY.YA",
        {
            "SaleOptOutNotice": 1,
            "SharingOptOutNotice": 1,
            "SensitiveDataLimitUseNotice": 1,
            "SaleOptOut": 1,
            "SharingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1, 0),
            "KnownChildSensitiveDataConsents": (2, 1),
            "PersonalDataConsents": 1,
            **MSPA_112,
        },
        True,
    ),
    # UsVaTest.testEncode1 / testEncode2 + testDecode1 (Virginia has no GPC sub-section)
    (9, "BAAAABA", {}, None),
    (
        9,
        "BVWSSVY",
        {
            "SharingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1),
            "KnownChildSensitiveDataConsents": 1,
            **MSPA_112,
        },
        None,
    ),
    # UsCoTest.testEncode1 / testEncodeWithGpcSegmentExcluded / testEncode2 + testDecode1
    (10, "BAAAAEA.QA", {}, False),
    (10, "BAAAAEA", {}, None),
    (
        10,
        "BVWSSVg.YA",
        {
            "SharingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2),
            "KnownChildSensitiveDataConsents": 1,
            **MSPA_112,
        },
        True,
    ),
    # UsUtTest.testEncode1 / testEncode2 + testDecode1 (Utah has no GPC sub-section)
    (11, "BAAAAAQA", {}, None),
    (
        11,
        "BVVkklWA",
        {
            "SharingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SensitiveDataProcessingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1),
            "KnownChildSensitiveDataConsents": 1,
            **MSPA_112,
        },
        None,
    ),
    # UsCtTest.testEncode1 / testEncodeWithGpcSegmentExcluded / testEncode2 + testDecode1
    (12, "BAAAAAEA.QA", {}, False),
    (12, "BAAAAAEA", {}, None),
    (
        12,
        "BVWSSZFg.YA",
        {
            "SharingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1),
            "KnownChildSensitiveDataConsents": (2, 1, 0),
            **MSPA_112,
        },
        True,
    ),
    # UsFlTest.testEncode1 / testEncode2 + testDecode1 (Florida has no GPC sub-section)
    (13, "BAAAAABA", {}, None),
    (
        13,
        "BVWSSZlY",
        {
            "ProcessingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1),
            "KnownChildSensitiveDataConsents": (2, 1, 2),
            "AdditionalDataProcessingConsent": 1,
            **MSPA_112,
        },
        None,
    ),
    # UsTxTest.testEncode1 / testEncodeWithGpcSegmentExcluded / testEncode2 + testDecode1
    (16, "BAAAAAQA.QA", {}, False),
    (16, "BAAAAAQA", {}, None),
    (
        16,
        "BVWSSVWA.YA",
        {
            "ProcessingNotice": 1,
            "SaleOptOutNotice": 1,
            "TargetedAdvertisingOptOutNotice": 1,
            "SaleOptOut": 1,
            "TargetedAdvertisingOptOut": 1,
            "SensitiveDataProcessing": (2, 1, 0, 2, 1, 0, 2, 1),
            "KnownChildSensitiveDataConsents": 1,
            "AdditionalDataProcessingConsent": 1,
            **MSPA_112,
        },
        True,
    ),
]


@pytest.mark.parametrize(("sid", "text", "changed", "gpc"), VECTORS)
def test_state_sections_match_the_reference_encoders(
    sid: int, text: str, changed: dict[str, Any], gpc: bool | None
) -> None:
    expected = _defaults(sid) | changed
    section = decode_state(sid, text)
    assert section.version == 1 and dict(section.fields) == expected
    assert section.gpc_segment == (gpc is not None) and section.gpc == bool(gpc)
    assert encode_state(sid, expected, gpc=gpc) == text
    # Through a whole GPP string, with the header our encoder writes.
    whole = gpp.decode(gpp.encode_header([sid]) + "~" + text)
    assert whole.us[sid] == section and not whole.unreadable


@pytest.mark.parametrize(("sid", "text", "changed", "gpc"), [v for v in VECTORS if v[2]])
def test_the_vectors_opt_out_of_sale_and_advertising(
    sid: int, text: str, changed: dict[str, Any], gpc: bool | None
) -> None:
    name = LAYOUTS[sid][0]
    section = decode_state(sid, text)
    expected = tuple(f"{name}.{f}" for f in gpp_us.OPT_OUT_FIELDS if changed.get(f) == 1)
    assert section.opt_outs() == expected and len(expected) == 2
    assert section.purposes() == {"advertising": False, "marketing": False}


@pytest.mark.parametrize(("sid", "text", "changed", "gpc"), [v for v in VECTORS if not v[2]])
def test_default_sections_say_nothing(
    sid: int, text: str, changed: dict[str, Any], gpc: bool | None
) -> None:
    section = decode_state(sid, text)
    assert section.opt_outs() == () and section.purposes() == {}


def test_whole_strings_with_several_us_sections() -> None:
    # LiveRamp/iabconsent fixtures: usnat + usca + usva behind a ranged header (7-9).
    g = gpp.decode("DBABrYA~BVVqAAEABAA~BVoYYZoA~BVoYYYA")
    assert g.section_ids == (7, 8, 9) and set(g.us) == {7, 8, 9}
    assert g.us[8].name == "usca" and g.us[9].name == "usva"
    assert g.opt_outs() == () and g.purposes() == {"advertising": True, "marketing": True}
    # Prebid/LiveRamp: uspv1 and usnat together.
    g = gpp.decode("DBABzw~1YNN~BVVqAAEABAA.QA")
    assert g.names() == ["uspv1", "usnat"] and g.opt_outs() == ()


def test_one_opt_out_in_any_section_denies_and_is_named() -> None:
    usca = encode_state(8, _defaults(8) | {"SaleOptOutNotice": 1, "SaleOptOut": 1}, gpc=False)
    usva = encode_state(9, _defaults(9) | {"SaleOptOutNotice": 1, "SaleOptOut": 2})
    g = gpp.decode(gpp.encode_header([8, 9]) + f"~{usca}~{usva}")
    assert g.opt_outs() == ("usca.SaleOptOut",)
    assert g.purposes() == {"advertising": False, "marketing": False}


@pytest.mark.parametrize(
    ("text", "fields", "opt_outs", "purposes"),
    [
        # UspV1Test.testEncode1 / testEncode2 / testDecode1 / testDecode2
        ("1---", ("-", "-", "-"), (), {}),
        ("1YNN", ("Y", "N", "N"), (), {"advertising": True, "marketing": True}),
        (
            "1NYN",
            ("N", "Y", "N"),
            ("uspv1.OptOutSale",),
            {"advertising": False, "marketing": False},
        ),
        ("1YNY", ("Y", "N", "Y"), (), {"advertising": True, "marketing": True}),
        (
            "1yyn",
            ("Y", "Y", "N"),
            ("uspv1.OptOutSale",),
            {"advertising": False, "marketing": False},
        ),
    ],
)
def test_us_privacy_string(
    text: str, fields: tuple[str, str, str], opt_outs: tuple[str, ...], purposes: dict[str, bool]
) -> None:
    usp = decode_usp(text)
    assert (usp.version, usp.notice, usp.opt_out_sale, usp.lspa_covered) == (1, *fields)
    assert usp.opt_outs() == opt_outs and usp.purposes() == purposes


def test_uspv1_inside_gpp() -> None:
    g = gpp.decode(gpp.encode_header([6]) + "~1YYN")
    assert g.opt_outs() == ("uspv1.OptOutSale",)
    assert g.purposes() == {"advertising": False, "marketing": False}


@pytest.mark.parametrize(
    ("sid", "text", "needle"),
    [
        (8, "z", "version 51"),  # the reference suites' testDecodeGarbage
        (9, "z", "version 51"),
        (9, "BVW", "ends early"),
        (8, "CVWSSSVY.YA", "version 2"),
        (8, "BVWSSSVY.wA", "unknown type"),
        (9, "BVWSSVY.YA", "no sub-sections"),
        (12, "BVWS", "ends early"),
        (10, "BVW$SVg", "not base64url"),
        (6, "2NYY", "version must be 1"),
        (6, "1YX", "4 characters"),
        (6, "1YXN", "OptOutSale must be Y, N or -"),
        (17, "BVVVVVVV", "not decoded"),
    ],
)
def test_unreadable_sections_are_opt_outs(sid: int, text: str, needle: str) -> None:
    g = gpp.decode(gpp.encode_header([sid]) + "~" + text)
    bad = g.unreadable[sid]
    assert needle in bad.reason and sid not in g.us
    assert g.opt_outs() == (f"{gpp.SECTION_NAMES[sid]} (unreadable)",)


def test_an_unreadable_section_does_not_hide_the_others() -> None:
    g = gpp.decode(gpp.encode_header([6, 8]) + "~1NNN~z")
    assert g.us[6].purposes() == {"advertising": True, "marketing": True}
    assert g.opt_outs() == ("usca (unreadable)",)


def test_an_undefined_value_3_counts_as_an_opt_out() -> None:
    s = decode_state(9, encode_state(9, _defaults(9) | {"SaleOptOutNotice": 1, "SaleOptOut": 3}))
    assert s.opt_outs() == ("usva.SaleOptOut",)
    assert s.purposes() == {"advertising": False, "marketing": False}


# -- properties ----------------------------------------------------------------------
@st.composite
def sections(draw: st.DrawFn) -> tuple[int, dict[str, Any], bool | None]:
    sid = draw(st.sampled_from(sorted(LAYOUTS)))
    _, layout, has_gpc = LAYOUTS[sid]
    values: dict[str, Any] = {}
    for name, n in layout:
        one = st.integers(0, 3)
        values[name] = (
            draw(one) if n is None else tuple(draw(st.lists(one, min_size=n, max_size=n)))
        )
    gpc = draw(st.none() | st.booleans()) if has_gpc else None
    return sid, values, gpc


@settings(max_examples=300)
@given(sections())
def test_state_round_trip_and_opt_outs_fail_closed(
    case: tuple[int, dict[str, Any], bool | None],
) -> None:
    sid, values, gpc = case
    section = decode_state(sid, encode_state(sid, values, gpc=gpc))
    assert dict(section.fields) == values and section.gpc == bool(gpc)
    opted = [f for f in gpp_us.OPT_OUT_FIELDS if values.get(f) in (1, 3)]
    assert len(section.opt_outs()) == len(opted)
    if opted:  # any opt-out (or undefined value) denies; never a grant
        assert section.purposes() == {"advertising": False, "marketing": False}


us_ids = st.sampled_from(sorted(gpp.US_SECTIONS))
junk = st.text(max_size=40) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=40
)


@settings(max_examples=400)
@given(
    st.lists(us_ids, min_size=1, max_size=4, unique=True), st.lists(junk, min_size=4, max_size=4)
)
def test_decode_never_raises_on_any_section_text(ids: list[int], texts: list[str]) -> None:
    """Whatever the sections hold, decode returns (header valid) and every US
    section is either read or listed as unreadable: nothing else escapes."""
    body = "~".join(t.replace("~", "") for t in texts[: len(ids)])
    g = gpp.decode(gpp.encode_header(ids) + "~" + body)
    assert set(g.us) | set(g.unreadable) == set(ids)
    assert not set(g.us) & set(g.unreadable)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_parsers_raise_only_consent_signal_error(text: str) -> None:
    for parse in (gpp.decode, decode_usp, lambda t: decode_state(8, t)):
        with contextlib.suppress(ConsentSignalError):
            parse(text)
