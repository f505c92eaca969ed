"""Rate limits for the public endpoints, per client address and per source.

Backed by the ``limits`` library (moving-window strategy, in-memory storage):
each worker process counts on its own, so with N workers a client may reach
N times the configured rate. An empty rate turns that limit off.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class RateLimiter:
    def __init__(self, per_ip: str, per_source: str) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_ip: RateLimitItem | None = parse(per_ip) if per_ip else None
        self._per_source: RateLimitItem | None = parse(per_source) if per_source else None

    def hit(self, source: str, address: str | None) -> int | None:
        """Count one request; None when allowed, else the seconds to wait (>= 1)."""
        checks = []
        if self._per_source is not None:
            checks.append((self._per_source, ("source", source)))
        if self._per_ip is not None and address:
            checks.append((self._per_ip, ("ip", address)))
        for item, key in checks:
            if not self._limiter.hit(item, *key):
                reset, _remaining = self._limiter.get_window_stats(item, *key)
                return max(1, math.ceil(reset - time.time()))
        return None
