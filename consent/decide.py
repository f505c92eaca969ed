"""The decision function: may this event go to this destination? (pure)

``decide(state, facts, destination, policy) -> Decision`` reads nothing but its
arguments. Like fides' policy evaluator it returns its audit trail (reasons
and the ledger record ids that justified each grant) and keeps "no decision"
(a gap in configuration) apart from "deny"; both block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from consent.policy import Policy

Outcome = Literal["allow", "deny", "no_decision"]


@dataclass(frozen=True, slots=True)
class PurposeState:
    granted: bool
    record_id: int
    guardian: bool = False


@dataclass(frozen=True, slots=True)
class ConsentState:
    """Effective consent of one person: the latest record per state key."""

    purposes: Mapping[str, PurposeState] = field(default_factory=dict)

    def get(self, key: str) -> PurposeState | None:
        return self.purposes.get(key)


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the event itself says. ``opt_outs`` names each US opt-out of sale,
    sharing or targeted advertising by signal, section and field
    (``gpp.usca.SaleOptOut``; an unreadable section counts as one)."""

    jurisdiction: str | None = None
    country: str | None = None
    gpc: bool = False
    pi_categories: frozenset[str] = frozenset()
    age: int | None = None
    opt_outs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DestinationFacts:
    name: str
    purposes: tuple[str, ...]
    region: str | None = None
    recipient: str | None = None
    third_party: bool = False
    pi_categories: frozenset[str] = frozenset()


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


def _need(key: str, state: ConsentState, what: str, reasons: list[str], records: list[int]) -> bool:
    entry = state.get(key)
    if entry is None:
        reasons.append(f"{what}: no consent on record")
        return False
    records.append(entry.record_id)
    if not entry.granted:
        reasons.append(f"{what}: denied by record {entry.record_id}")
        return False
    reasons.append(f"{what}: granted by record {entry.record_id}")
    return True


def decide(
    state: ConsentState, facts: EventFacts, destination: DestinationFacts, policy: Policy
) -> Decision:
    reasons: list[str] = []
    records: list[int] = []
    ok = True
    gap = False
    bases: set[str] = set()
    if not destination.purposes:
        return Decision(
            "no_decision",
            destination.name,
            policy.name,
            (),
            "none",
            ("destination declares no purposes, so it receives nothing",),
            (),
        )
    minor = facts.age is not None and facts.age < policy.children.age(facts.country)
    for purpose in destination.purposes:
        rule = policy.purposes.get(purpose)
        if rule is None:
            gap = True
            reasons.append(f"{purpose}: {policy.name} pack has no rule for this purpose")
            continue
        if rule == "none":
            bases.add(policy.legal_basis.necessary)
            reasons.append(f"{purpose}: necessary, no consent needed")
            continue
        bases.add(policy.legal_basis.default)
        opt_in = rule == "opt_in" or (minor and purpose in policy.children.opt_in_purposes)
        if opt_in:
            if not _need(purpose, state, purpose, reasons, records):
                ok = False
            elif minor and policy.children.consenter == "guardian":
                entry = state.get(purpose)
                if entry is None or not entry.guardian:
                    ok = False
                    reasons.append(
                        f"{purpose}: subject is under {policy.children.age(facts.country)}; "
                        "consent must come from a guardian"
                    )
            continue
        # opt_out: allowed until the person opts out, by record or by GPC.
        entry = state.get(purpose)
        if entry is not None:
            records.append(entry.record_id)
        opted_out = False
        if entry is not None and not entry.granted:
            opted_out = True
            reasons.append(f"{purpose}: opted out by record {entry.record_id}")
        if purpose in policy.gpc.opts_out:
            if facts.gpc:
                opted_out = True
                reasons.append(f"{purpose}: Global Privacy Control is an opt-out of sale/share")
            if facts.opt_outs:
                # Any US section's opt-out of sale, sharing or targeted advertising.
                opted_out = True
                reasons.append(f"{purpose}: opted out by {', '.join(facts.opt_outs)}")
        if opted_out:
            ok = False
        else:
            reasons.append(f"{purpose}: allowed until opt-out ({policy.name})")
    for category in sorted(facts.pi_categories):
        if category not in destination.pi_categories:
            ok = False
            reasons.append(f"PI category {category}: destination is not declared to receive it")
            continue
        if category in policy.sensitive.categories:
            if policy.sensitive.rule == "limit_use":
                entry = state.get(f"sensitive:{category}") or state.get("sensitive")
                if entry is not None and not entry.granted:
                    ok = False
                    reasons.append(f"sensitive {category}: limited by record {entry.record_id}")
            else:
                specific = f"sensitive:{category}"
                key = specific if state.get(specific) is not None else "sensitive"
                if not _need(
                    key, state, f"sensitive {category} ({policy.sensitive.rule})", reasons, records
                ):
                    ok = False
    if policy.separate.third_party and destination.third_party:
        who = destination.recipient or destination.name
        if not _need(
            f"third_party:{who}", state, f"provision to {who} (separate consent)", reasons, records
        ):
            ok = False
    home = policy.separate.home_region
    if policy.separate.cross_border and home and destination.region not in (None, home):
        who = destination.recipient or destination.name
        if not _need(
            f"cross_border:{who}",
            state,
            f"transfer to {who} in {destination.region} (separate consent)",
            reasons,
            records,
        ):
            ok = False
    if policy.separate.cross_border and home and destination.region is None:
        gap = True
        reasons.append("destination declares no region; cross-border rules cannot be checked")
    outcome: Outcome = "no_decision" if gap else ("allow" if ok else "deny")
    return Decision(
        outcome,
        destination.name,
        policy.name,
        destination.purposes,
        "+".join(sorted(bases)) or "none",
        tuple(reasons),
        tuple(dict.fromkeys(records)),
    )
