"""Storage ports: the protocols the collector's modules program against.

An adapter (``storage/sqlite/`` today, ``storage/postgres/`` next) implements
them; the CLI, the audit queries and the console depend only on these shapes.
Times are Unix seconds (float) unless a type says ``datetime``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.store import DecisionRecord
from consent.ledger import ConsentRecord, VerifyResult
from identity.graph import Conflict, MergeRecord


class OutboxAdmin(Protocol):
    """What an operator does with the delivery queues (``consentry outbox``)."""

    def status(self, now: float) -> dict[str, dict[str, object]]:
        """Per destination: pending, in_flight, retrying, dead, oldest_age_s, last_error,
        next_attempt_at, next_attempt_in_s, backoff_until, backoff_reason."""
        ...

    def replay(self, destination: str, since: float | None, now: float) -> int:
        """Queue the destination's dead letters again (those created at or after
        ``since``, if given), due at ``now``; returns how many."""
        ...

    def purge_dead(self, destination: str) -> int:
        """Delete the destination's dead letters; returns how many."""
        ...

    def retry_now(self, destination: str, now: float) -> int:
        """Lift the destination's back-off and make its waiting rows due at
        ``now``; returns how many rows."""
        ...

    def due_count(self, now: float) -> int:
        """Rows of all destinations that are not dead and are due at ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class ErasureEntry:
    """One destination's part of one erasure (GDPR Art. 17/19): ``status`` is
    ``pending``, ``deleted``, ``not_supported`` or ``failed``; times in Unix seconds."""

    one_id: int
    destination: str
    status: str
    outbox_rows_deleted: int
    remote_rows_deleted: int | None
    detail: str | None
    at: float
    done_at: float | None


class AuditStore(Protocol):
    """What the audit queries read: decisions, ledger records, identity history
    and erasures. Read-only; an auditor may point it at a copy of the database."""

    def decisions(self, message_id: str) -> list[tuple[float, DecisionRecord]]:
        """Every decision recorded for the message, all destinations, with its
        time; in the order they were recorded."""
        ...

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        one_id: int | None = None,
        seqs: Sequence[int] | None = None,
    ) -> Iterator[ConsentRecord]:
        """Ledger records in seq order; ``since``/``until`` inclusive on ``received_at``."""
        ...

    def one_id_of(self, pseudonym: str) -> int | None:
        """The OneID an internal pseudonym is linked to, if any."""
        ...

    def verify(
        self, public_key: Ed25519PublicKey | None, *, anchor: tuple[int, bytes] | None
    ) -> VerifyResult:
        """``consent.ledger.verify`` over this store's ledger."""
        ...

    def erasures(self, one_id: int | None = None) -> list[ErasureEntry]:
        """Erasures (of ``one_id``, or all), oldest first."""
        ...

    def merges(self, one_id: int) -> list[MergeRecord]:
        """Identity merges that absorbed ``one_id`` or another OneID into it."""
        ...

    def conflicts(self, one_id: int | None = None) -> list[Conflict]:
        """Links and merges the identity graph refused (limits), oldest first."""
        ...
