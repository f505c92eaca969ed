"""The shapes decisions are made of: consent state, event facts, destination
facts and the decision itself (frozen dataclasses, no behaviour beyond lookups)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["allow", "deny", "no_decision"]
LAWFUL_BASES = ("consent", "contract", "legal_obligation", "legitimate_interests", "soft_opt_in")


@dataclass(frozen=True, slots=True)
class PurposeState:
    """One key's effective record. ``scope``: purposes a sensitive consent was
    given for (None: not recorded, covers ``necessary`` only); ``notice``: the
    notice version shown; ``at``: when given (epoch seconds, the signal's time)."""

    granted: bool
    record_id: int
    guardian: bool = False
    scope: frozenset[str] | None = None
    notice: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class ConsentState:
    """Effective consent of one person: the latest record per state key."""

    purposes: Mapping[str, PurposeState] = field(default_factory=dict)

    def get(self, key: str) -> PurposeState | None:
        return self.purposes.get(key)


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the event itself says. ``jurisdiction``: the event's label;
    ``country``: ISO 3166-1 alpha-2; ``subdivision``: ISO 3166-2 (``US-VA``);
    ``opt_outs`` names each US opt-out of sale, sharing or targeted advertising by
    signal, section and field (``gpp.usca.SaleOptOut``; an unreadable section
    counts as one)."""

    jurisdiction: str | None = None
    country: str | None = None
    gpc: bool = False
    pi_categories: frozenset[str] = frozenset()
    age: int | None = None
    opt_outs: tuple[str, ...] = ()
    subdivision: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class DestinationFacts:
    """A destination's legal facts from config: ``legal_bases`` per purpose,
    ``transfer`` mechanism per law (pack name), ``ccpa_role``, ``min_notice``
    per purpose (``"*"``: every purpose and separate consent), and
    ``transfer_volume``: people transferred to it this calendar year, when known."""

    name: str
    purposes: tuple[str, ...]
    region: str | None = None
    recipient: str | None = None
    third_party: bool = False
    pi_categories: frozenset[str] = frozenset()
    legal_bases: Mapping[str, str] = field(default_factory=dict)
    transfer: Mapping[str, str] = field(default_factory=dict)
    ccpa_role: str | None = None
    min_notice: Mapping[str, str] = field(default_factory=dict)
    transfer_volume: int | None = None

    @property
    def role(self) -> str:
        return self.ccpa_role or ("third_party" if self.third_party else "service_provider")


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    destination: str
    jurisdiction: str
    purposes: tuple[str, ...]
    legal_basis: str
    reasons: tuple[str, ...]
    record_ids: tuple[int, ...]

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"
