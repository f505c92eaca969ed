"""Why a message was, or was not, forwarded to a destination: the decision
made at ingest, the ledger records that justified it."""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.storage.ports import AuditStore, DecisionRecord, DeliveryOutcome
from consent.ledger import ConsentRecord


@dataclass(frozen=True, slots=True)
class Explanation:
    """One decision for (message, destination): ``at`` in Unix seconds, the
    decision with its reasons, and the ledger records it cites (by seq); then
    what became of the message (``outcome``, None when it was never queued)
    and the ledger records a send-time drop cites."""

    message_id: str
    destination: str
    at: float
    decision: DecisionRecord
    records: list[ConsentRecord]
    outcome: DeliveryOutcome | None = None
    outcome_records: list[ConsentRecord] = field(default_factory=list)


def explain(store: AuditStore, message_id: str, destination: str) -> list[Explanation]:
    """Every decision recorded for the message at this destination, oldest
    first, each with the message's final outcome there (issue 14 §6: an
    ALLOW at ingest may still have been dropped at send time, dead-lettered or
    be pending); empty when there is none (unknown message or destination)."""
    decisions = [(at, d) for at, d in store.decisions(message_id) if d.destination == destination]
    if not decisions:
        return []
    outcome = store.outcome(message_id, destination)
    cited = list(store.records(seqs=list(outcome.records))) if outcome else []
    return [
        Explanation(
            message_id=message_id,
            destination=destination,
            at=at,
            decision=d,
            records=list(store.records(seqs=list(d.record_ids))),
            outcome=outcome if d.outcome == "allow" else None,
            outcome_records=cited if d.outcome == "allow" else [],
        )
        for at, d in decisions
    ]
