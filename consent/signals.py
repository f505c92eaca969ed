"""Reading consent out of an event's context (pure).

Accepted shapes, all mapped onto our purposes through one table:

- Segment: ``context.consent.categoryPreferences`` ``{category: bool}``
- RudderStack: ``context.consentManagement`` ``{allowedConsentIds, deniedConsentIds}``
- ``context.consent.gpc`` (the SDK forwards ``Sec-GPC: 1`` here)
- Google Consent Mode v2: ``context.consent.consentMode`` ``{ad_storage: "granted", ...}``
- IAB strings: ``context.consent.tcString`` (TCF v2), ``context.consent.gppString``
  (every US section: ``usnat``, the state sections, ``uspv1``) and
  ``context.consent.usPrivacy`` (the bare CCPA U.S. Privacy string, ``1YNN``)
- ``context.consent.jurisdiction`` and ``context.consent.region``

A purpose that no signal speaks of is *absent*, not granted: the policy decides
what absence means (deny under GDPR/PIPL, allow-until-opt-out under CCPA).

Consent strings that cannot be read do not reject the event (issue 13 case 8):
they grant nothing, the event keeps its other signals, and a ``SignalWarning``
names the JSON path. A GPP or US Privacy string (or one US section of a GPP
string) that cannot be read also counts as an opt-out of sale, sharing and
targeted advertising (fail closed); ``Signals.opt_outs`` names every opt-out by
section and field (``gpp.usca.SaleOptOut``) so the decision can cite it.
Malformed *structure* (``categoryPreferences`` that is not an object of
booleans, ...) still raises ConsentSignalError with the JSON path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consent import gpp, gpp_us, tcf
from consent.errors import ConsentSignalError
from consent.purposes import DEFAULT_CATEGORY_MAP, PURPOSES, from_consent_mode, from_tcf


@dataclass(frozen=True, slots=True)
class SignalWarning:
    """A signal that was not used: why, and its JSON path relative to the message."""

    reason: str
    path: str


@dataclass(frozen=True, slots=True)
class Signals:
    """What an event says about consent; empty means it says nothing.

    ``opt_outs``: US opt-outs of sale, sharing or targeted advertising, each
    named ``signal.section.Field`` (``gpp.usca.SaleOptOut``,
    ``usPrivacy.OptOutSale``, ``gpp.usva (unreadable)``)."""

    purposes: Mapping[str, bool] = field(default_factory=dict)
    gpc: bool = False
    jurisdiction: str | None = None
    region: str | None = None
    raw: str | None = None
    method: str = "event"
    sources: tuple[str, ...] = ()
    opt_outs: tuple[str, ...] = ()
    warnings: tuple[SignalWarning, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.purposes and not self.gpc and not self.opt_outs


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
    opt_outs: list[str] = []
    warnings: list[SignalWarning] = []
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
            tc_purposes = _tcf(tc, warnings)
            if tc_purposes is not None:
                _merge(purposes, tc_purposes)
                raw = tc
                sources.append("tcf")
        gpp_string = consent.get("gppString")
        if gpp_string is not None:
            us = _gpp(gpp_string, warnings)
            _merge(purposes, us.purposes)
            opt_outs.extend(us.opt_outs)
            gpc = gpc or us.gpc
            raw = raw or us.text
            sources.append("gpp")
        usp = consent.get("usPrivacy")
        if usp is not None:
            us = _us_privacy(usp, warnings)
            _merge(purposes, us.purposes)
            opt_outs.extend(us.opt_outs)
            raw = raw or us.text
            sources.append("usPrivacy")
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
        opt_outs=tuple(dict.fromkeys(opt_outs)),
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, slots=True)
class _Us:
    purposes: Mapping[str, bool] = field(default_factory=dict)
    opt_outs: tuple[str, ...] = ()
    gpc: bool = False
    text: str | None = None  # the signal, when it could be read


_TC_PATH = "$.context.consent.tcString"
_GPP_PATH = "$.context.consent.gppString"
_USP_PATH = "$.context.consent.usPrivacy"
_FAIL_CLOSED = "counted as an opt-out of sale, sharing and targeted advertising"


def _tcf(value: object, warnings: list[SignalWarning]) -> dict[str, bool] | None:
    """The TC string's purposes, or None (and a warning) when it cannot be read:
    it then grants nothing."""
    if not isinstance(value, str):
        warnings.append(SignalWarning("tcString is not a string; it grants nothing", _TC_PATH))
        return None
    try:
        return from_tcf(tcf.decode(value).purpose_consents)
    except ConsentSignalError as exc:
        warnings.append(SignalWarning(f"{exc}; the TC string grants nothing", _TC_PATH))
        return None


def _gpp(value: object, warnings: list[SignalWarning]) -> _Us:
    """Every US section of a GPP string. A string whose header cannot be read,
    and each US section that cannot, counts as an opt-out (with a warning)."""
    if not isinstance(value, str):
        warnings.append(SignalWarning(f"gppString is not a string; {_FAIL_CLOSED}", _GPP_PATH))
        return _Us(opt_outs=("gpp (unreadable)",))
    try:
        decoded = gpp.decode(value)
    except ConsentSignalError as exc:
        warnings.append(SignalWarning(f"{exc}; {_FAIL_CLOSED}", _GPP_PATH))
        return _Us(opt_outs=("gpp (unreadable)",))
    for bad in decoded.unreadable.values():
        warnings.append(
            SignalWarning(
                f"GPP section {bad.name} cannot be read ({bad.reason}); {_FAIL_CLOSED}", _GPP_PATH
            )
        )
    return _Us(
        purposes=decoded.purposes(),
        opt_outs=tuple(f"gpp.{o}" for o in decoded.opt_outs()),
        gpc=decoded.gpc,
        text=value,
    )


def _us_privacy(value: object, warnings: list[SignalWarning]) -> _Us:
    try:
        usp = gpp_us.decode_usp(value, name="usPrivacy")
    except ConsentSignalError as exc:
        warnings.append(SignalWarning(f"{exc}; {_FAIL_CLOSED}", _USP_PATH))
        return _Us(opt_outs=("usPrivacy (unreadable)",))
    return _Us(purposes=usp.purposes(), opt_outs=usp.opt_outs(), text=str(value))


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
