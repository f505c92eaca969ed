"""The console's "why" page: which consent (or other legal basis) let one
event go to one destination, and what became of it there.

``GET /console/why?message_id=…&destination=…`` renders
``collector.audit.why.explain`` in plain words (``labels``): the decision,
the law and legal basis applied, the reasons, the consent records that
justified it (purpose, notice version, signal, time) and the delivery
outcome. Person-level data (``person.why``: auditor, admin); every answer is
written to the access log, a miss too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.access.roles import Permission
from collector.audit import why
from collector.console import labels
from collector.console.session import Session
from collector.storage.ports import UnitOfWork
from consent.ledger import ConsentRecord

if TYPE_CHECKING:
    from collector.console.pages import Console

SIGNAL_SHOWN = 48  # characters of a consent string shown; the rest is in the ledger


@dataclass(frozen=True, slots=True)
class RecordView:
    """One consent record as the page shows it."""

    seq: int
    choice: str
    purposes: list[tuple[str, str]]  # (purpose in words, "yes"/"no")
    notice: str
    how: str
    signal: str
    given: str
    received: str
    law: str


@dataclass(frozen=True, slots=True)
class DecisionView:
    """One decision for (message, destination) as the page shows it."""

    when: str
    allowed: bool
    outcome: str
    law: str
    basis: str
    reasons: list[str]
    records: list[RecordView]
    delivery: str | None
    delivery_records: list[RecordView]


def _time(at: float | datetime | None) -> str:
    if at is None:
        return "not recorded"
    moment = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def record_view(record: ConsentRecord) -> RecordView:
    if record.notice_version:
        name = f"“{record.notice_id}” " if record.notice_id else ""
        notice = f"privacy notice {name}version {record.notice_version}"
    else:
        notice = "no notice version was recorded"
    signal = record.signal or ""
    if not signal:
        signal = "none recorded"
    elif signal == "<erased>":
        signal = "unreadable: the person was erased"
    elif len(signal) > SIGNAL_SHOWN:
        signal = signal[:SIGNAL_SHOWN] + "…"
    return RecordView(
        seq=record.seq,
        choice=labels.label(labels.ACTION_LABELS, record.action),
        purposes=[
            (labels.purpose(p), "yes" if v else "no") for p, v in sorted(record.purposes.items())
        ],
        notice=notice,
        how=labels.label(labels.METHOD_LABELS, record.method),
        signal=signal,
        given=_time(record.given_at),
        received=_time(record.received_at),
        law=labels.law(record.jurisdiction),
    )


def delivery_text(e: why.Explanation) -> str | None:
    """What became of an allowed message, in words (None for a decision that
    did not allow it)."""
    if e.decision.outcome != "allow":
        return None
    o = e.outcome
    if o is None:
        return "Never queued: no delivery was recorded for this event here."
    tries = f"{o.attempts} attempt{'s' if o.attempts != 1 else ''}"
    text = labels.label(labels.DELIVERY_LABELS, o.status)
    if o.status == "delivered":
        return f"{text} on {_time(o.at)} ({tries})."
    if o.status == "dropped":
        return f"{text} ({_time(o.at)}): {labels.plain(o.detail or '')}"
    if o.status in ("dead", "purged"):
        return f"{text} ({tries}; last error: {o.error or 'none recorded'})."
    nxt = f"; next try {_time(o.at)}" if o.at is not None else ""
    return f"{text} ({tries}{nxt})."


def decision_view(e: why.Explanation) -> DecisionView:
    d = e.decision
    return DecisionView(
        when=_time(e.at),
        allowed=d.outcome == "allow",
        outcome=labels.label(labels.OUTCOME_LABELS, d.outcome),
        law=labels.law(d.jurisdiction),
        basis=labels.basis(d.legal_basis),
        reasons=[labels.plain(r) for r in d.reasons],
        records=[record_view(r) for r in e.records],
        delivery=delivery_text(e),
        delivery_records=[record_view(r) for r in e.outcome_records],
    )


class WhyPage:
    def __init__(self, console: Console) -> None:
        self.c = console

    def routes(self) -> list[Route]:
        return [Route("/console/why", self.c.page(self.why, Permission.WHY), methods=["GET"])]

    async def why(self, request: Request, session: Session) -> Response:
        q = request.query_params
        message_id = (q.get("message_id") or "").strip()[:200]
        destination = (q.get("destination") or "").strip()[:100]
        names = [d.name for d in self.c.rt.destinations]
        context: dict[str, Any] = {
            "message_id": message_id,
            "destination": destination,
            "names": names,
        }
        if not message_id:
            return self.c.render(request, session, "why.html", asked=False, **context)

        def work(conn: UnitOfWork) -> list[tuple[str, list[why.Explanation]]]:
            store = conn.audit
            return list(why.explain_all(store, message_id, only=destination or None).items())

        found = await self.c.rt.writer.run(work)
        subject = next((s for _, e in found if (s := why.subject_of(e))), None)
        action = f"why {message_id} at {destination or 'every destination'}"
        await self.c._log(
            session, Permission.WHY, action, subject=subject or ("-" if found else None)
        )
        views = [(name, [decision_view(e) for e in es]) for name, es in found]
        return self.c.render(request, session, "why.html", asked=True, found=views, **context)
