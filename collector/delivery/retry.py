"""When to try a failed batch again: the one backoff and ``Retry-After``
implementation of the delivery side.

Full-jitter exponential backoff (delay uniform in [d/2, d], d = min(cap,
base * 2^attempts)), never sooner than the destination asked with
``Retry-After`` (RFC 9110 §10.2.3: delta-seconds or an HTTP date), but never
later than the cap (``backoff_max_seconds``) either: a receiver's
``Retry-After: 3600`` does not park rows for an hour past the operator's cap.
The forwarder applies the delay to the whole destination (issue 19 item 4).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime


def backoff(
    attempts: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after ``attempts`` failures: uniform in [d/2, d],
    d = min(cap, base * 2^attempts); ``rng`` returns [0, 1)."""
    delay = min(cap, base * (2 ** min(attempts, 30)))
    return delay / 2 + rng() * delay / 2


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (Unix seconds, default
    the wall clock); None when absent or unreadable; an HTTP date in the past is 0."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    at = time.time() if now is None else now
    return max(0.0, when.timestamp() - at)


def retry_delay(
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None,
    rng: Callable[[], float] = random.random,
) -> float:
    """The delay before the next attempt: the backoff, or the destination's
    ``Retry-After`` (seconds) when that is longer, at most ``cap``."""
    delay = backoff(attempts, base, cap, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
