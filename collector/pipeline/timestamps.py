"""Event times, corrected for device clock skew as Segment does (pure).

Source: Segment, "Spec: Common Fields", section "Timestamps". A device's clock
may be hours off; the device stamps the event (``timestamp``, or
``originalTimestamp``) and the moment it sent the request (``sentAt``, on the
message or on its batch) with the same wrong clock, so the difference between
them is right, and the server's clock gives the rest:

    timestamp = receivedAt - (sentAt - originalTimestamp)

- the device's own value is kept as ``originalTimestamp``;
- without ``sentAt`` the device's value is used as it is (a historical import);
- without any device value, ``timestamp = receivedAt``;
- every time leaves as UTC ISO 8601 with milliseconds and ``Z``
  (``2024-05-01T12:00:00.250Z``).

Accepted inputs (``parse_time``): ISO 8601 / RFC 3339 strings (a value without
a zone is read as UTC), and numbers as Unix epoch time: milliseconds when the
magnitude is at least 10^11 (JavaScript's ``Date.now()``), seconds otherwise.
Anything else (``"Invalid Date"``, ``""``, ``"2024-02-30"``) raises
``UnreadableTime``; the event is kept with ``timestamp = receivedAt`` and the
caller reports a warning with the field's JSON path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_MS_FROM = 1e11  # epoch numbers at or above this are milliseconds (1973 in ms, 5138 in s)


class UnreadableTime(ValueError):
    """A time value that is neither ISO 8601 nor an epoch number; the message
    says what is accepted and never repeats the value."""


@dataclass(frozen=True, slots=True)
class Times:
    """An event's four times, all aware and in UTC."""

    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime


def parse_time(value: object) -> datetime | None:
    """A JSON time value as an aware UTC datetime; None for null.

    Raises UnreadableTime for anything else than an ISO 8601 string, an epoch
    number (see the module docstring) or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, bool):
        raise UnreadableTime("a time must be an ISO 8601 string or epoch milliseconds, not a bool")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise UnreadableTime("a time must be a finite epoch number")
        seconds = value / 1000 if abs(value) >= _MS_FROM else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise UnreadableTime("epoch time out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise UnreadableTime("a time must be an ISO 8601 string; got an empty string")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise UnreadableTime(
                "not an ISO 8601 date-time (e.g. 2024-05-01T12:00:00Z) or a valid calendar date"
            ) from None
        return as_utc(parsed)
    raise UnreadableTime(
        f"a time must be an ISO 8601 string or epoch milliseconds, not {type(value).__name__}"
    )


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a value without a zone is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def segment_times(
    *,
    timestamp: datetime | None,
    original_timestamp: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
) -> Times:
    """Segment's times for one event (module docstring). The device's value is
    ``timestamp`` when given, else ``originalTimestamp``; ``sent_at`` is the
    message's own ``sentAt``, else its batch's."""
    received = as_utc(received_at)
    device = timestamp if timestamp is not None else original_timestamp
    device = as_utc(device) if device is not None else None
    sent = as_utc(sent_at) if sent_at is not None else None
    if device is None:
        corrected = received
    elif sent is None:
        corrected = device
    else:
        try:
            corrected = received - (sent - device)
        except OverflowError:
            corrected = received
    return Times(corrected, device, sent, received)


def iso_z(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: ``2024-05-01T12:00:00.250Z``."""
    if value.tzinfo is not UTC:
        value = as_utc(value)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # drops "+00:00"
