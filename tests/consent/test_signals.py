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
    assert s.purposes == {"advertising": False}


def test_rudderstack_consent_management() -> None:
    s = read_context(
        {
            "consentManagement": {
                "allowedConsentIds": ["analytics"],
                "deniedConsentIds": ["marketing"],
            }
        }
    )
    assert s.purposes == {"analytics": True, "marketing": False}


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
        ({"consent": {"tcString": 5}}, "$.context.consent.tcString"),
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
            read_context(ctx)  # type: ignore[arg-type]
