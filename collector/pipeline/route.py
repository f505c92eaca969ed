"""Steps 5 to 7 for a batch, on the writer thread: ``Router``.

Runs inside a group-commit transaction: the graph, the ledger and the outbox
change together or not at all, and the caller is answered only after the
commit. The steps live in their own modules and are composed here:

- ``resolve.py``: the OneID (step 5)
- ``consent_records.py``: the event's consent signals and consent calls into the ledger
- ``decide.py``: per destination (step 6)
- ``outbox.py``: outbox and decision rows, quarantine (step 7)
- ``erase.py``: erasure

``RouteUnit`` is the writer's unit for a batch: planned from caches before the
shared write lock, re-checked and run under it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.config import DestinationConfig
from collector.pipeline.consent_records import ConsentRecordStep
from collector.pipeline.decide import DecideStep, destination_facts
from collector.pipeline.decode import Rejection
from collector.pipeline.dedupe import dedupe_key, repeats_within
from collector.pipeline.erase import EraseStep
from collector.pipeline.outbox import OutboxStep
from collector.pipeline.prepare import Prepared
from collector.pipeline.resolve import ResolveStep
from collector.storage.ports import OutboxInsert, UnitOfWork
from collector.vault import Vault
from consent.decide import ConsentState
from consent.ledger import Ledger
from consent.policy import Policies
from identity.graph import Graph

__all__ = ["Plan", "RouteUnit", "Router", "Tally", "destination_facts"]


@dataclass(slots=True)
class Tally:
    """What a batch did: accepted, quarantined, routed and denied per
    destination, consent records written, repeated messages (batch indexes)."""

    accepted: int = 0
    quarantined: int = 0
    routed: dict[str, int] = field(default_factory=dict)
    denied: dict[str, int] = field(default_factory=dict)
    consent_records: int = 0
    duplicates: list[int] = field(default_factory=list)  # batch indexes stored before


class Router(ResolveStep, ConsentRecordStep, DecideStep, OutboxStep, EraseStep):
    """Resolves, records consent, decides and writes rows for prepared messages."""

    def __init__(
        self,
        *,
        graph: Graph,
        ledger: Ledger,
        policies: Policies,
        destinations: Sequence[DestinationConfig],
        vault: Vault,
        event_consent: str,
        decisions: str,
        quarantine_ttl_s: float,
        notice_versions: Mapping[str, str] | None = None,
        dedupe_window_s: float = 0.0,
        consent_sources: frozenset[str] | None = None,
    ) -> None:
        """``consent_sources``: the sources that may record consent (None: all).
        ``dedupe_window_s``: repeats of a source's messageId within it are
        stored once (0: off; collector.pipeline.dedupe)."""
        self.consent_sources = consent_sources
        self.graph = graph
        self.dedupe_window_s = dedupe_window_s
        self.ledger = ledger
        self.policies = policies
        self.destinations = list(destinations)
        self._names = tuple(d.name for d in destinations)
        self.vault = vault
        self.event_consent = event_consent
        self.decisions = decisions
        self.quarantine_ttl_s = quarantine_ttl_s
        self._init_decide(destinations, notice_versions)
        self._init_consent_records()
        self._init_outbox()

    def unit(
        self,
        prepared: Sequence[Prepared],
        rejected: Sequence[Rejection],
        *,
        source: str,
        received_at: datetime,
    ) -> RouteUnit:
        """A writer unit for a batch: planned before the write lock, run under it."""
        return RouteUnit(self, prepared, rejected, source, received_at)

    def plan(self, p: Prepared, at: float) -> Plan | None:
        """Route a returning person's event from what is cached, without the
        database: every identifier known in one cluster, the consent state
        cached, the event's consent signals already found to change nothing.
        None when any of that is missing (route() then does the full work).
        Runs on the writer thread, which alone changes these caches."""
        if p.alias_ids is not None:
            return None
        one_id = self.graph.cached_one_id(p.identifiers)
        if one_id is None:
            return None
        state = self.ledger.cached_state(one_id)
        if state is None:
            return None
        if (p.signals.purposes or p.signals.gpc) and self.event_consent != "ignore":
            seen = self._unchanged.get(one_id)
            if seen is None or seen[0] is not p.signals or seen[1] is not state:
                return None
        regime = self._regime(p)
        body, allowed = self._decisions(one_id, state, regime, p)
        if p.blocked:
            body, allowed = self._restrict(body, allowed, p.blocked)
        rows: list[OutboxInsert] = []
        decision_rows: list[tuple[str, float, bytes]] = []
        self._emit(p, one_id, regime, allowed, body, p.payloads, at, rows, decision_rows)
        return Plan(self.graph.epoch, one_id, state, rows, decision_rows, allowed)

    def route(
        self,
        uow: UnitOfWork,
        prepared: Sequence[Prepared],
        rejected: Sequence[Rejection],
        *,
        source: str,
        received_at: datetime,
        plans: Sequence[Plan | None] | None = None,
    ) -> Tally:
        tally = Tally(accepted=len(prepared), quarantined=len(rejected))
        now = received_at.timestamp()
        for rej in rejected:
            self.quarantine(uow, rej, source=source, now=now)
        repeats = self._repeats(uow, prepared, source, now)
        for i, p in enumerate(prepared):
            if i in repeats:
                tally.duplicates.append(p.index)
                continue
            plan = plans[i] if plans is not None else None
            if plan is not None and self._still_valid(plan):
                self._rows += plan.rows
                self._decision_rows += plan.decision_rows
                self._count(tally, plan.routed)
                continue
            one_id, payloads = self._resolve(p, received_at)
            regime = self._regime(p)
            if p.signals.purposes or p.signals.gpc:
                tally.consent_records += self._record_event_consent(
                    p, one_id, regime.name, received_at, source
                )
            state = self.ledger.state(one_id)
            body, allowed = self._decisions(one_id, state, regime, p)
            if p.blocked:
                body, allowed = self._restrict(body, allowed, p.blocked)
            self._emit(
                p, one_id, regime, allowed, body, payloads, now, self._rows, self._decision_rows
            )
            self._count(tally, allowed)
        return tally

    def _repeats(
        self, uow: UnitOfWork, prepared: Sequence[Prepared], source: str, now: float
    ) -> set[int]:
        """Positions of the messages whose ``messageId`` this source sent before,
        in this batch or within the dedupe window (collector.pipeline.dedupe)."""
        if self.dedupe_window_s <= 0 or not prepared:
            return set()
        keys = [None if p.generated_id else dedupe_key(source, p.message_id) for p in prepared]
        within, distinct = repeats_within(keys)
        before = uow.dedupe.seen(distinct, now=now, window_s=self.dedupe_window_s)
        return set(within) | {i for i, k in enumerate(keys) if k is not None and k in before}

    def _count(self, tally: Tally, allowed: tuple[bool, ...]) -> None:
        for name, ok in zip(self._names, allowed, strict=True):
            bucket = tally.routed if ok else tally.denied
            bucket[name] = bucket.get(name, 0) + 1

    def _still_valid(self, plan: Plan) -> bool:
        """Nothing the plan read has changed since: no merge or erasure moved
        links (here or, through sync, in another process) and the person's
        consent state is the same object (an append or a sync drops it)."""
        return (
            plan.epoch == self.graph.epoch and self.ledger.cached_state(plan.one_id) is plan.state
        )


@dataclass(slots=True)
class Plan:
    """An event routed from caches, with what it assumed (see Router.plan)."""

    epoch: int
    one_id: int
    state: ConsentState
    rows: list[OutboxInsert]
    decision_rows: list[tuple[str, float, bytes]]
    routed: tuple[bool, ...]  # allowed, per destination


class RouteUnit:
    """One batch for the writer: ``plan()`` runs before the shared write lock is
    taken, so a returning person's events cost the lock holder almost nothing;
    calling it routes under the lock, re-checking each plan."""

    def __init__(
        self,
        router: Router,
        prepared: Sequence[Prepared],
        rejected: Sequence[Rejection],
        source: str,
        received_at: datetime,
    ) -> None:
        self._router = router
        self._prepared = prepared
        self._rejected = rejected
        self._source = source
        self._at = received_at
        self._plans: list[Plan | None] | None = None
        self.size = len(prepared) + len(rejected)

    def plan(self) -> None:
        at = self._at.timestamp()
        self._plans = [self._router.plan(p, at) for p in self._prepared]

    def __call__(self, uow: UnitOfWork) -> Tally:
        return self._router.route(
            uow,
            self._prepared,
            self._rejected,
            source=self._source,
            received_at=self._at,
            plans=self._plans,
        )
