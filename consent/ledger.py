"""The tamper-evident consent ledger.

Every grant, denial, withdrawal, merge and erasure is an append-only record.
Record *n* is stored as its canonical encoding (msgspec JSON, deterministic
key order) and chained: ``hash_n = SHA-256(hash_{n-1} || body_n)`` with
``hash_0`` = 32 zero bytes. Every N records or T seconds a checkpoint signs
``"consentry-ledger/1" || seq || hash_seq`` with Ed25519; the public key
lets an auditor verify a copy of the database offline.

What verification catches: a modified body (hash mismatch), a deleted or
reordered record (sequence gap or hash mismatch), a recomputed chain (the
signed checkpoint no longer matches), and a checkpoint re-signed with another
key (signature fails under the auditor's public key).

The effective state (latest record per state key, per OneID) is kept in a
derived table so decisions cost one indexed read; it can be rebuilt from the
ledger.

This module holds the rules only (chaining, checkpoints, sealing, merges,
verification); where records live is a ``LedgerStore`` / ``LedgerReader``
(``collector.storage.sqlite.ledger`` is the embedded one).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consent import shred
from consent.errors import LedgerError
from consent.ledger_store import LedgerReader as LedgerReader  # re-exported
from consent.ledger_store import LedgerStore as LedgerStore  # re-exported
from consent.ledger_store import StateRow as StateRow  # re-exported
from consent.scope import merge_states
from consent.state import ConsentState, PurposeState

GENESIS = bytes(32)
CHECKPOINT_DOMAIN = b"consentry-ledger/1"
Action = Literal["grant", "deny", "withdraw", "update", "merge", "erase"]


class RecipientRef(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str
    region: str | None = None


class MergeSide(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one side of a merge held for a key: its OneID and the record that set
    the key there (``record``/``granted`` None: no record on that side)."""

    one_id: int
    record: int | None = None
    granted: bool | None = None


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One ledger entry, as a compliance officer reads it."""

    seq: int
    action: Action
    one_id: int
    subject: str
    jurisdiction: str
    legal_basis: str
    purposes: dict[str, bool]
    method: str
    given_at: datetime
    received_at: datetime
    pi_categories: tuple[str, ...] = ()
    recipients: tuple[RecipientRef, ...] = ()
    separate: bool = False
    consenter: str = "self"
    notice_id: str | None = None
    notice_version: str | None = None
    signal: str | None = None
    merged_from: tuple[int, ...] = ()
    # The collector source (write key or webhook) that recorded it; for records
    # from events, ``signals`` names the signals read (categoryPreferences, gpp, ...).
    source: str | None = None
    signals: tuple[str, ...] = ()
    # Per sensitive key, the purposes the consent was given for (GDPR Art. 9(2)(a)).
    scopes: dict[str, tuple[str, ...]] = {}
    # Merge records: per key, what each side contributed.
    contributions: dict[str, tuple[MergeSide, ...]] = {}


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(ConsentRecord)


def chain(prev: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev + body).digest()


def checkpoint_message(seq: int, digest: bytes) -> bytes:
    return CHECKPOINT_DOMAIN + seq.to_bytes(8, "big") + digest


def encode(record: ConsentRecord) -> bytes:
    return _encoder.encode(record)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: bytes
    signed_at: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    last_checkpoint: Checkpoint | None
    unsealed: int
    problem: str | None = None
    first_bad_seq: int | None = None
    # Records whose subject was crypto-shredded (the person was erased).
    erased: int = 0


def _action(purposes: dict[str, bool], before: ConsentState) -> Action:
    if all(purposes.values()):
        return "grant"
    if not any(purposes.values()):
        was = [before.get(k) for k in purposes]
        return "withdraw" if any(p is not None and p.granted for p in was) else "deny"
    return "update"


class Ledger:
    """Appends records to a ``LedgerStore``, chained and checkpointed.

    ``signer``: the Ed25519 key that signs checkpoints (None: no checkpoints).
    A checkpoint is due every ``checkpoint_every`` records or
    ``checkpoint_seconds`` seconds. ``state_cache_size``: people whose
    effective state is kept in memory (LRU)."""

    def __init__(
        self,
        store: LedgerStore,
        *,
        signer: Ed25519PrivateKey | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        state_cache_size: int = 100_000,
        subject_keys: shred.SubjectKeys | None = None,
    ) -> None:
        """``subject_keys``: seal each record's subject and signal under a
        per-person key (see :mod:`consent.shred`); None stores them plain."""
        self._store = store
        self._keys = subject_keys
        self._key_cache: OrderedDict[int, AESGCM] = OrderedDict()
        self._signer = signer
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._seq, self._hash = store.head() or (0, GENESIS)
        self._states: OrderedDict[int, ConsentState] = OrderedDict()
        self._state_cache_size = state_cache_size
        sealed = store.sealed()
        self._sealed_seq = sealed[0] if sealed else 0
        self._sealed_at = datetime.fromisoformat(sealed[1]) if sealed else None

    @property
    def head(self) -> tuple[int, bytes]:
        return self._seq, self._hash

    def reload_head(self) -> None:
        """Re-read the head after a rolled-back transaction (and forget cached
        state and subject keys: a key created in it was rolled back too), and
        the last checkpoint (see ``_reread_sealed``)."""
        self._states.clear()
        self._key_cache.clear()
        self._seq, self._hash = self._store.head() or (0, GENESIS)
        self._reread_sealed()

    def sync(self, head: tuple[int, bytes] | None) -> int:
        """Take the head read inside the current write transaction (the caller
        reads it with other heads in one statement). The head in memory is
        never trusted across transactions: if it differs (other processes
        appended, or a transaction of ours rolled back), cached states of the
        people the new records touch are dropped, or all of them when the chain
        went backwards. Returns how many records were new."""
        seq, digest = head or (0, GENESIS)
        if seq == self._seq and digest == self._hash:
            return 0
        if seq <= self._seq:
            self._states.clear()
            self._key_cache.clear()
            self._reread_sealed()
        else:
            for body in self._store.bodies_after(self._seq):
                record = _decoder.decode(body)
                self._states.pop(record.one_id, None)
                for absorbed in record.merged_from:
                    self._states.pop(absorbed, None)
                if record.action == "erase":
                    # Another process destroyed subject keys (of the person and
                    # of those it absorbed): no copy may outlive them here.
                    self._key_cache.clear()
        moved = seq - self._seq
        self._seq, self._hash = seq, digest
        self._read_sealed()
        return moved

    def _read_sealed(self) -> None:
        sealed = self._store.sealed()
        if sealed is not None and sealed[0] > self._sealed_seq:
            self._sealed_seq, self._sealed_at = sealed[0], datetime.fromisoformat(sealed[1])

    def _reread_sealed(self) -> None:
        """Forget the sealed position and read it again: when the chain went
        backwards, a checkpoint sealed in the rolled-back transaction (a COMMIT
        on a full disk) is gone, and believing it was kept would leave the
        records after the real last checkpoint unsealed (issue 19 item 2)."""
        self._sealed_seq, self._sealed_at = 0, None
        self._read_sealed()

    # -- state ---------------------------------------------------------------
    def cached_state(self, one_id: int) -> ConsentState | None:
        """The state if it is cached (no database read); the same object until a
        record for this person is appended here or seen by sync()."""
        return self._states.get(one_id)

    def state(self, one_id: int) -> ConsentState:
        # The ledger is the only writer of consent_state, and sync() drops what
        # other processes changed, so a cache here stays exact.
        cached = self._states.get(one_id)
        if cached is not None:
            self._states.move_to_end(one_id)
            return cached
        state = self._store.state(one_id)
        self._states[one_id] = state
        if len(self._states) > self._state_cache_size:
            self._states.popitem(last=False)
        return state

    # -- appends (inside the caller's transaction) ----------------------------
    def append(
        self,
        *,
        one_id: int,
        subject: str,
        purposes: dict[str, bool],
        jurisdiction: str,
        method: str,
        given_at: datetime,
        received_at: datetime,
        legal_basis: str = "consent",
        action: Action | None = None,
        **extra: Any,
    ) -> ConsentRecord:
        if not purposes and action != "erase":
            raise LedgerError("a consent record needs at least one purpose state")
        before = self.state(one_id)
        if self._keys is not None:
            subject, extra = self._seal(one_id, self._seq + 1, subject, extra)
        record = ConsentRecord(
            seq=self._seq + 1,
            action=action or _action(purposes, before),
            one_id=one_id,
            subject=subject,
            jurisdiction=jurisdiction,
            legal_basis=legal_basis,
            purposes=dict(purposes),
            method=method,
            given_at=given_at,
            received_at=received_at,
            **extra,  # type: ignore[arg-type]
        )
        body = encode(record)
        digest = chain(self._hash, body)
        self._store.append(record.seq, body, digest)
        guardian = record.consenter == "guardian"
        at = given_at.isoformat()
        scopes = record.scopes
        self._store.put_state(
            one_id,
            [
                (
                    k,
                    v,
                    record.seq,
                    guardian,
                    at,
                    ",".join(sorted(scopes[k])) if k in scopes else "",
                    record.notice_version,
                )
                for k, v in purposes.items()
            ],
        )
        self._seq, self._hash = record.seq, digest
        self._states.pop(one_id, None)
        return record

    def _put(self, one_id: int, entries: Mapping[str, PurposeState]) -> None:
        self._store.put_state(
            one_id,
            [
                (
                    k,
                    e.granted,
                    e.record_id,
                    e.guardian,
                    datetime.fromtimestamp(e.at or 0.0, UTC).isoformat(),
                    ",".join(sorted(e.scope)) if e.scope is not None else "",
                    e.notice,
                )
                for k, e in entries.items()
            ],
        )

    def _seal(
        self, one_id: int, seq: int, subject: str, extra: dict[str, object]
    ) -> tuple[str, dict[str, object]]:
        """The subject and the free-text signal sealed under the person's key."""
        assert self._keys is not None
        key = self._key_cache.get(one_id)
        if key is None:
            raw = self._keys.get(one_id)
            if raw is None:
                raw = shred.new_key()
                self._keys.create(one_id, raw)
            key = self._key_cache[one_id] = shred.cipher(raw)
            if len(self._key_cache) > 100_000:
                self._key_cache.popitem(last=False)
        if subject:
            subject = shred.seal(key, subject, seq=seq, one_id=one_id, name="subject")
        signal = extra.get("signal")
        if isinstance(signal, str) and signal:
            extra = {
                **extra,
                "signal": shred.seal(key, signal, seq=seq, one_id=one_id, name="signal"),
            }
        return subject, extra

    def subject_key(self, one_id: int) -> bytes | None:
        """The person's subject key (None: never sealed, or erased)."""
        return None if self._keys is None else self._keys.get(one_id)

    def differs(self, one_id: int, purposes: dict[str, bool]) -> dict[str, bool]:
        """The part of ``purposes`` that would change the OneID's state."""
        state = self.state(one_id)
        return {k: v for k, v in purposes.items() if (e := state.get(k)) is None or e.granted != v}

    def merge(
        self, into: int, absorbed: Sequence[int], *, subject: str, jurisdiction: str, now: datetime
    ) -> ConsentRecord | None:
        """Merges never widen consent, and never invent a denial: per key an
        explicit denial or withdrawal on any side wins; a grant with no record on
        the other side stays granted; *no record* is not a denial (see
        consent.scope.merge_states). The record shows, per key, what each side
        contributed; the merged state keeps each winning side's own entry."""
        sides = [(into, self.state(into).purposes)]
        sides += [(a, self.state(a).purposes) for a in absorbed]
        merged, contributions = merge_states(sides)
        if not merged:
            return None
        for a in absorbed:
            self._store.drop_state(a)
            self._states.pop(a, None)
        record = self.append(
            one_id=into,
            subject=subject,
            purposes={k: e.granted for k, e in merged.items()},
            jurisdiction=jurisdiction,
            method="merge",
            given_at=now,
            received_at=now,
            legal_basis="merge",
            action="merge",
            merged_from=tuple(absorbed),
            contributions={
                k: tuple(MergeSide(c.one_id, c.record_id, c.granted) for c in sides_)
                for k, sides_ in contributions.items()
            },
        )
        self._put(into, merged)
        self._states.pop(into, None)
        return record

    def erase(
        self,
        one_id: int,
        *,
        subject: str,
        jurisdiction: str,
        now: datetime,
        lineage: Sequence[int] = (),
    ) -> ConsentRecord:
        """Forget the OneID's state; the ledger keeps proof that consent existed
        (GDPR Art. 7(1)). With subject keys, the keys of ``one_id`` and of every
        OneID in ``lineage`` (those it absorbed) are destroyed after this
        record is written: their records' subjects and signals can no longer
        be opened (crypto-shredding), and the chain still verifies."""
        self._store.drop_state(one_id)
        self._states.pop(one_id, None)
        record = self._append_erase(one_id, subject=subject, jurisdiction=jurisdiction, now=now)
        if self._keys is not None:
            people = sorted({one_id, *lineage})
            self._keys.destroy(people)
            for person in people:
                self._key_cache.pop(person, None)
        return record

    def _append_erase(
        self, one_id: int, *, subject: str, jurisdiction: str, now: datetime
    ) -> ConsentRecord:
        return self.append(
            one_id=one_id,
            subject=subject,
            purposes={},
            jurisdiction=jurisdiction,
            method="erasure",
            given_at=now,
            received_at=now,
            legal_basis="erasure",
            action="erase",
        )

    # -- checkpoints -----------------------------------------------------------
    def due(self, now: datetime) -> bool:
        if self._signer is None or self._seq == self._sealed_seq:
            return False
        if self._seq - self._sealed_seq >= self._every:
            return True
        return self._sealed_at is None or (now - self._sealed_at).total_seconds() >= self._seconds

    def checkpoint(self, now: datetime) -> Checkpoint | None:
        if self._signer is None:
            return None
        # Another process may have sealed this head already.
        self._read_sealed()
        if self._seq <= self._sealed_seq:
            return None
        signature = self._signer.sign(checkpoint_message(self._seq, self._hash))
        public = self._signer.public_key().public_bytes_raw()
        self._store.add_checkpoint(self._seq, self._hash, signature, public, now.isoformat())
        self._sealed_seq, self._sealed_at = self._seq, now
        return Checkpoint(self._seq, self._hash, now.isoformat())


