"""Per-request bounds (issue 19 item 6): write keys are public in browsers, so
one request must not buy unbounded work, storage or response.

- ``[server] max_batch_messages`` (default 2,500): a batch with more messages
  is refused whole with 413 before anything is decoded or stored; the client
  splits it (Segment's own API takes 500 KB per batch, which at a few hundred
  bytes per real message is a few thousand messages).
- ``[server] max_quarantined_per_request`` (default 100): rejected messages
  beyond this are not quarantined one row each; they are summarised in one
  quarantine row (how many, their indexes, their reasons by count) and one
  entry of the response's ``rejected`` list.
- ``[server] max_warnings_per_request`` (default 100): likewise for warnings.
So a response lists at most ``max_quarantined + max_warnings + 2`` entries.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from collector.errors import RequestError
from collector.pipeline.decode import Rejection
from sdk_python.messages import MessageWarning

_encoder = msgspec.json.Encoder()


def check_batch_size(count: int, limit: int) -> None:
    """Raise 413 (path ``$.batch``) for a batch of more than ``limit`` messages."""
    if count > limit:
        raise RequestError(
            413,
            f"batch has {count} messages; the limit is {limit} per request: split it",
            "$.batch",
        )


def _top(reasons: Counter[str]) -> str:
    return "; ".join(f"{n} x {reason[:160]}" for reason, n in reasons.most_common(3))


def summarise_rejections(rejected: list[Rejection], limit: int) -> list[Rejection]:
    """The first ``limit`` rejections, and the rest as one summary Rejection
    whose (quarantined) payload is ``{"rejected": n, "indexes": [...],
    "reasons": {reason: count}}``, never the messages themselves."""
    if len(rejected) <= limit:
        return rejected
    kept, excess = rejected[:limit], rejected[limit:]
    reasons = Counter(r.reason for r in excess)
    summary = Rejection(
        index=excess[0].index,
        reason=f"{len(excess)} more messages rejected (indexes {excess[0].index}"
        f" to {excess[-1].index}, summarised in this one entry): {_top(reasons)}",
        path="$.batch",
        raw=_encoder.encode(
            {
                "rejected": len(excess),
                "indexes": [r.index for r in excess],
                "reasons": dict(reasons.most_common(50)),
            }
        ),
    )
    return [*kept, summary]


def summarise_warnings(warnings: list[MessageWarning], limit: int) -> list[MessageWarning]:
    """The first ``limit`` warnings and one entry summarising the rest."""
    if len(warnings) <= limit:
        return warnings
    kept, excess = warnings[:limit], warnings[limit:]
    reasons = Counter(w.reason for w in excess)
    summary = MessageWarning(
        index=excess[0].index,
        reason=f"{len(excess)} more warnings (messages {excess[0].index} to"
        f" {excess[-1].index}): {_top(reasons)}",
        path="$.batch",
    )
    return [*kept, summary]
