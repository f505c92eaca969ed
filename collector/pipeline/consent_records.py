"""Consent into the ledger (step 7's ledger half): the consent signals an event
carries (``[privacy] event_consent``: record, restrict_only or ignore) and the
explicit consent calls (``POST /v1/consent``, webhooks' marketing consent).

An event's signals are recorded only when they change the person's state and
are not older than the record they would replace (GDPR Art. 7(3), PIPL Art.
15); GPC is an opt-out of sale/share (advertising, marketing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from collector.pipeline.memo import Memo
from collector.pipeline.prepare import Prepared
from collector.storage.ports import UnitOfWork
from consent.decide import ConsentState
from consent.ledger import Ledger, RecipientRef
from consent.policy import Policies
from consent.scope import fresh
from consent.signals import Signals
from identity.graph import Identifier, OneId

# People whose last signals are remembered as changing nothing.
UNCHANGED_MEMO = 100_000


class ConsentRecordStep:
    """Recording consent, for ``Router`` (a mixin: the router composes the steps)."""

    ledger: Ledger
    policies: Policies
    event_consent: str
    consent_sources: frozenset[str] | None
    _unchanged: Memo[int, tuple[Signals, ConsentState]]

    def _init_consent_records(self) -> None:
        # Per OneID, the last signals found to change nothing, with the state
        # they were compared to: the same two objects again change nothing.
        self._unchanged = Memo(UNCHANGED_MEMO)

    if TYPE_CHECKING:  # ResolveStep's

        def _person(
            self,
            identifiers: list[Identifier],
            subject: str,
            jurisdiction: str | None,
            at: datetime,
        ) -> OneId: ...

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
