from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent import ConsentSignalError, read_context
from tests.consent.test_tcf import BITFIELD


def test_segment_category_preferences() -> None:
    s = read_context(
        {
            "consent": {
                "categoryPreferences": {"Analytics": True, "Advertising": False, "C0003": True}
            }
        }
    )
    assert s.purposes == {"analytics": True, "advertising": False, "personalization": True}
    assert s.sources == ("categoryPreferences",)


def test_any_denial_wins_when_categories_share_a_purpose() -> None:
    s = read_context({"consent": {"categoryPreferences": {"targeting": True, "ads": False}}})
    # "targeting" covers advertising and marketing (issue 21: the category map review)
    assert s.purposes == {"advertising": False, "marketing": True}


def test_rudderstack_consent_management() -> None:
    s = read_context(
        {
            "consentManagement": {
                "allowedConsentIds": ["analytics"],
                "deniedConsentIds": ["marketing"],
            }
        }
    )
    # a CMP's "marketing" category covers advertising too (issue 21)
    assert s.purposes == {"analytics": True, "advertising": False, "marketing": False}


def test_consent_mode_v2() -> None:
    s = read_context(
        {
            "consent": {
                "consentMode": {
                    "analytics_storage": "granted",
                    "ad_storage": "granted",
                    "ad_user_data": "denied",
                    "ad_personalization": "granted",
                }
            }
        }
    )
    assert s.purposes["analytics"] is True
    assert s.purposes["advertising"] is False and s.purposes["marketing"] is False


def test_tcf_string_in_context() -> None:
    s = read_context({"consent": {"tcString": BITFIELD}})
    # purposes {1, 3, 9, 10}: analytics needs 1, 8, 9, 10 -> not all granted
    assert s.purposes["analytics"] is False and s.raw == BITFIELD


def test_gpc_and_gpp() -> None:
    assert read_context({"consent": {"gpc": True}}).gpc
    s = read_context({"consent": {"gppString": "DBABLA~BVVVkkkklWA.YA"}})
    assert s.gpc and s.purposes == {"advertising": False, "marketing": False}


def test_jurisdiction_and_region() -> None:
    s = read_context({"consent": {"jurisdiction": "pipl", "region": "cn"}})
    assert (s.jurisdiction, s.region) == ("PIPL", "CN")
    assert s.empty


@pytest.mark.parametrize(
    ("context", "path"),
    [
        ({"consent": "yes"}, "$.context.consent"),
        (
            {"consent": {"categoryPreferences": {"analytics": "yes"}}},
            "$.context.consent.categoryPreferences.analytics",
        ),
        ({"consent": {"consentMode": {"ad_storage": "maybe"}}}, "$.context.consent.consentMode"),
        ({"consent": {"gpc": "1"}}, "$.context.consent.gpc"),
        (
            {"consentManagement": {"allowedConsentIds": "x"}},
            "$.context.consentManagement.allowedConsentIds",
        ),
    ],
)
def test_malformed_signals_name_their_path(context: dict[str, object], path: str) -> None:
    with pytest.raises(ConsentSignalError) as info:
        read_context(context)
    assert str(info.value).startswith(path)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
        max_leaves=10,
    )
)
def test_read_context_raises_only_signal_errors(value: object) -> None:
    for ctx in (
        {"consent": value},
        {"consentManagement": value},
        {"consent": {"categoryPreferences": value}},
    ):
        with contextlib.suppress(ConsentSignalError):
            read_context(ctx)


# -- US signals and unreadable strings (issue 14 §5, issue 13 case 8) -------------------
USCA_OPTED_OUT = "DBABBg~BVWSSSVY.YA"  # iabgpp-java UsCaTest: sale and sharing opted out, GPC


def test_gpp_state_section_opt_out_is_named_by_section_and_field() -> None:
    s = read_context({"consent": {"gppString": USCA_OPTED_OUT}})
    assert s.purposes == {"advertising": False, "marketing": False} and s.gpc
    assert s.opt_outs == ("gpp.usca.SaleOptOut", "gpp.usca.SharingOptOut")
    assert s.warnings == () and s.sources == ("gpp",)


def test_us_privacy_string_in_context() -> None:
    s = read_context({"consent": {"usPrivacy": "1YYN"}})
    assert s.opt_outs == ("usPrivacy.OptOutSale",)
    assert s.purposes == {"advertising": False, "marketing": False} and s.raw == "1YYN"
    assert read_context({"consent": {"usPrivacy": "1YNN"}}).opt_outs == ()


@pytest.mark.parametrize(
    "tc",
    [
        "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",  # a TCF v1.1 string (version field 1)
        "DOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",  # version field 3
        "not a tc string!",
        5,
    ],
)
def test_an_unreadable_tc_string_grants_nothing_and_keeps_other_signals(tc: object) -> None:
    s = read_context({"consent": {"tcString": tc, "categoryPreferences": {"analytics": True}}})
    assert s.purposes == {"analytics": True}
    assert s.sources == ("categoryPreferences",) and s.raw is None and s.opt_outs == ()
    assert [w.path for w in s.warnings] == ["$.context.consent.tcString"]
    assert "grants nothing" in s.warnings[0].reason


@pytest.mark.parametrize(
    ("consent", "path", "opt_out"),
    [
        ({"gppString": "garbage~!"}, "$.context.consent.gppString", "gpp (unreadable)"),
        ({"gppString": 7}, "$.context.consent.gppString", "gpp (unreadable)"),
        ({"gppString": "DBABBg~z"}, "$.context.consent.gppString", "gpp.usca (unreadable)"),
        ({"usPrivacy": "1YX"}, "$.context.consent.usPrivacy", "usPrivacy (unreadable)"),
    ],
)
def test_an_unreadable_us_signal_is_an_opt_out_with_a_warning(
    consent: dict[str, object], path: str, opt_out: str
) -> None:
    s = read_context({"consent": {**consent, "categoryPreferences": {"analytics": True}}})
    assert s.opt_outs == (opt_out,) and s.purposes == {"analytics": True}
    assert [w.path for w in s.warnings] == [path]
    assert "opt-out of sale, sharing and targeted advertising" in s.warnings[0].reason


strings = st.one_of(
    st.text(max_size=60),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", max_size=60
    ),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
)


@given(strings, strings, strings)
def test_consent_strings_never_reject_an_event(tc: object, gpp_text: object, usp: object) -> None:
    """Whatever the three strings hold, reading them never raises; each that is
    present and unreadable leaves a warning at its path, and a US one an opt-out."""
    s = read_context({"consent": {"tcString": tc, "gppString": gpp_text, "usPrivacy": usp}})
    paths = {w.path for w in s.warnings}
    if "$.context.consent.gppString" in paths:
        assert any(o.startswith("gpp") and "unreadable" in o for o in s.opt_outs)
    if "$.context.consent.usPrivacy" in paths:
        assert "usPrivacy (unreadable)" in s.opt_outs
    assert all(w.path.startswith("$.context.consent.") for w in s.warnings)
