"""``Pipeline.ingest``: the one way into the collector for messages.

Every source (the Segment-compatible ``/v1`` API, browsers, order-system
webhooks, tests) turns what it received into ``RawMessage`` items and
``RequestFacts`` and calls ``Pipeline.ingest``. The steps of DESIGN.md's
flow then run in order:

    2 decode + validate      pipeline/decode.py
    3 consent signals        pipeline/signals.py
    4 pseudonymize           pipeline/pseudonymize.py, egress payloads in pipeline/egress.py
    5 resolve OneID          pipeline/resolve.py          } on the writer thread, in one
    6 decide                 pipeline/decide.py           } group-commit transaction
    7 outbox + ledger rows   pipeline/outbox.py, pipeline/consent_records.py

Step 1 (authenticate the source) is the source's; the result is answered only
after the transaction committed (nothing is acknowledged before it is durable).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from collector.errors import HeldByPlan, InvalidMessage, Unavailable
from collector.limits import summarise_rejections, summarise_warnings
from collector.metrics import Metrics
from collector.pipeline.decode import Rejection, decode_message
from collector.pipeline.prepare import Prepared, Preparer
from collector.pipeline.route import Router
from collector.pipeline.warnings import InputWarning
from collector.quality.plan import TrackingPlan
from collector.storage.ports import UnitOfWork
from collector.text_rules import replace_nul
from sdk_python.messages import BatchResult, MessageWarning, Rejected

log = logging.getLogger("consentry.collector")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as received: ``raw`` JSON bytes at position ``index`` of the
    request. ``kind`` is the endpoint's message type for a single-message call
    (``/v1/track``): the message is decoded as that type, its JSON paths start
    at ``$``, and an invalid message fails the whole request (400) instead of
    being quarantined as a batch item (``$.batch[index]``) would be."""

    index: int
    raw: bytes
    kind: str | None = None

    @property
    def prefix(self) -> str:
        """The JSON path of the message in its request."""
        return "$" if self.kind is not None else f"$.batch[{self.index}]"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request says about all its messages.

    ``context``: the batch's ``context`` (each message's own wins key by key);
    ``sent_at``: the batch's ``sentAt``; ``integrations``: the batch's flags
    (they can only restrict); ``consent``/``consent_warnings``: consent read
    from the browser's CMP cookies (collector.sources.cookies) and what could not
    be read there; ``warnings``: what the source itself changed or found."""

    context: Mapping[str, Any] | None = None
    sent_at: datetime | None = None
    integrations: Mapping[str, Any] | None = None
    consent: Mapping[str, Any] | None = None
    consent_warnings: Sequence[tuple[str, str]] = ()
    warnings: Sequence[InputWarning] = ()


class WriteQueue(Protocol):
    """Runs a unit of work in the next group commit (storage.writer.Writer)."""

    def run(self, work: Callable[[UnitOfWork], T]) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """``max_depth``: nesting a message may have; ``max_quarantined`` and
    ``max_warnings``: how many rejections and warnings one response lists
    before summarising ([ingest], [server])."""

    max_depth: int
    max_quarantined: int
    max_warnings: int


class Pipeline:
    """Prepares messages (steps 2-4) on the caller's thread and hands the batch
    to the writer (steps 5-7)."""

    def __init__(
        self,
        *,
        preparer: Preparer,
        router: Router,
        writer: WriteQueue,
        metrics: Metrics,
        limits: IngestLimits,
        plans: Mapping[str, TrackingPlan] | None = None,
    ) -> None:
        """``plans``: each source's tracking plan (``[[sources]] tracking_plan``)."""
        self.preparer = preparer
        self.router = router
        self.writer = writer
        self.metrics = metrics
        self.limits = limits
        self.plans = dict(plans or {})

    async def ingest(
        self,
        source: str,
        messages: Sequence[RawMessage],
        *,
        received_at: datetime,
        request_facts: RequestFacts | None = None,
    ) -> BatchResult:
        """Store ``messages`` from the authenticated ``source`` (a ``[[sources]]``
        name), received at ``received_at`` (timezone-aware).

        Returns the wire ``BatchResult``: how many were accepted, the rejected
        ones (index, reason, JSON path; their raw bytes are quarantined,
        encrypted) and the warnings (index, reason, JSON path).
        Raises ``InvalidMessage`` (400) for an invalid single message
        (``RawMessage.kind`` set) and ``Unavailable`` (503) when the batch could
        not be stored durably: then nothing was acknowledged and the client
        retries."""
        facts = request_facts or RequestFacts()
        prepared, rejected, found = self._prepare(source, messages, received_at, facts)
        rejected_total = len(rejected)
        rejected = summarise_rejections(rejected, self.limits.max_quarantined)
        try:
            tally = await self.writer.run(
                self.router.unit(prepared, rejected, source=source, received_at=received_at)
            )
        except Exception as exc:
            # Nothing was acknowledged: say so with a status clients retry on.
            log.error("batch from %s not stored: %s", source, type(exc).__name__)
            raise Unavailable("the batch could not be stored durably; retry later") from None
        tally.quarantined = rejected_total
        self.metrics.ingested(source, len(messages), tally)
        single = bool(messages) and messages[0].kind is not None
        found += [
            InputWarning(
                i,
                "duplicate",
                "this messageId was received from this source before; acknowledged, stored once",
                "$.messageId" if single else f"$.batch[{i}].messageId",
            )
            for i in tally.duplicates
        ]
        if found:
            self.metrics.warned(source, (w.code for w in found))
            found.sort(key=lambda w: -1 if w.index is None else w.index)  # stable
        return BatchResult(
            success=True,
            accepted=tally.accepted,
            rejected=[Rejected(index=r.index, reason=r.reason, path=r.path) for r in rejected],
            warnings=summarise_warnings(
                [MessageWarning(index=w.index, reason=w.reason, path=w.path) for w in found],
                self.limits.max_warnings,
            ),
        )

    def _prepare(
        self,
        source: str,
        messages: Sequence[RawMessage],
        received_at: datetime,
        facts: RequestFacts,
    ) -> tuple[list[Prepared], list[Rejection], list[InputWarning]]:
        """Steps 2-4 for each message, with the source's tracking plan:
        (prepared, rejected, warnings)."""
        prepared: list[Prepared] = []
        rejected: list[Rejection] = []
        found = list(facts.warnings)
        plan = self.plans.get(source)
        for m in messages:
            index, prefix = m.index, m.prefix
            storable, nul_paths = replace_nul(m.raw, prefix)
            decoded = [InputWarning(index, "nul_replaced", why, at) for why, at in nul_paths]
            try:
                message = decode_message(
                    storable,
                    index=index,
                    prefix=prefix,
                    kind=m.kind,
                    max_depth=self.limits.max_depth,
                    warnings=decoded,
                )
                p = self.preparer.prepare(
                    message,
                    index=index,
                    prefix=prefix,
                    received_at=received_at,
                    batch_context=facts.context,
                    sent_at=facts.sent_at,
                    batch_integrations=facts.integrations,
                    request_consent=facts.consent,
                    plan=plan,
                )
            except HeldByPlan as held:
                # Kept (encrypted) for a replay even from a single-message endpoint.
                self.metrics.plan_checked(
                    source, held.event, held.verdict, (v[0] for v in held.violations)
                )
                rejected.append(Rejection(index, held.reason, held.path, held.kept))
                continue
            except Exception as exc:  # one bad message never fails its batch
                reason, path = rejection(exc, prefix)
                if m.kind is not None:
                    raise InvalidMessage(reason, path) from None
                rejected.append(Rejection(index, reason, path, m.raw))
                continue
            prepared.append(p)
            if p.plan is not None and p.plan.violations:
                self.metrics.plan_checked(
                    source, p.plan.event, p.plan.verdict, (v.kind for v in p.plan.violations)
                )
            found += decoded
            found += p.warnings
            found += [
                InputWarning(index, "consent_unreadable", r, at) for r, at in facts.consent_warnings
            ]
        return prepared, rejected, found


def rejection(exc: Exception, prefix: str) -> tuple[str, str]:
    """(reason, JSON path) for a message that could not be accepted. Steps
    raise InvalidMessage(reason, path); anything else is a fault of ours, logged
    by type and place only (a message could quote personal data)."""
    if isinstance(exc, InvalidMessage):
        return exc.reason, exc.path
    if type(exc) is ValueError and len(exc.args) == 2:
        return str(exc.args[0]), str(exc.args[1])
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    log.error("message not readable: %s at %s", type(exc).__name__, where)
    return f"the message could not be read ({type(exc).__name__})", prefix
