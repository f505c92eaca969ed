"""Facts about the person an event carries: where they are and when the event's
consent signal held (used to pick the law and to order signals by their own time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from consent import tcf
from consent.errors import ConsentSignalError
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


class SignalClock:
    """When an event's consent signal held, in epoch seconds: the CMP's own time
    where the signal carries one (a TCF string's ``LastUpdated``, TCF v2.2
    §"The core string"), else the event's ``originalTimestamp``/``timestamp``;
    never later than the event's arrival, so a client clock ahead cannot outrank
    later records. TCF times are memoized per string (bounded)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._tcf: dict[str, float | None] = {}
        self._max = max_entries

    def __call__(self, msg: Message, received_at: datetime, context: Mapping[str, Any]) -> float:
        arrival = received_at.timestamp()
        consent = context.get("consent")
        tc = consent.get("tcString") if isinstance(consent, dict) else None
        if isinstance(tc, str):
            cmp_time = self._tcf_time(tc)
            if cmp_time is not None:
                return min(cmp_time, arrival)
        at = msg.originalTimestamp or msg.timestamp
        if at is None:
            return arrival
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return min(at.timestamp(), arrival)

    def _tcf_time(self, tc: str) -> float | None:
        if tc in self._tcf:
            return self._tcf[tc]
        try:
            when: float | None = tcf.decode(tc).last_updated.timestamp()
        except ConsentSignalError:
            when = None  # unreadable: the signals step already warned; the event's time
        if len(self._tcf) >= self._max:
            self._tcf.clear()
        self._tcf[tc] = when
        return when


def _country(context: Mapping[str, Any]) -> str | None:
    location = context.get("location")
    if isinstance(location, dict):
        country = location.get("country")
        if isinstance(country, str) and len(country) == 2 and country.isalpha():
            return country.upper()
    return None
