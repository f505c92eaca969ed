"""Keyed pseudonyms (pure).

A pseudonym is ``ps1.<kid>.<base64url(HMAC-SHA256(K_domain, kind || 0x00 || value))>``
where ``K_domain = HKDF-SHA256(secret[kid], info="consentry/pseudonym/v1/" + domain)``.

- ``ps1`` names the scheme, so a later change is never ambiguous (the lesson
  fides learned from salted SHA-256);
- ``kid`` names the key version, so rotation can look up under old and new;
- the domain separates recipients: two destinations receiving the same person
  get unrelated values and cannot join their data;
- the kind is inside the MAC, so a user id equal to an email never collides.

Plain SHA-256 of normalized email/phone, which some ad platforms require, lives
in :mod:`identity.egress` and is never a pseudonym.
"""

from __future__ import annotations

import base64
import hmac
from collections import OrderedDict
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from identity.normalize import DEFAULT_OPTIONS, NormalizeOptions, normalize

SCHEME = "ps1"
INTERNAL = "internal"
_SALT = b"consentry-pseudonym-v1"


class KeySource(Protocol):
    """What a pseudonymizer needs from a keyring: the active key and lookups by kid."""

    @property
    def active_kid(self) -> str: ...

    def secret(self, kid: str) -> bytes: ...

    def lookup_kids(self) -> tuple[str, ...]: ...


@runtime_checkable
class DomainKeys(Protocol):
    """A keyring that pins destination domains to keys of their own (issue 14 §3)."""

    def domain_kid(self, domain: str) -> str: ...

    def domain_secret(self, kid: str, domain: str) -> bytes | None: ...

    def domain_kids(self, domain: str) -> tuple[str, ...]: ...


def derive_domain_key(secret: bytes, domain: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=_SALT,
        info=f"consentry/pseudonym/v1/{domain}".encode(),
    ).derive(secret)


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104 over SHA-256; test vectors in RFC 4231 §4): the
    one MAC under every pseudonym. 32 bytes."""
    return hmac.digest(key, message, "sha256")


def mac(domain_key: bytes, kind: str, normalized: str) -> bytes:
    """The pseudonym digest: ``hmac_sha256(domain_key, kind || 0x00 || value)``
    (both UTF-8); the kind inside the MAC keeps kinds apart."""
    return hmac_sha256(domain_key, kind.encode() + b"\x00" + normalized.encode())


def format_pseudonym(kid: str, digest: bytes) -> str:
    return f"{SCHEME}.{kid}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def parse_pseudonym(value: str) -> tuple[str, str, bytes] | None:
    """Split a pseudonym into (scheme, kid, digest), or None if it is not one."""
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != SCHEME or not parts[1] or len(parts[2]) != 43:
        return None
    try:
        digest = base64.urlsafe_b64decode(parts[2] + "=")
    except ValueError:
        return None
    return parts[0], parts[1], digest


def looks_like_pseudonym(value: str) -> bool:
    return parse_pseudonym(value) is not None


class Pseudonymizer:
    """Derives pseudonyms with the keyring's keys; caches domain keys and hot values.

    The value cache lives only in memory and is bounded: it trades a little RAM
    for skipping HMAC on returning identifiers, the largest CPU item of ingest.
    """

    def __init__(
        self,
        keyring: KeySource,
        *,
        options: NormalizeOptions = DEFAULT_OPTIONS,
        cache_size: int = 100_000,
    ) -> None:
        self._keyring = keyring
        self._pins = keyring if isinstance(keyring, DomainKeys) else None
        self._options = options
        self._domain_keys: dict[tuple[str, str], bytes] = {}
        self._cache: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
        self._cache_size = cache_size

    @property
    def options(self) -> NormalizeOptions:
        return self._options

    @property
    def cached(self) -> int:
        """Pseudonyms held in the in-process cache."""
        return len(self._cache)

    def lookup_kids(self) -> tuple[str, ...]:
        return self._keyring.lookup_kids()

    def domain_key(self, kid: str, domain: str) -> bytes:
        key = self._domain_keys.get((kid, domain))
        if key is None:
            pinned = self._pins.domain_secret(kid, domain) if self._pins is not None else None
            key = pinned or derive_domain_key(self._keyring.secret(kid), domain)
            self._domain_keys[(kid, domain)] = key
        return key

    def domain_kid(self, domain: str) -> str:
        """The key version this domain's pseudonyms are made with."""
        if domain == INTERNAL or self._pins is None:
            return self._keyring.active_kid
        return self._pins.domain_kid(domain)

    def domain_kids(self, domain: str) -> tuple[str, ...]:
        """Every key version this domain may have received pseudonyms under."""
        if self._pins is None:
            return self._keyring.lookup_kids()
        return self._pins.domain_kids(domain)

    def pseudonym(
        self, kind: str, value: object, domain: str = INTERNAL, *, kid: str | None = None
    ) -> str:
        """Normalize then pseudonymize; raises InvalidIdentifier for junk."""
        return self.pseudonym_normalized(
            kind, normalize(kind, value, self._options), domain, kid=kid
        )

    def pseudonym_normalized(
        self, kind: str, normalized: str, domain: str = INTERNAL, *, kid: str | None = None
    ) -> str:
        if kid is None:
            kid = (
                self._keyring.active_kid
                if domain == INTERNAL or self._pins is None
                else self._pins.domain_kid(domain)
            )
        cache_key = (kind, normalized, domain, kid)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        result = format_pseudonym(kid, mac(self.domain_key(kid, domain), kind, normalized))
        self._cache[cache_key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result

    def all_versions(self, kind: str, normalized: str, domain: str = INTERNAL) -> list[str]:
        """The pseudonym under every key that lookups still honour, newest first."""
        return [
            self.pseudonym_normalized(kind, normalized, domain, kid=kid)
            for kid in self._keyring.lookup_kids()
        ]

    def derive_opaque(self, label: str, value: str, domain: str, *, kid: str | None = None) -> str:
        """Pseudonymize an internal value (e.g. a OneID) for a recipient's domain."""
        return self.pseudonym_normalized(label, value, domain, kid=kid)
