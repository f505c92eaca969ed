"""Building and encoding messages, once, on the caller's thread.

Shared by ``Client`` and ``AsyncClient``. What a call's arguments become:

- identifiers (``userId``, ``anonymousId``, ``groupId``, ``previousId``): a
  number becomes its decimal string (``12345`` -> ``"12345"``, as Segment's
  ``stringify_id``), then, with a ``pseudonym_key``, a keyed pseudonym of that
  string, so ``track(12345, ...)`` and ``track("12345", ...)`` send the same id;
- ``Decimal`` values become JSON numbers (Segment sends ``float(value)``);
- naive ``datetime`` values (the ``timestamp`` argument, and property or trait
  values at the top level) are read as UTC;
- ``context.consent`` from the request (see ``sdk_python.consent``) combines
  with a caller's explicit ``context.consent``: each purpose is granted only if
  neither denies it, and ``gpc`` is true if either says so.

A message that cannot be encoded (``object()`` in its properties, say) raises
``Unencodable`` with the reason; the clients report it through ``on_drop``.
"""

from __future__ import annotations

import base64
import itertools
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from sdk_python.consent import combine_consent, current_consent
from sdk_python.messages import MAX_MESSAGE_BYTES, Message

log = logging.getLogger("consentry.sdk")
VERSION = "0.1.0"
_LIBRARY = {"name": "consentry-python", "version": VERSION}
_LIBRARY_CONTEXT: dict[str, Any] = {"library": _LIBRARY}
Build = Callable[[dict[str, Any], datetime, str], Message]


def _enc_hook(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} values cannot be sent (not JSON-encodable)")


encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")


class Unencodable(ValueError):
    """A call's message cannot be encoded as JSON; ``args[0]`` says why."""


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """A naive datetime is read as UTC (Segment guesses local time when it is
    within 5 s of now; we never guess)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class MessageIds:
    """UUID-shaped message ids from a random per-process prefix and a counter:
    unique, and a tenth of uuid4's cost on the caller's thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = str(uuid.uuid4())[:23]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):012x}"


message_ids = MessageIds()


def plain(value: Mapping[str, Any] | None) -> Any:
    """Pass dicts through (they are encoded at once); copy other mappings.
    Naive datetimes among the top-level values are read as UTC."""
    if not value:
        return None
    out = value if type(value) is dict else dict(value)
    for k, v in out.items():
        if type(v) is datetime and v.tzinfo is None:
            out = {**out, k: v.replace(tzinfo=UTC)}
    return out


def id_string(value: object) -> str | None:
    """Segment's ``stringify_id``: ``None`` stays, a number (not a bool) becomes
    its decimal string (``12345.0`` -> ``"12345"``), a string is kept."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        return str(int(value)) if value == int(value) else str(value)
    return str(value)


class SentMessage(Mapping[str, Any]):
    """What ``track`` and the other calls return beside their success flag, as
    Segment's ``(success, msg)``: the message as sent, decoded on first use (so
    a caller that ignores it pays nothing)."""

    __slots__ = ("_data", "_decoded")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._decoded: dict[str, Any] | None = None

    def _d(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = msgspec.json.decode(self._data)
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self._d()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d())

    def __len__(self) -> int:
        return len(self._d())

    def __repr__(self) -> str:
        return f"SentMessage({self._d()!r})"


class Builder:
    """Builds and encodes messages; shared by Client and AsyncClient."""

    def __init__(self, context: Mapping[str, Any] | None, pseudonymizer: Any) -> None:
        self.default_context = dict(context or {})
        self._ps = pseudonymizer

    def context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        ambient = current_consent()
        if not context and not self.default_context and not ambient:
            # Encoded right away and never mutated: one shared dict is enough.
            return _LIBRARY_CONTEXT
        ctx = {**self.default_context, **(context or {})}
        ctx.setdefault("library", _LIBRARY)
        if ambient:
            explicit = ctx.get("consent")
            ctx["consent"] = (
                combine_consent(explicit, ambient) if isinstance(explicit, Mapping) else ambient
            )
        return ctx

    def encode(
        self,
        build: Build,
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> tuple[Message, bytes | None]:
        """Build and encode once; ``None`` bytes when over the per-message limit.
        Raises ``Unencodable`` naming the value's type."""
        message = build(
            self.context(context),
            utc(timestamp) if timestamp else now(),
            id_string(message_id) or message_ids(),
        )
        try:
            data = encoder.encode(message)
        except (TypeError, ValueError, OverflowError) as exc:
            raise Unencodable(str(exc)) from None
        if len(data) > MAX_MESSAGE_BYTES:
            log.error(
                "message over %d bytes dropped: %s", MAX_MESSAGE_BYTES, type(message).__name__
            )
            return message, None
        return message, data

    def ident(self, kind: str, value: object) -> str | None:
        """Local pseudonymization: raw identifiers never leave the backend."""
        text = id_string(value)
        if text is None or self._ps is None:
            return text
        from identity.normalize import is_placeholder  # only with local pseudonymization

        if is_placeholder(text):
            return text  # "null" and the like: not personal data; the collector drops it
        try:
            return str(self._ps.pseudonym(kind, text, "sdk"))
        except Exception:
            # Cannot be pseudonymized (e.g. over 512 bytes): never send it raw.
            log.error("%s could not be pseudonymized and was left out", kind)
            return None

    def traits(self, traits: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if traits is None:
            return None
        out = dict(plain(traits) or {})
        if self._ps is not None:
            for key in ("email", "phone"):
                if isinstance(out.get(key), str):
                    try:
                        out[key] = self._ps.pseudonym(key, out[key], "sdk")
                    except Exception:
                        out.pop(key)  # cannot be pseudonymized, so it must not leave raw
        return out


def pseudonymizer(key: str | None) -> Any:
    """A one-key pseudonymizer for ``pseudonym_key`` (32 bytes, urlsafe base64),
    or None. Raises ``ValueError`` naming the expected form."""
    if key is None:
        return None
    from identity.pseudonym import Pseudonymizer

    try:
        secret = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise ValueError(
            "pseudonym_key must be urlsafe base64 of 32 random bytes"
            " (base64.urlsafe_b64encode(os.urandom(32)))"
        )

    class _OneKey:
        active_kid = "s1"

        def secret(self, kid: str) -> bytes:
            return secret

        def lookup_kids(self) -> tuple[str, ...]:
            return ("s1",)

    return Pseudonymizer(_OneKey())


def batch_body(batch: list[bytes]) -> bytes:
    """A Segment batch from messages already encoded: no second encode."""
    return b'{"batch":[' + b",".join(batch) + b'],"sentAt":"' + now().isoformat().encode() + b'"}'
