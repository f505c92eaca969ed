"""Storage ports: what the pipeline, delivery and audit need from a database.

The pipeline runs each batch as a unit of work inside one write transaction
(see ``collector.storage.writer``): it reads and writes through the
stores of the ``UnitOfWork`` it is handed, and the writer commits (or rolls
back) all of them together (``WriteUnitOfWork``: the transaction's control,
which only the writer uses). ``GraphStore`` and ``LedgerStore`` are defined
beside the pure rules that use them (``identity.graph``, ``consent.ledger``)
and re-exported here.

Delivery: ``DeliveryStorage`` gives each forwarder lane a ``DeliveryReader``
and makes the forwarder's writes (units of work for the writer).

Besides the write path, every unit of work also carries what operators,
auditors and the DSR desk use: ``outbox_admin`` (``OutboxAdmin``: the
delivery queues), ``audit`` (``AuditStore``: what `consentry audit` and the
console read), ``dsr`` (``DsrStore``: data subject requests, the access log
and a person's facts) and ``key_links`` (``KeyLinks``: key-rotation
bookkeeping). Their statements run in the caller's transaction, if one is
open (``collector.storage.open.transaction`` opens one for the CLI).

Shapes that cross the ports are defined here too: ``OutboxInsert`` and
``OutboxRow`` (an outbox row going in and coming out), ``DecisionRecord`` (a
decision as ``audit why`` reads it), ``AccessEntry`` (one line of the access
log) and ``DestinationCount`` (a person's events per destination). Times
are seconds since the epoch (floats) unless a name says ISO 8601.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consent.decide import ConsentState
from consent.ledger import ConsentRecord, LedgerReader, LedgerStore, VerifyResult
from identity.graph import Conflict, GraphStore, MergeRecord

__all__ = [
    "AccessEntry",
    "AuditStore",
    "DecisionRecord",
    "DecisionStore",
    "DedupeStore",
    "DeliveryReader",
    "DeliveryStorage",
    "DeliveryStore",
    "DestinationCount",
    "Drop",
    "DsrStore",
    "ErasureEntry",
    "ErasureStore",
    "GraphStore",
    "KeyLinks",
    "LedgerReader",
    "LedgerStore",
    "OptInCount",
    "OutboxAdmin",
    "OutboxInsert",
    "OutboxRow",
    "OutboxStore",
    "QuarantineStore",
    "UnitOfWork",
    "WriteUnitOfWork",
    "decode_decisions",
    "empty_status",
    "encode_decisions",
]


# An outbox row as the pipeline writes it: (destination, message_id, one_id,
# jurisdiction, gpc 0/1, pi, created_at, payload). ``payload`` is already the
# destination's (its pseudonyms, its fields); ``pi`` the personal-information
# categories in it, comma-separated; ``created_at`` seconds since the epoch.
# A plain tuple: the pipeline builds one per allowed destination per event.
OutboxInsert = tuple[str, str, int, str, int, str, float, bytes]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as delivery reads it."""

    id: int
    message_id: str
    one_id: int
    jurisdiction: str
    gpc: bool
    pi: frozenset[str]
    payload: bytes
    created_at: float
    attempts: int


class DecisionRecord(msgspec.Struct, frozen=True, array_like=True):
    """One destination's decision for one message, as kept for `audit why`:
    outcome, the law applied, the legal basis, the reasons and the ledger
    records (seqs) that justified it."""

    destination: str
    outcome: str
    jurisdiction: str
    legal_basis: str
    reasons: tuple[str, ...]
    record_ids: tuple[int, ...]


_decisions_encoder = msgspec.msgpack.Encoder()
_decisions_decoder = msgspec.msgpack.Decoder(list[DecisionRecord])


def encode_decisions(records: Sequence[DecisionRecord]) -> bytes:
    """A message's decisions as one body (MessagePack): identical lists give
    identical bytes, so a store can keep each distinct body once."""
    return _decisions_encoder.encode(records)


def decode_decisions(body: bytes) -> list[DecisionRecord]:
    return _decisions_decoder.decode(body)


class OutboxStore(Protocol):
    def insert(self, rows: Sequence[OutboxInsert]) -> None:
        """Queue rows; each is due at once (next attempt = created_at)."""
        ...

    def delete_people(self, destination: str, one_ids: Sequence[int]) -> int:
        """Delete a destination's rows of these OneIDs (erasure); returns how many."""
        ...

    def depth(self) -> list[tuple[str, int]]:
        """(destination, rows not dead) for destinations with any."""
        ...

    def gauges(self, now: float) -> dict[str, tuple[int, int, float]]:
        """Per destination with rows: (pending rows, dead rows, seconds until
        the next attempt, 0 when rows are due now; a back-off counts)."""
        ...

    def due_count(self, now: float) -> int:
        """Rows of every destination that are not dead and due at ``now``."""
        ...


