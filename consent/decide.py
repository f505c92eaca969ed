"""The decision function: may this event go to this destination? (pure)

``decide(state, facts, destination, policy) -> Decision`` reads nothing but its
arguments. ``policy`` is one pack or a :class:`~consent.jurisdiction.Regime`
(several packs that apply together: each is applied and the stricter outcome
wins). Like fides' policy evaluator it returns its audit trail (reasons and the
ledger record ids that justified each grant) and keeps "no decision" (a gap in
configuration) apart from "deny"; both block.

What is checked, per pack:

- purposes: ``none`` (necessary), ``opt_in`` (needs a granted record), ``opt_out``
  (allowed until a denial record, GPC or a US opt-out signal); a destination's
  declared ``legal_bases`` may rest a purpose on legitimate interests (GDPR
  Art. 6(1)(f)) or the ePrivacy soft opt-in (Art. 13(2)) where the pack allows it;
- children: the highest age across the packs; a guardian must give every consent
  a minor needs, sensitive and separate ones included (GDPR Art. 8; PIPL Art. 31;
  CCPA §1798.120(c)); under PIPL all of a child's information is sensitive (Art. 28);
- sensitive categories, bound to the purposes the consent named (GDPR Art. 9(2)(a));
- separate consents per recipient and region (PIPL Art. 23, 39);
- transfers out of the pack's zone: a declared mechanism (GDPR Art. 44-46; PIPL
  Art. 38) or explicit consent (GDPR Art. 49(1)(a)); contract necessity and the
  volume exemption (CAC Provisions on Cross-Border Data Flows 2024, Art. 5);
- CCPA: disclosure to a ``third_party`` is a sale (§1798.140(ad)); a
  ``service_provider`` receives data after an opt-out of sale;
- notice versions: consent given under an older notice than required is absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from consent.jurisdiction import ChildRule, Regime, child_rule
from consent.rules import Judge
from consent.state import (
    LAWFUL_BASES,
    ConsentState,
    Decision,
    DestinationFacts,
    EventFacts,
    Outcome,
    PurposeState,
)

if TYPE_CHECKING:
    from consent.policy import Policy


def decide(
    state: ConsentState,
    facts: EventFacts,
    destination: DestinationFacts,
    policy: Policy | Regime,
) -> Decision:
    """Decide one event for one destination under every pack of the regime."""
    if isinstance(policy, Regime):
        packs, name = policy.packs, policy.name
        child = policy.children(facts.country)
    else:  # one pack: its own child rule, no regime to build
        packs, name = (policy,), policy.name
        child = child_rule((policy.children,), facts.country)
    if not destination.purposes:
        return Decision(
            "no_decision",
            destination.name,
            name,
            (),
            "none",
            ("destination declares no purposes, so it receives nothing",),
            (),
        )
    several = len(packs) > 1
    reasons: list[str] = []
    if isinstance(policy, Regime) and (several or policy.unknown):
        reasons += [f"jurisdiction: {note}" for note in policy.notes]
        if policy.unknown:
            reasons.append(f"unknown jurisdiction names: {', '.join(policy.unknown)}")
    records: list[int] = []
    bases: set[str] = set()
    outcomes: list[Outcome] = []
    for pack in packs:
        judge = Judge(state, facts, destination, pack, child, f"[{pack.name}] " if several else "")
        judge.run()
        reasons += judge.reasons
        records += judge.records
        bases |= judge.bases
        outcomes.append("no_decision" if judge.gap else ("allow" if judge.ok else "deny"))
    outcome: Outcome = (
        "deny" if "deny" in outcomes else "no_decision" if "no_decision" in outcomes else "allow"
    )
    return Decision(
        outcome,
        destination.name,
        name,
        destination.purposes,
        "+".join(sorted(bases)) or "none",
        tuple(reasons),
        tuple(dict.fromkeys(records)),
    )


__all__ = [
    "LAWFUL_BASES",
    "ChildRule",
    "ConsentState",
    "Decision",
    "DestinationFacts",
    "EventFacts",
    "PurposeState",
    "decide",
]
