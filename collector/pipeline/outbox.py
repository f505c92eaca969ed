"""Step 7 of the flow: outbox rows (one per allowed destination, its payload),
decision rows, and quarantined rejects, written in the batch's transaction.

Rows of a whole group commit are buffered and written by ``flush`` in a few
multi-row statements just before COMMIT (or before an erasure reads them).
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.config import DestinationConfig
from collector.pipeline.decide import _with_notes
from collector.pipeline.decode import Rejection
from collector.pipeline.memo import Memo
from collector.pipeline.prepare import Prepared
from collector.storage.ports import OutboxInsert, UnitOfWork
from collector.vault import Vault
from consent.jurisdiction import Regime, recheck_label

# Decision bodies whose row id is remembered (distinct bodies are few).
BODY_IDS_MEMO = 100_000


class OutboxStep:
    """Writing rows, for ``Router`` (a mixin: the router composes the steps)."""

    destinations: list[DestinationConfig]
    vault: Vault
    quarantine_ttl_s: float
    _rows: list[OutboxInsert]
    _decision_rows: list[tuple[str, float, bytes]]
    _body_ids: Memo[bytes, int]

    def _init_outbox(self) -> None:
        self._rows = []
        self._decision_rows = []
        self._body_ids = Memo(BODY_IDS_MEMO)

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
            notes = p.scrubbed + (p.plan.notes() if p.plan is not None else ())
            if notes:
                body = _with_notes(body, notes)
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
                body_id = ids.put(body, uow.decisions.body_id(body))
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
