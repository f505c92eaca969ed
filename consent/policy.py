"""Jurisdiction packs: the law as data.

Each pack is a TOML file shipped in ``consent/packs`` (one per law: ``GDPR``,
``PIPL``, ``CCPA`` and the US state laws ``US-VA``, ``US-CO``, ``US-CT``,
``US-UT``, ``US-TX``, ``US-OR``). A file of the same name in the operator's
``policy_dir`` replaces a built-in pack, and any other ``*.toml`` there adds a
pack of its own. Packs decode into frozen Structs with unknown keys forbidden,
so a typo in a pack is a :class:`~consent.errors.PolicyError` naming the key.

Which packs apply to an event is decided by :mod:`consent.jurisdiction`;
:class:`Policies` holds the loaded packs and answers that question.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from consent.errors import PolicyError
from consent.jurisdiction import DEFAULT_COUNTRIES, Regime, canonical, expand, resolve
from consent.purposes import PURPOSES

Rule = Literal["none", "opt_in", "opt_out"]
SensitiveRule = Literal["separate", "explicit", "opt_in", "limit_use", "opt_out"]


class LegalBasis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Names recorded as the legal basis, and which purposes may rest on
    legitimate interests (GDPR Art. 6(1)(f)) or the ePrivacy soft opt-in
    (Directive 2002/58/EC Art. 13(2)) when a destination declares so."""

    default: str = "consent"
    necessary: str = "contract"
    legitimate_interests: frozenset[str] = frozenset()
    soft_opt_in: frozenset[str] = frozenset()


