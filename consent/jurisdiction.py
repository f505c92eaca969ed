"""Which law applies to an event (pure).

Inputs: the event's label (``context.consent.jurisdiction``: a pack name, an
alias such as ``EU``, ``UK``, ``CPRA``, ``US-CA``, or an ISO 3166-1/3166-2 code
such as ``FR`` or ``US-VA``), the person's country (``context.location.country``
or ``context.consent.region``) and US state (``context.location.region`` or an
ISO 3166-2 region code).

Rules, in order:

1. The label names packs (aliases and ISO codes resolved; ``US`` without a state
   is every US pack). A name that resolves to nothing is reported in the
   decision and replaced by the ``unknown_jurisdiction`` setting: ``strictest``
   applies every loaded pack, so each question (consent needed? which age?
   which sensitive list? transfer rule?) gets its strictest answer.
2. The country (or state) names packs through the country map: EEA → GDPR
   (GDPR Art. 3), GB → GDPR (UK GDPR), CN → PIPL (PIPL Art. 3), a US state →
   its pack, other US states → every US pack. Overridable in config.
3. When the label and the country disagree, both apply and the stricter outcome
   wins per purpose (a brand targeting people in the EU is under GDPR whatever
   its label, GDPR Art. 3(2)(a)). A label that names a law within the country's
   (``US-CA`` for a person in the ``US``) refines it instead.
4. With neither, the deployment's default applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consent.policy import Children, Policy

# EU 27 + Iceland, Liechtenstein, Norway (EEA Agreement, Decision 154/2018).
EEA = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)

DEFAULT_COUNTRIES: dict[str, str] = {
    **dict.fromkeys(sorted(EEA), "GDPR"),
    "GB": "GDPR",  # UK GDPR (Data Protection Act 2018); same rules, UK age 13
    "CN": "PIPL",
    "US": "US",
}

ALIASES: dict[str, str] = {
    "EU": "GDPR",
    "EEA": "GDPR",
    "EU-GDPR": "GDPR",
    "UK": "GDPR",
    "UK-GDPR": "GDPR",
    "UKGDPR": "GDPR",
    "EL": "GDPR",  # Greece as the EU writes it
    "CPRA": "CCPA",
    "CALIFORNIA": "CCPA",
    "US-CA": "CCPA",
    "PRC": "PIPL",
    "CHINA": "PIPL",
    "VCDPA": "US-VA",
    "VIRGINIA": "US-VA",
    "CPA": "US-CO",
    "COLORADO": "US-CO",
    "CTDPA": "US-CT",
    "CONNECTICUT": "US-CT",
    "UCPA": "US-UT",
    "UTAH": "US-UT",
    "TDPSA": "US-TX",
    "TEXAS": "US-TX",
    "OCPA": "US-OR",
    "OREGON": "US-OR",
}


@dataclass(frozen=True, slots=True)
class Regime:
    """The packs that apply to one event; ``decide()`` applies each and keeps the
    stricter outcome. ``unknown``: label names that resolved to nothing;
    ``notes``: how the packs were chosen (both end up in the decision's reasons)."""

    packs: tuple[Policy, ...]
    unknown: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    _children: dict[str | None, ChildRule] = field(default_factory=dict, compare=False, repr=False)

    name: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", "+".join(p.name for p in self.packs))

    def children(self, country: str | None) -> ChildRule:
        """Strictest per question across the packs: the highest age, the highest
        age below which a guardian consents, every purpose minors must opt in to."""
        cached = self._children.get(country)
        if cached is not None:
            return cached
        rule = self._children[country] = child_rule(tuple(p.children for p in self.packs), country)
        return rule


@dataclass(frozen=True, slots=True)
class ChildRule:
    age: int
    guardian_below: int
    opt_in_purposes: frozenset[str]
    sensitive_below: int


def child_rule(rules: tuple[Children, ...], country: str | None) -> ChildRule:
    """Strictest per question across packs' children rules (see Regime.children)."""
    if len(rules) == 1:
        r = rules[0]
        return ChildRule(
            r.age(country), r.guardian_age(country), r.opt_in_purposes, r.sensitive_below or 0
        )
    return ChildRule(
        age=max(r.age(country) for r in rules),
        guardian_below=max(r.guardian_age(country) for r in rules),
        opt_in_purposes=frozenset().union(*(r.opt_in_purposes for r in rules)),
        sensitive_below=max(r.sensitive_below or 0 for r in rules),
    )


def us_packs(packs: Mapping[str, Policy]) -> tuple[str, ...]:
    return tuple(n for n in sorted(packs) if n == "CCPA" or n.startswith("US-"))


def expand(name: str, packs: Mapping[str, Policy], countries: Mapping[str, str]) -> tuple[str, ...]:
    """The pack names a label or country code stands for; () when none."""
    code = name.strip().upper()
    if code in packs:
        return (code,)
    alias = ALIASES.get(code)
    if alias is not None and alias in packs:
        return (alias,)
    if code == "US" or (code.startswith("US-") and len(code) == 5):
        return us_packs(packs)
    if len(code) == 2 and code in countries and countries[code] != code:
        return expand(countries[code], packs, countries)
    head, dash, tail = code.partition("-")
    if dash and len(head) == 2 and tail.isalnum() and 1 <= len(tail) <= 3 and head in countries:
        return expand(head, packs, countries)  # ISO 3166-2 subdivision of a mapped country
    return ()


def canonical(name: str, packs: Mapping[str, Policy]) -> str | None:
    """A single pack name for a name or alias, or None."""
    code = name.strip().upper()
    if code in packs:
        return code
    alias = ALIASES.get(code)
    return alias if alias is not None and alias in packs else None


def resolve(
    label: str | None,
    country: str | None,
    subdivision: str | None,
    *,
    packs: Mapping[str, Policy],
    countries: Mapping[str, str],
    default: str,
    unknown: str,
) -> Regime:
    """The :class:`Regime` for an event (see the module docstring for the rules)."""
    names: set[str] = set()
    notes: list[str] = []
    unknown_names: list[str] = []
    if label:
        found = expand(label, packs, countries)
        if found:
            names.update(found)
            notes.append(f"label {label} -> {'+'.join(found)}")
        else:
            unknown_names.append(label)
            fallback = tuple(sorted(packs)) if unknown == "strictest" else (unknown,)
            names.update(fallback)
            notes.append(f"label {label} is not a known jurisdiction: applying {unknown}")
    where = subdivision or country
    labelled = set(names)
    if where:
        found = expand(where, packs, countries)
        if labelled and not unknown_names and labelled <= set(found):
            pass  # the label names a law within the country's (US-CA in the US): it refines
        elif found:
            if labelled and not labelled >= set(found):
                notes.append(
                    f"{where} -> {'+'.join(found)} also applies (label and country differ)"
                )
            names.update(found)
    if not names:
        names.add(default)
        notes.append(f"no label or mapped country: default {default}")
    return Regime(tuple(packs[n] for n in sorted(names)), tuple(unknown_names), tuple(notes))


def recheck_label(regime: str, country: str | None, age: int | None) -> str:
    """What an outbox row keeps for the send-time re-check besides GPC and PI:
    ``"CCPA+GDPR|FR|12"`` (regime name, country, age; empty when unknown)."""
    if country is None and age is None:
        return regime
    return f"{regime}|{country or ''}|{'' if age is None else age}"


def parse_recheck_label(label: str) -> tuple[str, str | None, int | None]:
    """The inverse of :func:`recheck_label`; a plain pack name (rows written before
    country and age were kept) has neither."""
    name, _, rest = label.partition("|")
    country, _, age = rest.partition("|")
    return name, country or None, int(age) if age.isdigit() else None
