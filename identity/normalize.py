"""Normalization of raw identifiers, per kind (pure).

Two spellings of the same person must give the same pseudonym, and junk that
client libraries emit for "no value" (``"null"``, ``"undefined"``, an all-zero
UUID) must never become an identifier, or every anonymous visitor would merge
into one person.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import phonenumbers

from identity.errors import InvalidIdentifier

MAX_BYTES = 512
BUILTIN_KINDS = frozenset(
    {"email", "phone", "user_id", "anonymous_id", "device_id", "wechat_openid", "wechat_unionid"}
)
_JUNK = frozenset(
    {"", "null", "nil", "none", "undefined", "anonymous", "0", "-1", "nan", "[object object]"}
)
_ZERO_UUID = re.compile(r"^[0-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class NormalizeOptions:
    """Switches from configuration; the defaults are the conservative choice."""

    fold_gmail: bool = False
    phone_region: str | None = None
    custom_kinds: frozenset[str] = field(default_factory=frozenset)


DEFAULT_OPTIONS = NormalizeOptions()


def is_kind(kind: str, options: NormalizeOptions = DEFAULT_OPTIONS) -> bool:
    return kind in BUILTIN_KINDS or kind in options.custom_kinds


def is_placeholder(value: object) -> bool:
    """What clients send for "no value" (None, ``"null"``, an all-zero UUID, ...):
    absent, never an identifier, and not personal data."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.lower() in _JUNK or bool(_ZERO_UUID.match(text))


def normalize(kind: str, value: object, options: NormalizeOptions = DEFAULT_OPTIONS) -> str:
    """Return the canonical form of ``value`` as an identifier of ``kind``.

    Raises InvalidIdentifier with a reason that never repeats the value.
    """
    if not is_kind(kind, options):
        raise InvalidIdentifier(f"unknown identifier kind {kind!r}; declare custom kinds in config")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidIdentifier(f"{kind} must be a string, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", str(value)).strip()
    if len(text.encode()) > MAX_BYTES:
        raise InvalidIdentifier(f"{kind} is longer than {MAX_BYTES} bytes")
    if is_placeholder(text):
        raise InvalidIdentifier(f"{kind} is a placeholder value, not an identifier")
    if kind == "email":
        return _email(text, options)
    if kind == "phone":
        return _phone(text, options)
    return text


def _email(text: str, options: NormalizeOptions) -> str:
    address = text.lower()
    if not _EMAIL.match(address):
        raise InvalidIdentifier("email is not an address of the form local-part@domain")
    local, _, domain = address.rpartition("@")
    if options.fold_gmail and domain in _GMAIL:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
        if not local:
            raise InvalidIdentifier("email has an empty local part after folding")
    return f"{local}@{domain}"


def _phone(text: str, options: NormalizeOptions) -> str:
    try:
        number = phonenumbers.parse(text, options.phone_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(
            "phone cannot be parsed; give it in E.164 (+CC...) or set identity.phone_region"
        ) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier("phone is not a possible number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def valid_kind_name(kind: str) -> bool:
    return bool(_KIND.match(kind))
