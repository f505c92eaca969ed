"""The purpose taxonomy and how every outside vocabulary maps onto it.

One table, read by the signal parsers: IAB TCF purposes (1-11) and special
features, Google Consent Mode v2 types, fideslang-style data uses, and the
category names CMPs put in Segment's ``categoryPreferences``.

A TCF purpose maps to our purpose only when *all* the TCF purposes listed for
it are consented (e.g. advertising needs 2, 3 and 4): partial consent is no
consent.
"""

from __future__ import annotations

from dataclasses import dataclass

PURPOSES = ("necessary", "analytics", "personalization", "advertising", "marketing")


@dataclass(frozen=True, slots=True)
class PurposeMapping:
    purpose: str
    tcf_purposes: frozenset[int]
    tcf_special_features: frozenset[int]
    consent_mode: frozenset[str]
    data_uses: tuple[str, ...]
    description: str


TAXONOMY: tuple[PurposeMapping, ...] = (
    PurposeMapping(
        "necessary",
        frozenset(),
        frozenset(),
        frozenset({"security_storage", "functionality_storage"}),
        ("essential.service", "essential.fraud_detection", "essential.legal_obligation"),
        "Delivering the service the person asked for; no consent needed.",
    ),
    PurposeMapping(
        "analytics",
        frozenset({1, 8, 9, 10}),
        frozenset(),
        frozenset({"analytics_storage"}),
        ("analytics.reporting", "functional.service.improve"),
        "Measuring use of the shop and improving it.",
    ),
    PurposeMapping(
        "personalization",
        frozenset({1, 5, 6, 11}),
        frozenset(),
        frozenset({"personalization_storage"}),
        ("personalize.content", "personalize.profiling"),
        "Tailoring content and recommendations to the person.",
    ),
    PurposeMapping(
        "advertising",
        frozenset({1, 2, 3, 4, 7}),
        frozenset(),
        frozenset({"ad_storage", "ad_user_data", "ad_personalization"}),
        (
            "marketing.advertising",
            "marketing.advertising.profiling",
            "marketing.advertising.third_party",
        ),
        "Selecting, personalising and measuring ads, including sharing with ad platforms.",
    ),
    PurposeMapping(
        "marketing",
        frozenset({1, 2, 7}),
        frozenset(),
        frozenset({"ad_user_data"}),
        ("marketing.communications.email", "marketing.communications.sms"),
        "Direct marketing: newsletters, SMS, retargeting audiences.",
    ),
)

BY_PURPOSE = {m.purpose: m for m in TAXONOMY}

# Category names seen in CMP integrations (OneTrust, Segment Consent Manager,
# Ketch, Didomi) and their purposes. Overridable in config ([privacy.categories]).
DEFAULT_CATEGORY_MAP: dict[str, tuple[str, ...]] = {
    "necessary": ("necessary",),
    "strictly_necessary": ("necessary",),
    "essential": ("necessary",),
    "functional": ("personalization",),
    "preferences": ("personalization",),
    "personalization": ("personalization",),
    "analytics": ("analytics",),
    "performance": ("analytics",),
    "statistics": ("analytics",),
    "measurement": ("analytics",),
    "advertising": ("advertising",),
    # A CMP's "marketing", "targeting", "advertisement" or "sale of data" category
    # is about ads and the sale/sharing of data: it covers both purposes (declining
    # it is a CCPA opt-out; accepting it is what "accept all" means for ads).
    "targeting": ("advertising", "marketing"),
    "ads": ("advertising",),
    "marketing": ("advertising", "marketing"),
    "advertisement": ("advertising", "marketing"),
    "sale_of_data": ("advertising", "marketing"),
    "sale_of_personal_data": ("advertising", "marketing"),
    "email": ("marketing",),
    # OneTrust group ids
    "c0001": ("necessary",),
    "c0002": ("analytics",),
    "c0003": ("personalization",),
    "c0004": ("advertising", "marketing"),
}


def is_state_key(key: str) -> bool:
    return (
        key in PURPOSES
        or key == "sensitive"
        or key.startswith(("sensitive:", "third_party:", "cross_border:"))
    )


def from_tcf(purpose_consents: frozenset[int] | set[int]) -> dict[str, bool]:
    """Which of our purposes a TCF purpose-consent set grants."""
    return {m.purpose: m.tcf_purposes <= set(purpose_consents) for m in TAXONOMY if m.tcf_purposes}


def from_consent_mode(states: dict[str, str]) -> dict[str, bool]:
    """Google Consent Mode v2: a purpose is decided when at least one of its types
    is stated, and granted only if every stated type is ``granted``."""
    result: dict[str, bool] = {}
    for m in TAXONOMY:
        stated = [states[t] for t in m.consent_mode if t in states]
        if stated and m.purpose != "necessary":
            result[m.purpose] = all(s == "granted" for s in stated)
    return result
