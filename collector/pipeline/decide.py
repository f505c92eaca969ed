"""Step 6 of the flow: decide per destination (consent x purpose x jurisdiction x region).

``consent.decide.decide`` is the pure decision; this step applies it to every
destination for an event, keeps the records `audit why` reads (all, allowed
only, or none: ``[storage] decisions``), applies the event's ``integrations``
flags (they can only restrict) and the PII scan's notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from collector.config import DestinationConfig
from collector.pipeline import integrations as integration_flags
from collector.pipeline.memo import Memo
from collector.pipeline.prepare import Prepared
from collector.storage.ports import DecisionRecord, decode_decisions, encode_decisions
from consent.decide import ConsentState, Decision, DestinationFacts, EventFacts, decide
from consent.jurisdiction import Regime
from consent.policy import Policies

# Decisions remembered: one entry per person and set of event facts.
DECISIONS_MEMO = 100_000


def destination_facts(
    d: DestinationConfig, notice_versions: Mapping[str, str] | None = None
) -> DestinationFacts:
    """What the decision function needs to know about a destination: its purposes,
    region, recipient and legal facts; ``notice_versions`` ([privacy]
    min_notice_versions) per purpose, the destination's own minimum as ``*``."""
    min_notice = dict(notice_versions or {})
    if d.min_notice_version is not None:
        min_notice["*"] = d.min_notice_version
    return DestinationFacts(
        name=d.name,
        purposes=tuple(d.purposes),
        region=d.region,
        recipient=d.recipient,
        third_party=d.third_party,
        pi_categories=frozenset(d.pi_categories),
        legal_bases=dict(d.legal_bases),
        transfer=dict(d.transfer),
        ccpa_role=d.ccpa_role,
        min_notice=min_notice,
    )


class DecideStep:
    """Deciding, for ``Router`` (a mixin: the router composes the steps)."""

    destinations: list[DestinationConfig]
    facts: dict[str, DestinationFacts]
    policies: Policies
    decisions: str
    _names: tuple[str, ...]
    _memo: Memo[tuple[object, ...], tuple[ConsentState, bytes | None, tuple[bool, ...]]]

    def _init_decide(
        self, destinations: Sequence[DestinationConfig], notice_versions: Mapping[str, str] | None
    ) -> None:
        self.facts = {d.name: destination_facts(d, notice_versions) for d in destinations}
        self._memo = Memo(DECISIONS_MEMO)

    def _regime(self, p: Prepared) -> Regime:
        """The packs that apply: the event's label and the person's country
        (consent.jurisdiction.resolve, memoized by Policies)."""
        f = p.facts
        return self.policies.resolve(f.jurisdiction, f.country, f.subdivision)

    def _decisions(
        self, one_id: int, state: ConsentState, regime: Regime, p: Prepared
    ) -> tuple[bytes | None, tuple[bool, ...]]:
        """The decisions' record (as kept for `audit why`) and, per destination,
        whether it is allowed; memoized per person and facts: most events of a
        person share both, and decide() is pure. The ledger hands out one state
        object per version of a person's consent, so a hit counts only for the
        very state it was computed from."""
        key = (
            one_id,
            regime.name,
            p.facts.jurisdiction,
            p.facts.country,
            p.facts.gpc,
            p.facts.pi_categories,
            p.facts.age,
            p.facts.opt_outs,
        )
        hit = self._memo.get(key)
        if hit is not None and hit[0] is state:
            return hit[1], hit[2]
        decisions = []
        for dest in self.destinations:
            facts = EventFacts(
                jurisdiction=p.facts.jurisdiction,
                country=p.facts.country,
                subdivision=p.facts.subdivision,
                gpc=p.facts.gpc,
                pi_categories=p.pi_by_destination.get(dest.name, frozenset()),
                age=p.facts.age,
                opt_outs=p.facts.opt_outs,
            )
            decisions.append(decide(state, facts, self.facts[dest.name], regime))
        kept = [
            _decision_record(d)
            for d in decisions
            if self.decisions == "all" or (self.decisions == "allowed" and d.allowed)
        ]
        body = encode_decisions(kept) if kept else None
        allowed = tuple(d.allowed for d in decisions)
        self._memo.put(key, (state, body, allowed))
        return body, allowed

    def _restrict(
        self, body: bytes | None, allowed: tuple[bool, ...], blocked: frozenset[str]
    ) -> tuple[bytes | None, tuple[bool, ...]]:
        """The event's ``integrations`` flags applied to its decisions: they can
        only keep it from a destination (collector.pipeline.integrations), and
        each kept-out destination's record says so."""
        allowed = tuple(
            ok and name not in blocked for name, ok in zip(self._names, allowed, strict=True)
        )
        if body is None:
            return None, allowed
        records = [
            msgspec.structs.replace(
                r,
                outcome="deny" if r.outcome == "allow" else r.outcome,
                reasons=(*r.reasons, integration_flags.reason(r.destination)),
            )
            if r.destination in blocked
            else r
            for r in decode_decisions(body)
        ]
        return encode_decisions(records), allowed


def _decision_record(d: Decision) -> DecisionRecord:
    return DecisionRecord(
        d.destination, d.outcome, d.jurisdiction, d.legal_basis, d.reasons, d.record_ids
    )


def _with_notes(body: bytes, notes: tuple[str, ...]) -> bytes:
    """A decisions body whose every record also says what the PII scan replaced
    (kind, action, path; never the value: issue 14 §1)."""
    records = decode_decisions(body)
    return encode_decisions(
        [msgspec.structs.replace(r, reasons=(*r.reasons, *notes)) for r in records]
    )
