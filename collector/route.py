"""Resolve, record consent, decide, write outbox rows (stage B of the flow).

Runs on the writer thread inside a group-commit transaction: the graph, the
ledger and the outbox change together or not at all, and the caller is
answered only after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from collector.config import DestinationConfig
from collector.pipeline import integrations as integration_flags
from collector.pipeline.decode import Rejection
from collector.pipeline.dedupe import dedupe_key, repeats_within
from collector.pipeline.prepare import Prepared
from collector.storage.ports import (
    DecisionRecord,
    OutboxInsert,
    UnitOfWork,
    decode_decisions,
    encode_decisions,
)
from collector.vault import Vault
from consent.decide import ConsentState, Decision, DestinationFacts, EventFacts, decide
from consent.jurisdiction import Regime, recheck_label
from consent.ledger import Ledger, RecipientRef
from consent.policy import Policies
from consent.scope import fresh
from consent.signals import Signals
from identity.graph import Graph, Identifier, OneId


@dataclass(slots=True)
class Tally:
    accepted: int = 0
    quarantined: int = 0
    routed: dict[str, int] = field(default_factory=dict)
    denied: dict[str, int] = field(default_factory=dict)
    consent_records: int = 0
    duplicates: list[int] = field(default_factory=list)  # batch indexes stored before


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


class Router:
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
        self.facts = {d.name: destination_facts(d, notice_versions) for d in destinations}
        self._names = tuple(d.name for d in destinations)
        self.vault = vault
        self.event_consent = event_consent
        self.decisions = decisions
        self.quarantine_ttl_s = quarantine_ttl_s
        self._memo: dict[
            tuple[object, ...],
            tuple[ConsentState, bytes | None, tuple[bool, ...]],
        ] = {}
        # Per OneID, the last signals found to change nothing, with the state
        # they were compared to: the same two objects again change nothing.
        self._unchanged: dict[int, tuple[Signals, ConsentState]] = {}
        self._rows: list[OutboxInsert] = []
        self._body_ids: dict[bytes, int] = {}
        self._decision_rows: list[tuple[str, float, bytes]] = []

    # -- events --------------------------------------------------------------
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
        body, allowed = self._decisions(state, regime, p)
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
            body, allowed = self._decisions(state, regime, p)
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

    def _regime(self, p: Prepared) -> Regime:
        """The packs that apply: the event's label and the person's country
        (consent.jurisdiction.resolve, memoized by Policies)."""
        f = p.facts
        return self.policies.resolve(f.jurisdiction, f.country, f.subdivision)

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

    def _emit(
        self,
        p: Prepared,
        one_id: int,
        regime: Regime,
        allowed: tuple[bool, ...],
        body: bytes | None,
        payloads: Mapping[str, bytes],
        now: float,
        rows: list[OutboxInsert],
        decision_rows: list[tuple[str, float, bytes]],
    ) -> None:
        """Outbox rows for the allowed destinations, and the decisions' row."""
        pi_text = ",".join(sorted(p.facts.pi_categories)) if p.facts.pi_categories else ""
        gpc = int(p.facts.gpc)
        # What the send-time re-check needs besides gpc and pi: the packs, the
        # person's country and age (consent.jurisdiction.recheck_label).
        label = recheck_label(regime.name, p.facts.country, p.facts.age)
        for dest, ok in zip(self.destinations, allowed, strict=True):
            if ok:
                rows.append(
                    (
                        dest.name,
                        p.message_id,
                        one_id,
                        label,
                        gpc,
                        pi_text,
                        now,
                        payloads[dest.name],
                    )
                )
        if body is not None:
            if p.scrubbed:
                body = _with_notes(body, p.scrubbed)
            decision_rows.append((p.message_id, now, body))

    def flush(self, uow: UnitOfWork) -> None:
        """Write the rows routed since the last flush: the whole group commit's
        rows in two statements. Runs before COMMIT and before anything that
        reads or deletes outbox rows (erasure)."""
        uow.outbox.insert(self._rows)
        ids = self._body_ids
        decision_rows = []
        for message_id, at, body in self._decision_rows:
            body_id = ids.get(body)
            if body_id is None:
                if len(ids) >= 100_000:
                    ids.clear()
                body_id = ids[body] = uow.decisions.body_id(body)
            decision_rows.append((message_id, at, body_id))
        uow.decisions.insert(decision_rows)
        self._rows = []
        self._decision_rows = []

    def discard(self) -> None:
        """The transaction that routed them rolled back: so did the body ids it
        may have stored (the seen keys: ``UnitOfWork.dedupe.discard``)."""
        self._rows = []
        self._decision_rows = []
        self._body_ids.clear()

    def _decisions(
        self, state: ConsentState, regime: Regime, p: Prepared
    ) -> tuple[bytes | None, tuple[bool, ...]]:
        """The decisions' record (as kept for `audit why`) and, per destination,
        whether it is allowed; memoized:
        most events of a person share both, and decide() is pure. The ledger hands
        out one state object per version, so identity is a sound cache key."""
        key = (
            id(state),
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
        if len(self._memo) > 100_000:
            self._memo.clear()
        allowed = tuple(d.allowed for d in decisions)
        self._memo[key] = (state, body, allowed)
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

    def _resolve(self, p: Prepared, at: datetime) -> tuple[OneId, dict[str, bytes]]:
        identifiers = list(p.identifiers)
        payloads = p.payloads
        if p.alias_ids is not None:
            anon, user = p.alias_ids
            # previousId may be an old user id or an anonymous id: link whichever
            # the graph knows, preferring the user id.
            if self.graph.lookup(user.pseudonym) is not None or any(
                self.graph.lookup(o) is not None for o in user.previous
            ):
                identifiers.append(user)
                assert p.alias_user_payloads is not None
                payloads = p.alias_user_payloads
            else:
                identifiers.append(anon)
        one_id = self._person(identifiers, p.subject, p.facts.jurisdiction, at)
        return one_id, payloads

    def _person(
        self, identifiers: list[Identifier], subject: str, jurisdiction: str | None, at: datetime
    ) -> OneId:
        """Resolve the OneID; a merge is recorded in the ledger (never widening consent)."""
        resolution = self.graph.resolve(identifiers, now=at)
        if resolution.merged:
            self.ledger.merge(
                resolution.one_id,
                resolution.merged,
                subject=subject,
                jurisdiction=self.policies.get(jurisdiction).name,
                now=at,
            )
        return resolution.one_id

    def may_record(self, source: str | None) -> bool:
        """Whether ``source`` may record consent (``consent_authority``)."""
        return self.consent_sources is None or source in self.consent_sources

    def _record_event_consent(
        self, p: Prepared, one_id: int, jurisdiction: str, at: datetime, source: str
    ) -> int:
        if self.event_consent == "ignore" or not self.may_record(source):
            return 0
        state = self.ledger.state(one_id)
        seen = self._unchanged.get(one_id)
        if seen is not None and seen[0] is p.signals and seen[1] is state:
            return 0
        purposes = dict(p.signals.purposes)
        if p.signals.gpc:
            # GPC is an opt-out of sale/share: the purposes that sell or share.
            for purpose in ("advertising", "marketing"):
                purposes[purpose] = False
        if self.event_consent == "restrict_only":
            purposes = {k: v for k, v in purposes.items() if not v}
        # Ordered by the signal's own time: nothing older than the record it would
        # replace changes it (GDPR Art. 7(3), PIPL Art. 15).
        given = p.signal_at if p.signal_at is not None else at.timestamp()
        changed = fresh(state.purposes, purposes, given)
        if not changed:
            # Remembered only when the signal agrees with the state: a stale one
            # may come back later with a newer timestamp, and then it counts.
            if not self.ledger.differs(one_id, purposes):
                if len(self._unchanged) >= 100_000:
                    self._unchanged.clear()
                self._unchanged[one_id] = (p.signals, state)
            return 0
        self.ledger.append(
            one_id=one_id,
            subject=p.subject,
            purposes=changed,
            jurisdiction=jurisdiction,
            method="gpc" if p.signals.gpc and not p.signals.sources else "event",
            given_at=datetime.fromtimestamp(given, UTC),
            received_at=at,
            signal=p.signals.raw,
            source=source,
            signals=p.signals.sources,
        )
        return 1

    # -- explicit consent calls ---------------------------------------------------
    def record_consent(
        self,
        uow: UnitOfWork,
        identifiers: list[Identifier],
        *,
        purposes: dict[str, bool],
        jurisdiction: str | None,
        given_at: datetime,
        received_at: datetime,
        legal_basis: str,
        method: str,
        pi_categories: Sequence[str],
        recipients: Sequence[tuple[str, str | None]],
        separate: bool,
        scopes: Mapping[str, tuple[str, ...]] | None = None,
        consenter: str,
        notice_id: str | None,
        notice_version: str | None,
        signal: str | None,
        source: str | None = None,
    ) -> tuple[int, int, str]:
        one_id = self._person(identifiers, identifiers[0].pseudonym, jurisdiction, received_at)
        policy = self.policies.get(jurisdiction)
        record = self.ledger.append(
            one_id=one_id,
            subject=identifiers[0].pseudonym,
            purposes=purposes,
            jurisdiction=policy.name,
            method=method,
            given_at=given_at,
            received_at=received_at,
            legal_basis=legal_basis,
            pi_categories=tuple(pi_categories),
            recipients=tuple(RecipientRef(n, r) for n, r in recipients),
            separate=separate,
            scopes=dict(scopes or {}),
            consenter=consenter,
            notice_id=notice_id,
            notice_version=notice_version,
            signal=signal,
            source=source,
        )
        return record.seq, one_id, record.action

    # -- quarantine ------------------------------------------------------------
    def quarantine(self, uow: UnitOfWork, rej: Rejection, *, source: str, now: float) -> None:
        expires = now + self.quarantine_ttl_s
        uow.quarantine.add(
            received_at=now,
            expires_at=expires,
            source=source,
            reason=rej.reason,
            path=rej.path,
            seal=lambda row_id: self.vault.seal(rej.raw, f"quarantine/{row_id}/{expires}".encode()),
        )

    # -- erasure ---------------------------------------------------------------
    def erase(
        self, uow: UnitOfWork, identifiers: list[Identifier], *, now: datetime
    ) -> dict[str, object]:
        """Erase every cluster these identifiers belong to: graph links, consent
        state, pending outbox rows, the decisions that cite the person's ledger
        records, their subject keys (crypto-shredding their ledger records);
        queue a deletion request per destination."""
        self.flush(uow)  # rows routed earlier in this group must be erased too
        found = {self.graph.lookup(i.pseudonym) for i in identifiers}
        currents = sorted({self.graph.current(o) for o in found if o is not None})
        if not currents:
            return {"erased": False, "reason": "no person is known by these identifiers"}
        people: list[dict[str, object]] = []
        purged: dict[str, int] = {}
        for current in currents:
            # Rows forwarded before a merge carry the absorbed OneID: delete those too.
            lineage = self.graph.lineage(current)
            removed = self.graph.erase(current, now=now)
            # The erase record names nobody; the person's subject keys go with it.
            self.ledger.erase(
                current, subject="", jurisdiction=self.policies.default, now=now, lineage=lineage
            )
            forgotten = uow.decisions.forget_people(lineage)
            for dest in self.destinations:
                n = uow.outbox.delete_people(dest.name, lineage)
                purged[dest.name] = purged.get(dest.name, 0) + n
                uow.erasures.add(
                    one_id=current,
                    one_ids=lineage,
                    destination=dest.name,
                    deleted=n,
                    at=now.timestamp(),
                )
            people.append(
                {
                    "one_id": current,
                    "identifiers_removed": removed,
                    "one_ids": lineage,
                    "decisions_removed": forgotten,
                }
            )
        return {"erased": True, "people": people, "outbox_rows_deleted": purged}


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