class Sensitive(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``separate`` (PIPL Art. 29), ``explicit`` (GDPR Art. 9(2)(a)) and ``opt_in``
    (US state laws) need a granted ``sensitive:<category>`` record whose scope
    covers the destination's purposes; ``limit_use`` (CCPA §1798.121) and
    ``opt_out`` (Utah §13-61-302(3)) deny only after the person limited it."""

    rule: SensitiveRule = "explicit"
    categories: frozenset[str] = frozenset()


class Separate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Separate consents per recipient and region (PIPL Art. 23 and 39)."""

    third_party: bool = False
    cross_border: bool = False
    home_region: str | None = None


class Gpc(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``opts_out``: purposes that sell or share, opted out by Global Privacy
    Control or any US opt-out signal; ``third_party_sale``: disclosing anything to
    a ``ccpa_role = "third_party"`` destination is a sale (Cal. Civ. Code
    §1798.140(ad)), so an opt-out of sale blocks every non-necessary purpose there."""

    opts_out: frozenset[str] = frozenset()
    third_party_sale: bool = False


class Children(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Under ``age(country)`` a person is a minor. ``consenter = "guardian"``: every
    consent a minor needs must come from a guardian; otherwise only under
    ``guardian_below``. ``opt_in_purposes`` need opt-in from minors even where
    adults have opt-out (CCPA §1798.120(c)). Under ``sensitive_below`` all
    personal information is sensitive category ``minor`` (PIPL Art. 28)."""

    default_age: int = 16
    consenter: Literal["guardian", "self"] = "guardian"
    by_country: dict[str, int] = {}
    opt_in_purposes: frozenset[str] = frozenset()
    guardian_below: int | None = None
    sensitive_below: int | None = None

    def age(self, country: str | None) -> int:
        return self.by_country.get(country or "", self.default_age)

    def guardian_age(self, country: str | None) -> int:
        if self.consenter == "guardian":
            return self.age(country)
        return self.guardian_below or 0


class Transfer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Transfers out of ``zone`` (the EEA for GDPR Art. 44; the PRC for PIPL
    Art. 38). ``mechanisms`` make a transfer lawful; ``consent_mechanism`` is one
    that explicit per-recipient consent satisfies (GDPR Art. 49(1)(a));
    ``adequate`` the regions with an adequacy decision (Art. 45); ``region_bound``
    mechanisms valid only for some regions (the EU-US DPF); ``exemptions`` need
    no mechanism (CAC Provisions on Cross-Border Data Flows 2024, Art. 5);
    ``contract_exemption`` also stands in for separate consent when every purpose
    is necessary for the contract (PIPL Art. 13(1)(2))."""

    zone: frozenset[str] = frozenset()
    mechanisms: frozenset[str] = frozenset()
    consent_mechanism: str | None = None
    adequate: frozenset[str] = frozenset()
    region_bound: dict[str, frozenset[str]] = {}
    exemptions: frozenset[str] = frozenset()
    contract_exemption: str | None = None
    volume_exemption: str | None = None
    volume_threshold: int = 100_000


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    purposes: dict[str, Rule]
    description: str = ""
    strictness: int = 0
    legal_basis: LegalBasis = LegalBasis()
    sensitive: Sensitive = Sensitive()
    separate: Separate = Separate()
    gpc: Gpc = Gpc()
    children: Children = Children()
    transfer: Transfer = Transfer()

    @property
    def zone(self) -> frozenset[str]:
        """Where data may move without a transfer rule (``home_region`` for old packs)."""
        if self.transfer.zone:
            return self.transfer.zone
        return frozenset({self.separate.home_region}) if self.separate.home_region else frozenset()


BUILTIN = ("GDPR", "PIPL", "CCPA", "US-VA", "US-CO", "US-CT", "US-UT", "US-TX", "US-OR")


def _decode(data: bytes, where: str) -> Policy:
    try:
        policy = msgspec.toml.decode(data, type=Policy)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    unknown = set(policy.purposes) - set(PURPOSES)
    if unknown:
        raise PolicyError(f"{where}: unknown purposes {sorted(unknown)}; known: {PURPOSES}")
    return policy


def load_pack(name: str, *, override_dir: Path | None = None) -> Policy:
    """A pack by file name; ``override_dir`` wins over the built-in one.

    Raises PolicyError when no such pack exists or it does not decode."""
    if override_dir is not None and (override_dir / f"{name}.toml").exists():
        path = override_dir / f"{name}.toml"
        return _decode(path.read_bytes(), str(path))
    try:
        data = resources.files("consent").joinpath(f"packs/{name}.toml").read_bytes()
    except FileNotFoundError as exc:
        raise PolicyError(f"no policy pack {name!r}; built in: {', '.join(BUILTIN)}") from exc
    return _decode(data, f"consent/packs/{name}.toml")


class Policies:
    """The loaded packs, and which of them apply to an event (see
    :func:`consent.jurisdiction.resolve`)."""

    def __init__(
        self,
        packs: Mapping[str, Policy],
        *,
        default: str,
        unknown: str = "strictest",
        countries: Mapping[str, str] | None = None,
    ) -> None:
        self._packs = {p.name.upper(): p for p in packs.values()}
        default_name = canonical(default, self._packs)
        if default_name is None:
            raise PolicyError(
                f"default jurisdiction {default!r} has no pack; have {sorted(self._packs)}"
            )
        self.default = default_name
        if unknown != "strictest" and canonical(unknown, self._packs) is None:
            raise PolicyError(f"unknown_jurisdiction {unknown!r} has no pack")
        self.unknown = unknown if unknown == "strictest" else canonical(unknown, self._packs) or ""
        self.countries = {**DEFAULT_COUNTRIES, **(countries or {})}
        bad = {
            c: j for c, j in self.countries.items() if not expand(j, self._packs, self.countries)
        }
        if bad:
            raise PolicyError(f"country_jurisdictions name jurisdictions without a pack: {bad}")
        self._regimes: dict[tuple[str | None, str | None, str | None], Regime] = {}

    @classmethod
    def builtin(
        cls,
        *,
        default: str = "GDPR",
        unknown: str = "strictest",
        override_dir: Path | None = None,
        countries: Mapping[str, str] | None = None,
    ) -> Policies:
        """The built-in packs, replaced or extended by ``override_dir/*.toml``."""
        packs = {n: load_pack(n, override_dir=override_dir) for n in BUILTIN}
        if override_dir is not None:
            for path in sorted(override_dir.glob("*.toml")):
                if path.stem not in packs:
                    packs[path.stem] = _decode(path.read_bytes(), str(path))
        return cls(packs, default=default, unknown=unknown, countries=countries)

    @property
    def packs(self) -> Mapping[str, Policy]:
        return self._packs

    def get(self, jurisdiction: str | None) -> Policy:
        """One pack by name or alias (``US-CA`` → CCPA, ``EU`` → GDPR); None is the
        default; an unknown name is the strictest pack (kept for callers that need
        a single pack, such as the ledger's jurisdiction label)."""
        if jurisdiction is None:
            return self._packs[self.default]
        name = canonical(jurisdiction, self._packs)
        if name is not None:
            return self._packs[name]
        if self.unknown != "strictest":
            return self._packs[self.unknown]
        return max(self._packs.values(), key=lambda p: p.strictness)

    def resolve(
        self, label: str | None, country: str | None, subdivision: str | None = None
    ) -> Regime:
        """The packs that apply to an event (memoized; resolution is pure)."""
        key = (label, country, subdivision)
        regime = self._regimes.get(key)
        if regime is None:
            if len(self._regimes) > 10_000:
                self._regimes.clear()
            regime = self._regimes[key] = resolve(
                label,
                country,
                subdivision,
                packs=self._packs,
                countries=self.countries,
                default=self.default,
                unknown=self.unknown,
            )
        return regime

    def regime(self, name: str) -> Regime:
        """A regime back from its name (``"CCPA+GDPR"``), as stored in the outbox
        for the send-time re-check. Raises PolicyError for a pack no longer loaded."""
        return self.resolve(name, None, None) if "+" not in name else self._joined(name)

    def _joined(self, name: str) -> Regime:
        parts = name.split("+")
        missing = [p for p in parts if p not in self._packs]
        if missing:
            raise PolicyError(f"jurisdiction {name!r}: no pack {missing}")
        return Regime(tuple(self._packs[p] for p in parts))

    def names(self) -> list[str]:
        return sorted(self._packs)
