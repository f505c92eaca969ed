"""Queries over the consent ledger and identity history for auditors.

Every function reads through a ``storage.ports.AuditStore``; errors a user can
fix are ``CollectorError`` with a message that says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.errors import CollectorError
from collector.storage.ports import AuditStore, ErasureEntry
from consent.ledger import ConsentRecord, VerifyResult
from identity.graph import Conflict, MergeRecord


def parse_anchor(text: str) -> tuple[int, bytes]:
    """``SEQ:HEX`` as printed by an earlier verify -> (seq, 32-byte hash)."""
    seq_text, _, hex_hash = text.partition(":")
    try:
        return int(seq_text), bytes.fromhex(hex_hash)
    except ValueError:
        raise CollectorError("--anchor must be SEQ:HEX as printed by an earlier verify") from None


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (``consentry audit pubkey``'s output)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise CollectorError("--pubkey must be an Ed25519 public key in PEM")
    return key


def verify(
    store: AuditStore,
    *,
    public_key: Ed25519PublicKey | None = None,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyResult:
    """Walk the chain and checkpoints (see ``consent.ledger.verify``)."""
    return store.verify(public_key, anchor=anchor)


def subject_one_id(store: AuditStore, subject: str) -> int:
    """A subject given as a OneID (digits) or an internal pseudonym -> OneID;
    -1 (matches nothing) for a pseudonym that is not linked."""
    if subject.isdigit():
        return int(subject)
    linked = store.one_id_of(subject)
    return -1 if linked is None else linked


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def records(
    store: AuditStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    subject: str | None = None,
) -> list[ConsentRecord]:
    """Ledger records received in [since, until] (naive times are UTC), of one
    subject if given (see ``subject_one_id``), in seq order."""
    one_id = subject_one_id(store, subject) if subject else None
    return list(store.records(since=_aware(since), until=_aware(until), one_id=one_id))


@dataclass(frozen=True, slots=True)
class History:
    """A person's identity and erasure history as an auditor reads it."""

    one_id: int
    merges: list[MergeRecord]
    conflicts: list[Conflict]
    erasures: list[ErasureEntry]


def history(store: AuditStore, subject: str) -> History:
    """Merges, refused links (conflicts) and erasures of one subject."""
    one_id = subject_one_id(store, subject)
    return History(
        one_id=one_id,
        merges=store.merges(one_id),
        conflicts=store.conflicts(one_id),
        erasures=store.erasures(one_id),
    )
