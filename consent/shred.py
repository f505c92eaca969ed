"""Crypto-shredding of ledger subjects (GDPR Art. 17 with Art. 7(1)).

The ledger must keep proving that consent existed after the person is erased,
yet nothing in it may still point at them. Each person (OneID) gets a random
256-bit *subject key*; the fields of their records that identify them (the
subject pseudonym and the free-text consent signal) are stored sealed under
it with AES-256-GCM. Erasure destroys the key: the records, their hash chain
and the signed checkpoints stay intact and verifiable, the sealed fields can
no longer be opened by anyone, the operator included.

A sealed field reads ``sealed:v1:<base64url(nonce || ciphertext)>``; the
associated data binds it to its record and field (``seq``, ``one_id``, field
name), so a sealed value moved to another record does not open.

Keys live behind :class:`SubjectKeys` (SQLite adapter:
``collector.storage.sqlite.subject_keys``); this module is pure.
"""

from __future__ import annotations

import base64
import secrets
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
ERASED = "<erased>"


class SubjectKeys(Protocol):
    """Per-person keys, stored with the ledger (inside its transaction)."""

    def get(self, one_id: int) -> bytes | None:
        """The person's key, or None if they have none (never sealed, or erased)."""
        ...

    def create(self, one_id: int, key: bytes) -> None:
        """Store a new key for a person who has none."""
        ...

    def destroy(self, one_ids: list[int]) -> int:
        """Forget these people's keys (erasure); returns how many were held."""
        ...


def new_key() -> bytes:
    return secrets.token_bytes(32)


def _aad(seq: int, one_id: int, name: str) -> bytes:
    return f"consentry-ledger-subject/1/{seq}/{one_id}/{name}".encode()


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(PREFIX)


def cipher(key: bytes) -> AESGCM:
    """The AEAD for a person's key: build once, seal many (appends reuse it)."""
    return AESGCM(key)


def seal(key: bytes | AESGCM, value: str, *, seq: int, one_id: int, name: str) -> str:
    """``value`` sealed under the person's key (or its :func:`cipher`), for
    field ``name`` of record ``seq``."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    nonce = secrets.token_bytes(12)
    ct = aead.encrypt(nonce, value.encode(), _aad(seq, one_id, name))
    return PREFIX + base64.urlsafe_b64encode(nonce + ct).decode().rstrip("=")


def unseal(key: bytes | None, value: str, *, seq: int, one_id: int, name: str) -> str:
    """The plain value; :data:`ERASED` when the key is gone or does not open it
    (a value that is not sealed is returned as it is)."""
    if not is_sealed(value):
        return value
    if key is None:
        return ERASED
    text = value[len(PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(key).decrypt(blob[:12], blob[12:], _aad(seq, one_id, name))
    except (InvalidTag, ValueError):
        return ERASED
    return plain.decode()