class DecisionStore(Protocol):
    def body_id(self, body: bytes) -> int:
        """The id of a decisions body (``encode_decisions``), stored on first use."""
        ...

    def insert(self, rows: Sequence[tuple[str, float, int]]) -> None:
        """Rows of (message_id, at, body id)."""
        ...

    def forget_people(self, one_ids: Sequence[int]) -> int:
        """Delete decisions citing any ledger record of these OneIDs (erasure,
        GDPR Art. 17); returns rows deleted."""
        ...


class QuarantineStore(Protocol):
    def add(
        self,
        *,
        received_at: float,
        expires_at: float,
        source: str,
        reason: str,
        path: str,
        seal: SealFn,
    ) -> int:
        """Keep a rejected message; ``seal(row id)`` encrypts its raw bytes bound
        to the row. Returns the row id."""
        ...

    def expire(self, now: float) -> int:
        """Delete rows past their expiry; returns how many."""
        ...

    def rows(
        self, *, source: str | None = None, ids: Sequence[int] = (), limit: int = 10_000
    ) -> list[QuarantinedRow]:
        """Kept messages, oldest first, of one source and/or with the given ids."""
        ...

    def delete(self, ids: Sequence[int]) -> int:
        """Remove rows (after a replay stored them again); returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """One quarantined message: times in epoch seconds; ``sealed`` is its raw
    bytes encrypted by the vault, bound to ``quarantine/<id>/<expires_at>``."""

    id: int
    received_at: float
    expires_at: float
    source: str
    reason: str
    path: str
    sealed: bytes


class SealFn(Protocol):
    def __call__(self, row_id: int) -> bytes: ...


class ErasureStore(Protocol):
    def add(
        self, *, one_id: int, one_ids: Sequence[int], destination: str, deleted: int, at: float
    ) -> None:
        """Queue a deletion request for a destination (status ``pending``)."""
        ...

    def status(self, one_ids: Sequence[int]) -> list[dict[str, object]]:
        """Per request of these people: destination, status, rows deleted here
        and at the destination, detail."""
        ...


class DeliveryStore(Protocol):
    """Webhook delivery ids already stored, per source (a retry is a no-op)."""

    def claim(self, source: str, delivery_id: str, at: float) -> bool:
        """True when the id is new for the source (and is now recorded)."""
        ...

    def prune(self, now: float) -> int:
        """Forget ids older than the retention; returns how many."""
        ...


class DedupeStore(Protocol):
    """messageId keys seen within a window (collector.pipeline.dedupe)."""

    def seen(self, keys: Sequence[int], *, now: float, window_s: float) -> set[int]:
        """Which of ``keys`` (distinct) were seen within ``window_s`` seconds;
        the others are recorded as seen at ``now``."""
        ...

    def discard(self) -> None:
        """The transaction rolled back: forget what was cached about it."""
        ...


class UnitOfWork(Protocol):
    """The stores of one write transaction. Handed to each unit of work by the
    writer; a unit must not commit (the writer commits the group)."""

    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def decisions(self) -> DecisionStore: ...
    @property
    def quarantine(self) -> QuarantineStore: ...
    @property
    def erasures(self) -> ErasureStore: ...
    @property
    def deliveries(self) -> DeliveryStore: ...
    @property
    def dedupe(self) -> DedupeStore: ...
    @property
    def graph_store(self) -> GraphStore: ...
    @property
    def ledger_store(self) -> LedgerStore: ...

    def heads(self) -> tuple[tuple[int, bytes] | None, int]:
        """(ledger head (seq, hash) or None, graph epoch), read in one statement
        inside the transaction."""
        ...

    @property
    def outbox_admin(self) -> OutboxAdmin: ...
    @property
    def audit(self) -> AuditStore: ...
    @property
    def dsr(self) -> DsrStore: ...
    @property
    def key_links(self) -> KeyLinks: ...

    def ping(self) -> None:
        """A trivial read: raises if the database cannot be used."""
        ...


class WriteUnitOfWork(UnitOfWork, Protocol):
    """A ``UnitOfWork`` with its transaction's control, for the group-commit
    writer alone (``collector.storage.writer``). ``begin()`` takes what the
    backend needs to write (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``BEGIN``,
    reconnecting first if the connection broke)."""

    @property
    def in_transaction(self) -> bool: ...

    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


# -- operators and auditors -------------------------------------------------------
class OutboxAdmin(Protocol):
    """What an operator does with the delivery queues (``consentry outbox``, the
    console's overview, ``/metrics``). Changes run in the caller's transaction."""

    def status(self, now: float) -> dict[str, dict[str, object]]:
        """Per destination with rows or a back-off: pending (not dead, including
        in flight and retrying), in_flight (sent, not yet confirmed), retrying
        (failed at least once), dead, oldest_age_s (of the oldest pending row),
        last_error, next_attempt_at (ISO 8601 UTC) and next_attempt_in_s (the
        later of the first pending row and the back-off), backoff_until (ISO
        8601 UTC), backoff_reason. ``empty_status()`` is a destination with none."""
        ...

    def gauges(self, now: float) -> dict[str, tuple[int, int, float]]:
        """Per destination with rows: (pending rows, dead rows, seconds until the
        next attempt; 0 when rows are due now or there are none)."""
        ...

    def replay(self, destination: str, since: float | None, now: float) -> int:
        """Queue the destination's dead letters again (those created at or after
        ``since``, if given), due at ``now``; returns how many."""
        ...

    def purge_dead(self, destination: str, now: float) -> int:
        """Delete the destination's dead letters, recording each as ``purged``
        at ``now`` (with its attempts and last error); returns how many."""
        ...

    def retry_now(self, destination: str, now: float) -> int:
        """Lift the destination's back-off and make its waiting rows due at
        ``now``; returns how many rows."""
        ...

    def due_count(self, now: float) -> int:
        """Rows of all destinations that are not dead and are due at ``now``."""
        ...


def empty_status() -> dict[str, object]:
    """``OutboxAdmin.status`` of a destination with nothing queued."""
    return {
        "pending": 0,
        "in_flight": 0,
        "retrying": 0,
        "dead": 0,
        "oldest_age_s": None,
        "last_error": None,
        "next_attempt_at": None,
        "next_attempt_in_s": None,
        "backoff_until": None,
        "backoff_reason": None,
    }


class KeyLinks(Protocol):
    """Key-rotation bookkeeping in the identity graph (``consentry keys``)."""

    def relinked(self, kid: str) -> tuple[int, int]:
        """(identifiers relinked under a newer key, identifiers linked under ``kid``)."""
        ...

    def forget(self, kid: str) -> int:
        """Drop the links under ``kid`` (its key was destroyed: they can never be
        looked up again) and move the graph's epoch; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One use of a permission (GDPR Art. 5(2) accountability, PIPL Art. 54
    audits): who (principal, role), when (Unix seconds), what (permission,
    action), on which request or person (a OneID, never a raw identifier),
    and the outcome."""

    at: float
    principal: str
    role: str
    permission: str
    action: str
    request_id: str | None
    subject: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class DestinationCount:
    """Events of one person routed to one destination, first and last time
    (Unix seconds), and the latest message's id (None when routed before
    SQLite schema version 8 / PostgreSQL version 3)."""

    destination: str
    events: int
    first_at: float
    last_at: float
    last_message_id: str | None = None


class DsrStore(Protocol):
    """Data subject requests (GDPR Art. 15-22, PIPL Art. 44-47, CCPA), the
    access log, and the facts about a person the DSR desk reads. Requests are
    kept as an opaque body (JSON, no raw identifier) with the columns the queue
    orders by. Times are Unix seconds. Runs in the caller's transaction."""

    def save_request(
        self, *, id: str, type: str, state: str, received_at: float, due_at: float, body: bytes
    ) -> None:
        """Insert the request, or update its state, due time and body."""
        ...

    def load_request(self, id: str) -> bytes | None:
        """The request's body, None when there is no such request."""
        ...

    def list_requests(self) -> list[bytes]:
        """Every request's body, the most urgent (earliest due) first."""
        ...

    def log_access(self, entry: AccessEntry) -> None: ...

    def access_log(self, *, subject: str | None = None, limit: int = 1000) -> list[AccessEntry]:
        """The newest ``limit`` entries, newest first; of one subject if given."""
        ...

    def identifier_kinds(self, one_ids: Sequence[int]) -> list[tuple[str, int, str, str]]:
        """(kind, how many, first linked, last linked) per identifier kind of
        these OneIDs, by kind; link times ISO 8601 as the graph stores them."""
        ...

    def pseudonyms(self, one_ids: Sequence[int]) -> list[tuple[str, str]]:
        """(kind, pseudonym) of every identifier linked to these OneIDs, sorted."""
        ...

    def destination_counts(self, one_ids: Sequence[int]) -> list[DestinationCount]:
        """Per destination (sorted by name), the events of these OneIDs routed to it."""
        ...

    def decision_totals(self) -> list[tuple[str, int]]:
        """(destination, events queued) over everyone, by destination: the
        console overview's counts."""
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


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What became of one message at one destination after its decision.

    ``status``: ``delivered`` (``batch`` is the delivery batch's id),
    ``dropped`` (at send time: consent was withdrawn or the person erased;
    ``records`` are the ledger records the new decision cites, ``detail`` its
    reasons), ``dead`` (dead-lettered), ``pending`` (queued or retrying; ``at``
    is the next attempt) or ``purged`` (a dead letter an operator deleted).
    ``at`` in Unix seconds; ``attempts`` sends tried; ``error`` the last error."""

    status: str
    at: float | None
    attempts: int
    batch: int | None = None
    error: str | None = None
    records: tuple[int, ...] = ()
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class OptInCount:
    """Consent choices received on one day (``YYYY-MM-DD``, UTC) under one law
    that named one purpose: ``choices`` of them, ``granted`` said yes."""

    day: str
    law: str
    purpose: str
    granted: int
    choices: int


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

    def outcome(self, message_id: str, destination: str) -> DeliveryOutcome | None:
        """The message's delivery state at the destination: its outbox row if it
        is still queued (pending or dead), else the last recorded outcome; None
        when neither exists (denied at ingest, or never queued)."""
        ...

    def chain_hashes(self, seqs: Sequence[int]) -> dict[int, bytes]:
        """The stored chain hash of each of these records that exists."""
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

    def opt_in_counts(self, since: datetime) -> list[OptInCount]:
        """Per day (UTC), law and purpose from the day `since` falls on: consent choices (grant,
        deny, withdraw, update records) naming the purpose and how many said
        yes. Aggregate only; reads the ledger records received since then."""
        ...


@dataclass(frozen=True, slots=True)
class Drop:
    """A row dropped at send time: the ledger records the new decision cites
    (the withdrawal among them) and its reasons."""

    row: OutboxRow
    records: tuple[int, ...]
    detail: str


# A write for the group-commit writer: called with the writer's unit of work.
DeliveryUnit = Callable[[Any], None]


class DeliveryStorage(Protocol):
    """The forwarder's view of the database: a reader per lane and its writes,
    each returned as a unit of work for the writer (``Writer.run(unit)``).
    Times are Unix seconds. On a shared database (PostgreSQL) the reader's
    ``due_rows`` leases what it returns, and these writes release the lease."""

    def open_reader(self) -> DeliveryReader:
        """A reader on a connection of its own (close it when done)."""
        ...

    def listen(self, wake: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``wake`` (from any thread) when other processes queue rows;
        returns what stops it, or None when the backend cannot tell (the lanes
        poll)."""
        ...

    def delivered(self, destination: str, rows: Sequence[OutboxRow], at: float) -> DeliveryUnit:
        """The destination confirmed ``rows``: log the batch, record each row's
        outcome, delete the rows, clear the in-flight marker and the back-off."""
        ...

    def dropped(self, destination: str, drops: Sequence[Drop], at: float) -> DeliveryUnit:
        """Consent no longer allows these rows (or the person was erased):
        record why, delete them, log the drop."""
        ...

    def retry(
        self,
        destination: str,
        plans: Sequence[tuple[int, float, bool, str]],
        at: float,
        backoff: tuple[float, str] | None,
    ) -> DeliveryUnit:
        """plans: (row id, next attempt at, dead?, error); ``backoff``: (until,
        reason) when the whole destination waits."""
        ...

    def in_flight(self, destination: str, n: int, at: float) -> DeliveryUnit:
        """``n`` rows of the destination are being sent (the operator's view)."""
        ...

    def finish_erasure(
        self, erasure_id: int, status: str, deleted: int | None, detail: str | None, at: float
    ) -> DeliveryUnit:
        """Record what the destination did with an erasure request."""
        ...


class DeliveryReader(Protocol):
    """What one forwarder lane reads, on a read-only connection of its own.
    Times are Unix seconds."""

    def due_rows(self, destination: str, now: float, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows of the destination, not dead, due at ``now``, oldest first."""
        ...

    def next_due(self, destination: str) -> float | None:
        """When the destination's next row is due (None: nothing queued)."""
        ...

    def backoff_until(self, destination: str) -> float | None:
        """Until when the whole destination waits (None: it does not)."""
        ...

    def ledger_seq(self) -> int:
        """The consent ledger's head seq, to see whether it moved."""
        ...

    def person(self, one_id: int) -> tuple[int, bool]:
        """(the OneID ``one_id`` was merged into, or itself; erased?)."""
        ...

    def consent_state(self, one_id: int) -> ConsentState:
        """The person's effective consent now."""
        ...

    def pending_erasures(self) -> list[tuple[int, str, list[int]]]:
        """(erasure id, destination, the person's OneIDs) not yet propagated.
        On a shared database each is held for this reader until it is closed,
        so no other replica propagates it at the same time."""
        ...

    def close(self) -> None: ...
