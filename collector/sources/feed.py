"""The sources' way into the pipeline: prepare messages, then write them in one
group-commit unit, optionally with more work in the same transaction (a
webhook's delivery-id claim and consent evidence).

Shapes: ``raws`` are encoded JSON messages; a message that does not decode or
validate becomes a ``Rejection`` (quarantined, encrypted, with its JSON path),
never an error for the whole request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from collector.errors import InvalidMessage, Unavailable
from collector.pipeline.decode import Rejection, decode_message
from collector.pipeline.prepare import Prepared
from collector.pipeline.route import Tally
from collector.runtime import Runtime
from collector.storage.ports import UnitOfWork

log = logging.getLogger("consentry.collector.sources")

# Runs first in the unit's transaction; False means "already done: store nothing".
Before = Callable[[UnitOfWork], bool]


def prepare(
    rt: Runtime,
    raws: Sequence[bytes],
    *,
    received_at: datetime,
    batch_context: Mapping[str, Any] | None = None,
) -> tuple[list[Prepared], list[Rejection]]:
    prepared: list[Prepared] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raws):
        prefix = f"$.batch[{index}]"
        try:
            message = decode_message(raw, index=index, prefix=prefix)
            prepared.append(
                rt.preparer.prepare(
                    message,
                    index=index,
                    prefix=prefix,
                    received_at=received_at,
                    batch_context=batch_context,
                )
            )
        except InvalidMessage as exc:
            rejected.append(Rejection(index, exc.reason, exc.path, raw))
    return prepared, rejected


async def write(
    rt: Runtime,
    source: str,
    prepared: Sequence[Prepared],
    rejected: Sequence[Rejection],
    *,
    received_at: datetime,
    before: Before | None = None,
) -> Tally | None:
    """Store in one transaction; None when ``before`` said it was already stored.
    Raises Unavailable (503) when nothing could be stored durably."""
    route = rt.router.unit(prepared, rejected, source=source, received_at=received_at)

    def unit(uow: UnitOfWork) -> Tally | None:
        if before is not None and not before(uow):
            return None
        return route(uow)

    try:
        tally = await rt.writer.run(unit)
    except Exception as exc:
        log.error("messages from %s not stored: %s", source, type(exc).__name__)
        raise Unavailable("the request could not be stored durably; retry later") from None
    if tally is not None:
        rt.metrics.ingested(source, len(prepared) + len(rejected), tally)
    return tally
