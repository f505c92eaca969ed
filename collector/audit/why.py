"""Why a message was, or was not, forwarded to a destination: the decision
made at ingest, the ledger records that justified it."""

from __future__ import annotations

from dataclasses import dataclass

from collector.storage.ports import AuditStore, DecisionRecord
from consent.ledger import ConsentRecord


@dataclass(frozen=True, slots=True)
class Explanation:
    """One decision for (message, destination): ``at`` in Unix seconds, the
    decision with its reasons, and the ledger records it cites (by seq)."""

    message_id: str
    destination: str
    at: float
    decision: DecisionRecord
    records: list[ConsentRecord]


def explain(store: AuditStore, message_id: str, destination: str) -> list[Explanation]:
    """Every decision recorded for the message at this destination, oldest
    first; empty when there is none (unknown message or destination)."""
    return [
        Explanation(
            message_id=message_id,
            destination=destination,
            at=at,
            decision=d,
            records=list(store.records(seqs=list(d.record_ids))),
        )
        for at, d in store.decisions(message_id)
        if d.destination == destination
    ]
