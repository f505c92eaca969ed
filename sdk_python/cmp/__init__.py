"""Consent from the cookies of the consent management platforms (CMPs) brands run.

One module per vendor, each citing the documented cookie format; this module
combines them. Shared by the SDK's consent middleware and the collector (which
may import ``sdk_python``; ``sdk_python`` imports nothing of the collector).

>>> c = parse_consent_cookies({"OptanonConsent": "groups=C0001:1,C0002:1,C0004:0"})
>>> dict(c.purposes)
{'necessary': True, 'analytics': True, 'advertising': False, 'marketing': False}

Supported, with their default category -> purpose maps (``CATEGORY_MAPS``):
OneTrust ``OptanonConsent``, Cookiebot ``CookieConsent``, Didomi
``didomi_token``, Klaro ``klaro``, Complianz ``cmplz_*``, CookieYes
``cookieyes-consent``, Shopify ``_tracking_consent``, IAB TCF ``euconsent-v2``
and GPP ``__gpp`` (passed on as strings), and a plain ``consent`` cookie (TCF
string or JSON categories).

Failing closed: a cookie that is present but cannot be read adds a warning
(naming the cookie, never quoting its value) and grants nothing; under the US
packs (jurisdiction ``CCPA``/``CPRA``/``US``/``US-xx``) or when the jurisdiction
is unknown, it also counts as an opt-out of sale/sharing (``advertising`` and
``marketing`` denied), as GPP sections that cannot be read do (DESIGN, US
signals). Never raises, whatever the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sdk_python.cmp import (
    complianz,
    cookiebot,
    cookieyes,
    didomi,
    iab,
    klaro,
    onetrust,
    shopify,
)
from sdk_python.cmp.base import (
    ADS,
    PURPOSES,
    CategoryMap,
    Parser,
    Reading,
    Unreadable,
    parse_cookie_header,
    to_purposes,
)

__all__ = [
    "CATEGORY_MAPS",
    "PURPOSES",
    "CategoryMap",
    "CmpConsent",
    "Parser",
    "Reading",
    "Unreadable",
    "combine_consent",
    "parse_consent_cookies",
    "parse_cookie_header",
]

VENDORS: tuple[tuple[str, Parser], ...] = (
    (onetrust.NAME, onetrust.read),
    (cookiebot.NAME, cookiebot.read),
    (didomi.NAME, didomi.read),
    (klaro.NAME, klaro.read),
    (complianz.NAME, complianz.read),
    (cookieyes.NAME, cookieyes.read),
    (shopify.NAME, shopify.read),
    ("tcf", iab.read_tcf),
    ("gpp", iab.read_gpp),
)
CATEGORY_MAPS: dict[str, CategoryMap] = {
    onetrust.NAME: onetrust.CATEGORIES,
    cookiebot.NAME: cookiebot.CATEGORIES,
    didomi.NAME: didomi.CATEGORIES,
    klaro.NAME: klaro.CATEGORIES,
    complianz.NAME: complianz.CATEGORIES,
    cookieyes.NAME: cookieyes.CATEGORIES,
    shopify.NAME: shopify.CATEGORIES,
}


@dataclass(frozen=True, slots=True)
class CmpConsent:
    """What a request's cookies say about consent.

    ``purposes``: our purpose -> granted (only those a cookie speaks of);
    ``categories``: the plain JSON cookie's own categories, passed on as given;
    ``tc_string``/``gpp_string``: IAB strings for the collector to decode;
    ``gpc``: a CMP recorded Global Privacy Control; ``sources``: the CMPs read;
    ``warnings``: one line per cookie that could not be read."""

    purposes: Mapping[str, bool] = field(default_factory=dict)
    categories: Mapping[str, bool] = field(default_factory=dict)
    tc_string: str | None = None
    gpp_string: str | None = None
    gpc: bool = False
    sources: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def context(self) -> dict[str, Any] | None:
        """As Segment's ``context.consent`` (``categoryPreferences``,
        ``tcString``, ``gppString``, ``gpc``), or None when nothing was said."""
        out: dict[str, Any] = {}
        prefs = _and(self.categories, self.purposes)
        if prefs:
            out["categoryPreferences"] = prefs
        if self.tc_string:
            out["tcString"] = self.tc_string
        if self.gpp_string:
            out["gppString"] = self.gpp_string
        if self.gpc:
            out["gpc"] = True
        return out or None


def _and(a: Mapping[str, bool], b: Mapping[str, bool]) -> dict[str, bool]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, True) and value
    return out


def is_us(jurisdiction: str | None) -> bool:
    j = (jurisdiction or "").upper()
    return j in ("CCPA", "CPRA", "US") or j.startswith("US-")


def parse_consent_cookies(
    cookies: Mapping[str, str],
    *,
    jurisdiction: str | None = None,
    category_map: Mapping[str, CategoryMap] | None = None,
    parse: Sequence[Parser] = (),
    plain_cookie: str | None = "consent",
) -> CmpConsent:
    """Read every CMP cookie in ``cookies`` (name -> raw value, as sent).

    ``category_map``: per vendor name (``onetrust``, ``klaro``, …), a map from
    the vendor's category ids (lower case) to our purposes, replacing the
    default one. ``parse``: a brand's own parsers (``cookies -> Reading | None``,
    raising ``Unreadable`` or anything else for a cookie they cannot read).
    ``plain_cookie``: the name of the site's own JSON/TCF cookie (None: none).
    """
    maps = {**CATEGORY_MAPS, **(category_map or {})}
    purposes: dict[str, bool] = {}
    categories: dict[str, bool] = {}
    tc = gpp = None
    gpc = unreadable = False
    sources: list[str] = []
    warnings: list[str] = []
    parsers: list[tuple[str, Parser]] = [
        *VENDORS,
        *((f"parse[{i}]", p) for i, p in enumerate(parse)),
    ]
    if plain_cookie:
        parsers.append(("plain", lambda c: iab.read_plain(c, plain_cookie)))
    for name, parser in parsers:
        try:
            reading = parser(cookies)
        except Unreadable as exc:
            warnings.append(f"{exc}; read as no consent")
            unreadable = True
            continue
        except Exception as exc:  # a brand's hook, or input no parser foresaw
            warnings.append(f"{name} parser failed ({type(exc).__name__}); read as no consent")
            unreadable = True
            continue
        if reading is None:
            continue
        sources.append(reading.cmp)
        mapped = to_purposes(reading.categories, maps.get(reading.cmp, {}))
        purposes = _and(purposes, {**mapped, **reading.purposes})
        categories = _and(categories, reading.raw_categories)
        tc = tc or reading.tc_string
        gpp = gpp or reading.gpp_string
        gpc = gpc or reading.gpc
    if unreadable and (jurisdiction is None or is_us(jurisdiction)):
        purposes = _and(purposes, dict.fromkeys(ADS, False))
    return CmpConsent(
        purposes={p: v for p, v in purposes.items() if p in PURPOSES},
        categories=categories,
        tc_string=tc,
        gpp_string=gpp,
        gpc=gpc,
        sources=tuple(sources),
        warnings=tuple(warnings),
    )


def combine_consent(explicit: Mapping[str, Any], ambient: Mapping[str, Any]) -> dict[str, Any]:
    """A caller's ``context.consent`` combined with the request's: categories
    are granted only if neither denies them, ``gpc`` is true if either says so
    (a caller cannot drop GPC), and other keys (strings, jurisdiction) come from
    the caller when it sets them, else from the request."""
    out = {**ambient, **explicit}
    a, e = ambient.get("categoryPreferences"), explicit.get("categoryPreferences")
    if isinstance(a, Mapping) and isinstance(e, Mapping):
        out["categoryPreferences"] = {
            **a,
            **{k: (v and a[k]) if k in a and isinstance(a[k], bool) else v for k, v in e.items()},
        }
    if ambient.get("gpc") is True or explicit.get("gpc") is True:
        out["gpc"] = True
    return out