def decode(body: bytes) -> ConsentRecord:
    """A stored record body back to the record (raises msgspec.DecodeError)."""
    return _decoder.decode(body)


def _blob(value: object) -> bytes | None:
    """Column values as bytes: an edit through SQL can turn a BLOB into TEXT."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return None


def verify(
    reader: LedgerReader,
    public_key: Ed25519PublicKey | None = None,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyResult:
    """Walk the chain and the checkpoints. With ``public_key`` the checkpoints must
    verify under it (an auditor's copy); without, under the key stored beside them.

    Cutting records off the end together with their checkpoints leaves a shorter
    ledger that is internally consistent; ``anchor`` (a checkpoint's seq and hash
    the auditor kept from an earlier verification) turns that into a failure.
    ``erased`` in the result counts records whose subject was crypto-shredded.
    """
    checkpoints = {r[0]: r[1:] for r in reader.checkpoint_rows()}
    prev = GENESIS
    expected = 1
    last: Checkpoint | None = None
    count = 0
    sealed: dict[int, int] = {}  # one_id -> records with a sealed subject

    def bad(problem: str, seq: int) -> VerifyResult:
        return VerifyResult(False, count, last, 0, problem, seq)

    for seq, raw_body, raw_hash in reader.chain_rows():
        count += 1
        if seq != expected:
            return bad(f"record {expected} is missing (next is {seq})", expected)
        body, stored = _blob(raw_body), _blob(raw_hash)
        if body is None or stored is None:
            return bad(f"record {seq} is not stored as bytes", seq)
        digest = chain(prev, body)
        record, problem = _check_record(seq, body, digest, stored)
        if record is not None and shred.is_sealed(record.subject):
            sealed[record.one_id] = sealed.get(record.one_id, 0) + 1
        if problem is None and seq in checkpoints:
            problem = _check_checkpoint(seq, digest, checkpoints[seq], public_key)
            if problem is None:
                last = Checkpoint(seq, digest, checkpoints[seq][3])
        if problem is not None:
            return bad(problem, seq)
        prev = digest
        expected += 1
    if anchor is not None:
        seq, digest = anchor
        stored_hash = reader.hash_at(seq)
        if stored_hash is None:
            return bad(f"anchored record {seq} is gone (truncated)", seq)
        if _blob(stored_hash) != digest:
            return bad(f"record {seq} differs from the anchor", seq)
    orphan = [s for s in checkpoints if s >= expected]
    if orphan:
        return bad(f"checkpoint at {min(orphan)} seals records that are gone", min(orphan))
    held = reader.key_holders() if sealed else set()
    erased = sum(n for one_id, n in sealed.items() if one_id not in held)
    return VerifyResult(True, count, last, count - (last.seq if last else 0), erased=erased)


def _check_record(
    seq: int, body: bytes, digest: bytes, stored: bytes
) -> tuple[ConsentRecord | None, str | None]:
    if digest != stored:
        return None, f"record {seq} was modified (hash mismatch)"
    try:
        record = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None, f"record {seq} does not decode"
    if record.seq != seq:
        return None, f"record {seq} holds the body of record {record.seq}"
    if _encoder.encode(record) != body:
        return None, f"record {seq} is not in canonical form"
    return record, None


def _check_checkpoint(
    seq: int,
    digest: bytes,
    row: tuple[object, object, object, str],
    public_key: Ed25519PublicKey | None,
) -> str | None:
    cp_hash, signature, stored_key = (_blob(x) for x in row[:3])
    if cp_hash != digest:
        return f"checkpoint at {seq} does not match the chain"
    try:
        key = public_key or Ed25519PublicKey.from_public_bytes(stored_key or b"")
        key.verify(signature or b"", checkpoint_message(seq, digest))
    except (InvalidSignature, ValueError):
        return f"checkpoint at {seq} is not signed by the expected key"
    return None


def opened(record: ConsentRecord, keys: shred.SubjectKeys | None) -> ConsentRecord:
    """The record with its subject and signal unsealed for display
    (:data:`consent.shred.ERASED` where the person was erased)."""
    if not shred.is_sealed(record.subject) and not shred.is_sealed(record.signal):
        return record
    key = keys.get(record.one_id) if keys is not None else None
    fields: dict[str, object] = {}
    for name in ("subject", "signal"):
        value = getattr(record, name)
        if shred.is_sealed(value):
            fields[name] = shred.unseal(key, value, seq=record.seq, one_id=record.one_id, name=name)
    return msgspec.structs.replace(record, **fields)
