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
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consent import shred
from consent.errors import LedgerError
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
    source: str | None = None
    # Per sensitive key, the purposes the consent was given for (GDPR Art. 9(2)(a)).
    scopes: dict[str, tuple[str, ...]] = {}
    # Merge records: per key, what each side contributed.
    contributions: dict[str, tuple[MergeSide, ...]] = {}


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(ConsentRecord)

SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_ledger (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    public_key BLOB NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_subject_keys (
    one_id INTEGER PRIMARY KEY,
    key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_state (
    one_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    granted INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    guardian INTEGER NOT NULL,
    at TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT '',
    notice TEXT,
    PRIMARY KEY (one_id, key)
) WITHOUT ROWID;
"""

# consent_state columns added after the first release (state is derived, so old
# rows simply have no scope or notice version).
_STATE_COLUMNS = (("scope", "TEXT NOT NULL DEFAULT ''"), ("notice", "TEXT"))


_PUT_STATE = (
    "INSERT OR REPLACE INTO consent_state"
    " (one_id, key, granted, record_id, guardian, at, scope, notice)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# The head's seq, for a caller that reads several heads in one statement.
HEAD_SEQ_SQL = "SELECT coalesce(max(seq), 0) FROM consent_ledger"


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
    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        signer: Ed25519PrivateKey | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 10.0,
        state_cache_size: int = 100_000,
        subject_keys: shred.SubjectKeys | None = None,
    ) -> None:
        """``subject_keys``: seal each record's subject and signal under a
        per-person key (see :mod:`consent.shred`); None stores them plain."""
        self._conn = conn
        self._keys = subject_keys
        self._key_cache: OrderedDict[int, AESGCM] = OrderedDict()
        self._signer = signer
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        have = {r[1] for r in conn.execute("PRAGMA table_info(consent_state)")}
        for column, decl in _STATE_COLUMNS:
            if column not in have:
                conn.execute(f"ALTER TABLE consent_state ADD COLUMN {column} {decl}")
        row = conn.execute(
            "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._seq: int = row[0] if row else 0
        self._hash: bytes = row[1] if row else GENESIS
        cp = conn.execute(
            "SELECT seq, signed_at FROM consent_checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._states: OrderedDict[int, ConsentState] = OrderedDict()
        self._state_cache_size = state_cache_size
        self._sealed_seq = cp[0] if cp else 0
        self._sealed_at = datetime.fromisoformat(cp[1]) if cp else None

    @property
    def head(self) -> tuple[int, bytes]:
        return self._seq, self._hash

    def reload_head(self) -> None:
        """Re-read the head after a rolled-back transaction (and forget cached
        state and subject keys: a key created in it was rolled back too)."""
        self._states.clear()
        self._key_cache.clear()
        row = self._conn.execute(
            "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        self._seq, self._hash = (row[0], row[1]) if row else (0, GENESIS)

    def sync(self, seq: int) -> int:
        """Catch up with records other processes appended (call inside the write
        transaction, so the head cannot move while we use it). ``seq``: the head's
        seq, read by the caller (HEAD_SEQ_SQL) together with other heads. Cached
        states of the people those records touch are dropped; returns how many
        records."""
        if seq == self._seq:
            return 0
        row = self._conn.execute(
            "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, digest = (row[0], row[1]) if row else (0, GENESIS)
        if seq == self._seq and digest == self._hash:
            return 0
        if seq < self._seq:
            self.reload_head()
        else:
            for (body,) in self._conn.execute(
                "SELECT body FROM consent_ledger WHERE seq > ? ORDER BY seq", (self._seq,)
            ):
                record = _decoder.decode(body)
                self._states.pop(record.one_id, None)
                for absorbed in record.merged_from:
                    self._states.pop(absorbed, None)
        moved = seq - self._seq
        self._seq, self._hash = seq, digest
        self._read_sealed()
        return moved

    def _read_sealed(self) -> None:
        cp = self._conn.execute(
            "SELECT seq, signed_at FROM consent_checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if cp is not None and cp[0] > self._sealed_seq:
            self._sealed_seq, self._sealed_at = cp[0], datetime.fromisoformat(cp[1])

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
        state = read_state(self._conn, one_id)
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
        self._conn.execute(
            "INSERT INTO consent_ledger (seq, body, hash) VALUES (?, ?, ?)",
            (record.seq, body, digest),
        )
        guardian = int(record.consenter == "guardian")
        at = given_at.isoformat()
        scopes = record.scopes
        self._conn.executemany(
            _PUT_STATE,
            [
                (
                    one_id,
                    k,
                    int(v),
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
        self._conn.executemany(
            _PUT_STATE,
            [
                (
                    one_id,
                    k,
                    int(e.granted),
                    e.record_id,
                    int(e.guardian),
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
            self._conn.execute("DELETE FROM consent_state WHERE one_id = ?", (a,))
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
        self._conn.execute("DELETE FROM consent_state WHERE one_id = ?", (one_id,))
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
        self._conn.execute(
            "INSERT INTO consent_checkpoints (seq, hash, signature, public_key, signed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (self._seq, self._hash, signature, public, now.isoformat()),
        )
        self._sealed_seq, self._sealed_at = self._seq, now
        return Checkpoint(self._seq, self._hash, now.isoformat())


def read_records(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    one_id: int | None = None,
    seqs: Sequence[int] | None = None,
) -> Iterator[ConsentRecord]:
    """Ledger records from any connection (an auditor's read-only copy)."""
    if seqs is not None:
        for seq in seqs:
            row = conn.execute("SELECT body FROM consent_ledger WHERE seq = ?", (seq,)).fetchone()
            if row:
                yield _decoder.decode(row[0])
        return
    for (body,) in conn.execute("SELECT body FROM consent_ledger ORDER BY seq"):
        record = _decoder.decode(body)
        if since and record.received_at < since:
            continue
        if until and record.received_at > until:
            continue
        if one_id is not None and record.one_id != one_id:
            continue
        yield record


def _blob(value: object) -> bytes | None:
    """Column values as bytes: an edit through SQL can turn a BLOB into TEXT."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return None


def verify(
    conn: sqlite3.Connection,
    public_key: Ed25519PublicKey | None = None,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyResult:
    """Walk the chain and the checkpoints. With ``public_key`` the checkpoints must
    verify under it (an auditor's copy); without, under the key stored beside them.

    Cutting records off the end together with their checkpoints leaves a shorter
    ledger that is internally consistent; ``anchor`` (a checkpoint's seq and hash
    the auditor kept from an earlier verification) turns that into a failure.
    """
    checkpoints = {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in conn.execute(
            "SELECT seq, hash, signature, public_key, signed_at FROM consent_checkpoints"
        )
    }
    prev = GENESIS
    expected = 1
    last: Checkpoint | None = None
    count = 0
    sealed: dict[int, int] = {}  # one_id -> records with a sealed subject
    for seq, body, stored in conn.execute(
        "SELECT seq, body, hash FROM consent_ledger ORDER BY seq"
    ):
        count += 1
        if seq != expected:
            return VerifyResult(
                False, count, last, 0, f"record {expected} is missing (next is {seq})", expected
            )
        body, stored = _blob(body), _blob(stored)
        if body is None or stored is None:
            return VerifyResult(False, count, last, 0, f"record {seq} is not stored as bytes", seq)
        digest = chain(prev, body)
        if digest != stored:
            return VerifyResult(
                False, count, last, 0, f"record {seq} was modified (hash mismatch)", seq
            )
        try:
            record = _decoder.decode(body)
        except (msgspec.DecodeError, UnicodeDecodeError):
            return VerifyResult(False, count, last, 0, f"record {seq} does not decode", seq)
        if record.seq != seq:
            return VerifyResult(
                False, count, last, 0, f"record {seq} holds the body of record {record.seq}", seq
            )
        if _encoder.encode(record) != body:
            return VerifyResult(
                False, count, last, 0, f"record {seq} is not in canonical form", seq
            )
        if shred.is_sealed(record.subject):
            sealed[record.one_id] = sealed.get(record.one_id, 0) + 1
        cp = checkpoints.get(seq)
        if cp is not None:
            cp_hash, signature, stored_key = (_blob(x) for x in cp[:3])
            signed_at = cp[3]
            if cp_hash != digest:
                return VerifyResult(
                    False, count, last, 0, f"checkpoint at {seq} does not match the chain", seq
                )
            try:
                key = public_key or Ed25519PublicKey.from_public_bytes(stored_key or b"")
                key.verify(signature or b"", checkpoint_message(seq, digest))
            except (InvalidSignature, ValueError):
                return VerifyResult(
                    False,
                    count,
                    last,
                    0,
                    f"checkpoint at {seq} is not signed by the expected key",
                    seq,
                )
            last = Checkpoint(seq, digest, signed_at)
        prev = digest
        expected += 1
    if anchor is not None:
        seq, digest = anchor
        row = conn.execute("SELECT hash FROM consent_ledger WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            return VerifyResult(
                False, count, last, 0, f"anchored record {seq} is gone (truncated)", seq
            )
        if bytes(row[0]) != digest:
            return VerifyResult(False, count, last, 0, f"record {seq} differs from the anchor", seq)
    orphan = [s for s in checkpoints if s >= expected]
    if orphan:
        return VerifyResult(
            False,
            count,
            last,
            0,
            f"checkpoint at {min(orphan)} seals records that are gone",
            min(orphan),
        )
    return VerifyResult(
        True, count, last, count - (last.seq if last else 0), erased=_erased(conn, sealed)
    )


def _erased(conn: sqlite3.Connection, sealed: dict[int, int]) -> int:
    """Records whose subject is sealed under a key that no longer exists."""
    if not sealed:
        return 0
    held = {r[0] for r in conn.execute("SELECT one_id FROM consent_subject_keys")}
    return sum(n for one_id, n in sealed.items() if one_id not in held)


class SqliteSubjectKeys:
    """Subject keys in the ledger's database (``consent_subject_keys``), written
    inside the caller's transaction. Erasure deletes the row; with
    ``PRAGMA secure_delete`` and a truncated WAL no copy of the key remains."""

    def __init__(self, conn: sqlite3.Connection, *, readonly: bool = False) -> None:
        self._conn = conn
        if not readonly:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS consent_subject_keys"
                " (one_id INTEGER PRIMARY KEY, key BLOB NOT NULL)"
            )

    def get(self, one_id: int) -> bytes | None:
        try:
            row = self._conn.execute(
                "SELECT key FROM consent_subject_keys WHERE one_id = ?", (one_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # an older database: nothing was sealed
            return None
        return None if row is None else bytes(row[0])

    def create(self, one_id: int, key: bytes) -> None:
        self._conn.execute(
            "INSERT INTO consent_subject_keys (one_id, key) VALUES (?, ?)", (one_id, key)
        )

    def destroy(self, one_ids: list[int]) -> int:
        return sum(
            self._conn.execute(
                "DELETE FROM consent_subject_keys WHERE one_id = ?", (one_id,)
            ).rowcount
            for one_id in one_ids
        )


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


def read_state(conn: sqlite3.Connection, one_id: int) -> ConsentState:
    """The effective state from any connection (the forwarder's read-only one)."""
    rows = conn.execute(
        "SELECT key, granted, record_id, guardian, scope, notice, at FROM consent_state"
        " WHERE one_id = ?",
        (one_id,),
    )
    return ConsentState(
        {
            r[0]: PurposeState(
                bool(r[1]),
                r[2],
                bool(r[3]),
                frozenset(r[4].split(",")) if r[4] else None,
                r[5],
                _epoch(r[6]),
            )
            for r in rows
        }
    )


def _epoch(at: str) -> float | None:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
