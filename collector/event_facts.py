"""Facts about the person an event carries: where they are and when the event's
consent signal held (used to pick the law and to order signals by their own time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sdk_python.messages import Message


def locate(region: str | None, context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(country, ISO 3166-2 subdivision) from ``context.consent.region`` (``FR``,
    ``US-CA``) or ``context.location.country`` and, in the US, ``location.region``
    as a two-letter state code (``CA``) or ISO 3166-2 (``US-CA``)."""
    if region:
        head, dash, _ = region.partition("-")
        if dash and len(head) == 2:
            return head, region
        return region, None
    country = _country(context)
    if country != "US":
        return country, None
    location = context.get("location")
    state = location.get("region") if isinstance(location, dict) else None
    if isinstance(state, str):
        code = state.strip().upper()
        if len(code) == 2 and code.isalpha():
            return country, f"US-{code}"
        if len(code) == 5 and code.startswith("US-") and code[3:].isalpha():
            return country, code
    return country, None


def signal_time(msg: Message, received_at: datetime) -> float:
    """When the event says its consent signal held: its own timestamp, never later
    than its arrival (a client clock ahead must not outrank later records)."""
    at = msg.originalTimestamp or msg.timestamp
    if at is None:
        return received_at.timestamp()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return min(at.timestamp(), received_at.timestamp())


def _country(context: Mapping[str, Any]) -> str | None:
    location = context.get("location")
    if isinstance(location, dict):
        country = location.get("country")
        if isinstance(country, str) and len(country) == 2 and country.isalpha():
            return country.upper()
    return None
