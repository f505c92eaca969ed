"""What every order-system webhook has in common (pure).

A platform module knows its headers, its signature scheme and its payload
shapes; this module holds the shared shapes and the one constant-time check.

Shapes:
- ``Delivery``: topic, delivery id (the platform's retry-stable id) and shop;
- ``Translation``: the Segment messages (plain dicts, raw identifiers still in
  them: the pipeline pseudonymizes them before anything is stored) and the
  marketing-consent evidence found in the payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    delivery_id: str | None
    shop: str | None = None


@dataclass(frozen=True, slots=True)
class MarketingConsent:
    """One piece of consent evidence from an order system, for the ``marketing``
    purpose only: ``granted`` False is a withdrawal (e.g. ``unsubscribed``)."""

    granted: bool
    method: str  # checkout_checkbox | single_opt_in | confirmed_opt_in | ...
    given_at: datetime | None
    channel: str  # email | sms
    email: str | None = None
    phone: str | None = None
    anonymous_id: str | None = None
    jurisdiction_country: str | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """A platform's request to erase a customer (Shopify's and SHOPLINE's
    mandatory ``customers/redact``): every cluster these identifiers reach."""

    email: str | None
    phone: str | None
    anonymous_id: str | None


@dataclass(frozen=True, slots=True)
class Translation:
    messages: Sequence[dict[str, Any]] = ()
    consents: Sequence[MarketingConsent] = ()
    known: bool = True  # False: a topic this platform module does not map
    erase: Erasure | None = None


class Platform(Protocol):
    """One order system: ``verify`` runs on the raw bytes before anything is parsed."""

    name: str

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool: ...

    def delivery(self, headers: Mapping[str, str]) -> Delivery: ...

    def translate(self, delivery: Delivery, payload: Any) -> Translation: ...


def hmac_sha256(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()


def matches_base64(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of ``body`` under ``secret``;
    compared in constant time over the digest bytes."""
    if not header:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, hmac_sha256(secret, body))


def matches_hex(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the hex HMAC-SHA256 of ``body`` (either case)."""
    if not header:
        return False
    try:
        given = bytes.fromhex(header.strip())
    except ValueError:
        return False
    return hmac.compare_digest(given, hmac_sha256(secret, body))
