"""Encryption for payloads that may hold raw identifiers (the quarantine).

AES-256-GCM under the keyring's vault key; the row id and expiry are bound as
associated data, so a ciphertext moved to another row does not decrypt.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from collector.errors import QuarantineError


class Vault:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], context)
        except (InvalidTag, ValueError) as exc:
            raise QuarantineError(
                "quarantined payload cannot be decrypted with this keyring"
            ) from exc
