"""Why a message was, or was not, forwarded to a destination: the decision
made at ingest, the ledger records that justified it, and what became of
the message there. ``explain`` reads them; ``as_json`` is the admin API's
shape; ``subject_of`` names the person for the access log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

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
    return explain_all(store, message_id, only=destination).get(destination, [])


def explain_all(
    store: AuditStore, message_id: str, *, only: str | None = None
) -> dict[str, list[Explanation]]:
    """``explain`` for every destination the message was decided for (or
    ``only`` that one), reading its decisions once: destination -> decisions,
    in the order first decided."""
    out: dict[str, list[Explanation]] = {}
    for at, d in store.decisions(message_id):
        if only is not None and d.destination != only:
            continue
        out.setdefault(d.destination, []).append(_explanation(store, message_id, at, d))
    return out


def _explanation(store: AuditStore, message_id: str, at: float, d: DecisionRecord) -> Explanation:
    allowed = d.outcome == "allow"
    outcome = store.outcome(message_id, d.destination) if allowed else None
    cited = list(store.records(seqs=list(outcome.records))) if outcome else []
    return Explanation(
        message_id=message_id,
        destination=d.destination,
        at=at,
        decision=d,
        records=list(store.records(seqs=list(d.record_ids))),
        outcome=outcome,
        outcome_records=cited,
    )


def subject_of(explanations: list[Explanation]) -> str | None:
    """The OneID (as text) the cited ledger records belong to, for the access
    log; None when no record is cited (a decision on another legal basis)."""
    for e in explanations:
        for record in (*e.records, *e.outcome_records):
            return str(record.one_id)
    return None


def as_json(explanations: list[Explanation]) -> dict[str, object]:
    """The admin API's shape (times ISO 8601 UTC; codes as stored)::

        {"message_id": …, "destination": …,
         "decisions": [{"at": …, "outcome": "allow"|"deny"|"no_decision",
                        "jurisdiction": …, "legal_basis": …, "reasons": […],
                        "records": [ConsentRecord, …],
                        "delivery": {"status": …, "at": …, "attempts": …, "batch": …,
                                     "error": …, "detail": …, "records": [ConsentRecord, …]}
                                    | null}]}

    ``delivery`` is null for a decision that did not allow the message, or
    when an allowed one was never queued."""
    first = explanations[0]
    decisions = []
    for e in explanations:
        d = e.decision
        o = e.outcome
        delivery = None
        if o is not None:
            delivery = {
                "status": o.status,
                "at": _iso(o.at),
                "attempts": o.attempts,
                "batch": o.batch,
                "error": o.error,
                "detail": o.detail,
                "records": msgspec.to_builtins(e.outcome_records),
            }
        decisions.append(
            {
                "at": _iso(e.at),
                "outcome": d.outcome,
                "jurisdiction": d.jurisdiction,
                "legal_basis": d.legal_basis,
                "reasons": list(d.reasons),
                "records": msgspec.to_builtins(e.records),
                "delivery": delivery,
            }
        )
    return {
        "message_id": first.message_id,
        "destination": first.destination,
        "decisions": decisions,
    }


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()
