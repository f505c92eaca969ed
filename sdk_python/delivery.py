"""Delivering one batch: what an answer means, and isolating a poison message.

Shared by ``Client`` (threads) and ``AsyncClient`` (asyncio): the logic is a
generator, ``isolate``, that yields the groups of messages to send and receives
each group's ``Attempt``; the client does the I/O. Answers, by HTTP status:

- 2xx: delivered; messages the collector quarantined (its 200 body lists them
  as ``rejected: [{index, reason, path}]``) are drops with reason
  ``"quarantined: <reason> at <path>"``;
- 429, network errors: the collector is unavailable; the whole rest stays
  pending (spooled, or dropped as ``delivery_failed`` without a spool);
- 5xx: retried, then the group is split in halves (depth first, call order) to
  isolate a message the collector cannot take. A single message that keeps
  getting 5xx while a neighbour of the same batch is accepted is a poison
  message: dropped with reason ``"poison: HTTP <status>"``. When nothing is
  accepted after ``2·log2(n) + 2`` failures it is an outage: all pending;
- 400, 413, 422: the group is split the same way; a single message refused is
  dropped (``delivery_failed``); 401, 403, 404 and other 4xx refuse the whole
  group (``delivery_failed``): never retried, never blocking the spool.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx
import msgspec

T = TypeVar("T")
Kind = Literal["delivered", "server_error", "unavailable", "refused"]
_SPLIT_ON_REFUSAL = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Attempt:
    """The final answer for one group (after the client's own retries).
    ``rejected``: ``(index in the group, reason, JSON path)`` of quarantined
    messages in a delivered group."""

    kind: Kind
    status: int | None = None
    error: str = ""
    rejected: tuple[tuple[int, str, str], ...] = ()


@dataclass(slots=True)
class Plan(Generic[T]):
    """Where each message of a batch ended: delivered, dropped (with a reason),
    or pending (keep it and try again later)."""

    delivered: list[T] = field(default_factory=list)
    dropped: list[tuple[T, str]] = field(default_factory=list)
    pending: list[T] = field(default_factory=list)
    error: str = ""


def retry_delay(
    attempt: int, retry_after: str | None, rng: Callable[[], float] = random.random
) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``Retry-After`` in
    seconds when given (capped at 300), else exponential backoff from 0.1 s,
    capped at 30 s, with "equal jitter" (half fixed, half random)."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), 300.0)
    backoff = min(30.0, 0.1 * 2**attempt)
    return backoff / 2 + rng() * backoff / 2


def classify(status: int) -> Kind:
    if status < 300:
        return "delivered"
    if status == 429:
        return "unavailable"
    if status >= 500:
        return "server_error"
    return "refused"


def rejections(body: Any) -> tuple[tuple[int, str, str], ...]:
    """The collector's ``rejected`` list from a decoded 200 body (never raises)."""
    if not isinstance(body, dict) or not isinstance(body.get("rejected"), list):
        return ()
    out = []
    for item in body["rejected"]:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            out.append((item["index"], str(item.get("reason", "")), str(item.get("path", ""))))
    return tuple(out)


def answer(response: httpx.Response) -> Attempt:
    """The ``Attempt`` an HTTP answer to ``POST /v1/batch`` stands for."""
    kind = classify(response.status_code)
    if kind != "delivered":
        return Attempt(
            kind,
            status=response.status_code,
            error=f"collector answered HTTP {response.status_code}: {response.text[:300]}",
        )
    body: Any = None
    with contextlib.suppress(msgspec.DecodeError):
        body = msgspec.json.decode(response.content)
    return Attempt(kind, status=response.status_code, rejected=rejections(body))


def isolate(batch: list[T]) -> Generator[list[T], Attempt, Plan[T]]:
    """Send ``batch``, splitting groups that fail to isolate bad messages.

    Yields each group to send; the caller sends it back the group's ``Attempt``.
    Returns the ``Plan``. Every message of ``batch`` ends in exactly one of the
    plan's lists.
    """
    plan: Plan[T] = Plan()
    budget = 2 * math.ceil(math.log2(max(len(batch), 2))) + 2
    failures = 0
    ok_seen = False
    todo: list[list[T]] = [batch]
    deferred: list[tuple[list[T], Attempt]] = []
    while todo:
        group = todo.pop(0)
        attempt = yield group
        if attempt.kind == "delivered":
            ok_seen = True
            _delivered(plan, group, attempt)
            continue
        plan.error = attempt.error
        if attempt.kind == "unavailable" or (not ok_seen and failures >= budget):
            plan.pending.extend(group)
            for rest in todo:
                plan.pending.extend(rest)
            todo.clear()
            break
        failures += 1
        splittable = attempt.kind == "server_error" or attempt.status in _SPLIT_ON_REFUSAL
        if len(group) > 1 and splittable:
            half = len(group) // 2
            todo[0:0] = [group[:half], group[half:]]
        elif attempt.kind == "refused":
            plan.dropped.extend((m, "delivery_failed") for m in group)
        elif ok_seen:
            plan.dropped.append((group[0], f"poison: HTTP {attempt.status}"))
        else:
            deferred.append((group, attempt))
    for group, first in deferred:
        if not ok_seen:
            plan.pending.extend(group)
            continue
        # The collector took a neighbour since: one more try alone decides.
        attempt = yield group
        if attempt.kind == "delivered":
            _delivered(plan, group, attempt)
        elif attempt.kind == "unavailable":
            plan.pending.extend(group)
        else:
            plan.dropped.append((group[0], f"poison: HTTP {attempt.status or first.status}"))
    return plan


def _delivered(plan: Plan[T], group: list[T], attempt: Attempt) -> None:
    bad = {i: f"quarantined: {reason} at {path}" for i, reason, path in attempt.rejected}
    for i, message in enumerate(group):
        if i in bad:
            plan.dropped.append((message, bad[i]))
        else:
            plan.delivered.append(message)
