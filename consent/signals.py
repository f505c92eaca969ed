"""Reading consent out of an event's context (pure).

Accepted shapes, all mapped onto our purposes through one table:

- Segment: ``context.consent.categoryPreferences`` ``{category: bool}``
- RudderStack: ``context.consentManagement`` ``{allowedConsentIds, deniedConsentIds}``
- ``context.consent.gpc`` (the SDK forwards ``Sec-GPC: 1`` here)
- Google Consent Mode v2: ``context.consent.consentMode`` ``{ad_storage: "granted", ...}``
- IAB strings: ``context.consent.tcString`` (TCF v2) and ``context.consent.gppString``
- ``context.consent.jurisdiction`` and ``context.consent.region``

A purpose that no signal speaks of is *absent*, not granted: the policy decides
what absence means (deny under GDPR/PIPL, allow-until-opt-out under CCPA).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consent import gpp, tcf
from consent.errors import ConsentSignalError
from consent.purposes import DEFAULT_CATEGORY_MAP, PURPOSES, from_consent_mode, from_tcf


@dataclass(frozen=True, slots=True)
class Signals:
    """What an event says about consent; empty means it says nothing."""

    purposes: Mapping[str, bool] = field(default_factory=dict)
    gpc: bool = False
    jurisdiction: str | None = None
    region: str | None = None
    raw: str | None = None
    method: str = "event"
    sources: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.purposes and not self.gpc


def _categories(
    prefs: Mapping[str, Any], table: Mapping[str, tuple[str, ...]], where: str
) -> dict[str, bool]:
    granted: dict[str, bool] = {}
    for name, value in prefs.items():
        if not isinstance(value, bool):
            raise ConsentSignalError(f"{where}.{name} must be true or false")
        for purpose in table.get(name.lower(), (name,) if name in PURPOSES else ()):
            # Several categories may map to one purpose: any denial wins.
            granted[purpose] = granted.get(purpose, True) and value
    return granted


def read_context(
    context: Mapping[str, Any] | None,
    *,
    category_map: Mapping[str, tuple[str, ...]] = DEFAULT_CATEGORY_MAP,
) -> Signals:
    """Collect every consent signal in ``context``; raises ConsentSignalError with
    the JSON path of a malformed one."""
    if not context:
        return Signals()
    purposes: dict[str, bool] = {}
    sources: list[str] = []
    gpc = False
    raw: str | None = None
    jurisdiction = region = None
    consent = context.get("consent")
    if consent is not None:
        if not isinstance(consent, Mapping):
            raise ConsentSignalError("$.context.consent must be an object")
        prefs = consent.get("categoryPreferences")
        if prefs is not None:
            if not isinstance(prefs, Mapping):
                raise ConsentSignalError("$.context.consent.categoryPreferences must be an object")
            purposes.update(
                _categories(prefs, category_map, "$.context.consent.categoryPreferences")
            )
            sources.append("categoryPreferences")
        mode = consent.get("consentMode")
        if mode is not None:
            if not isinstance(mode, Mapping) or not all(
                v in ("granted", "denied") for v in mode.values()
            ):
                raise ConsentSignalError(
                    '$.context.consent.consentMode must map types to "granted" or "denied"'
                )
            _merge(purposes, from_consent_mode(dict(mode)))
            sources.append("consentMode")
        tc = consent.get("tcString")
        if tc is not None:
            if not isinstance(tc, str):
                raise ConsentSignalError("$.context.consent.tcString must be a string")
            _merge(purposes, from_tcf(tcf.decode(tc).purpose_consents))
            raw = tc
            sources.append("tcf")
        gpp_string = consent.get("gppString")
        if gpp_string is not None:
            if not isinstance(gpp_string, str):
                raise ConsentSignalError("$.context.consent.gppString must be a string")
            decoded = gpp.decode(gpp_string)
            if decoded.usnat is not None:
                _merge(purposes, decoded.usnat.purposes())
                gpc = gpc or decoded.usnat.gpc
            raw = raw or gpp_string
            sources.append("gpp")
        if consent.get("gpc") is not None:
            if not isinstance(consent["gpc"], bool):
                raise ConsentSignalError("$.context.consent.gpc must be true or false")
            gpc = gpc or consent["gpc"]
        jurisdiction = _code(consent.get("jurisdiction"), "$.context.consent.jurisdiction")
        region = _code(consent.get("region"), "$.context.consent.region")
    rudder = context.get("consentManagement")
    if rudder is not None:
        if not isinstance(rudder, Mapping):
            raise ConsentSignalError("$.context.consentManagement must be an object")
        for key, value in (("allowedConsentIds", True), ("deniedConsentIds", False)):
            ids = rudder.get(key) or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ConsentSignalError(
                    f"$.context.consentManagement.{key} must be a list of strings"
                )
            _merge(purposes, _categories(dict.fromkeys(ids, value), category_map, key))
        sources.append("consentManagement")
    return Signals(
        purposes=purposes,
        gpc=gpc,
        jurisdiction=jurisdiction,
        region=region,
        raw=raw,
        method="event",
        sources=tuple(sources),
    )


def _merge(into: dict[str, bool], other: Mapping[str, bool]) -> None:
    """Combine two signals: a purpose is granted only if no signal denies it."""
    for purpose, value in other.items():
        into[purpose] = into.get(purpose, True) and value


def _code(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 2 <= len(value) <= 16:
        raise ConsentSignalError(f"{where} must be a short code such as GDPR or DE")
    return value.upper()
