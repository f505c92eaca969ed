"""Running an erasure end to end (GDPR Art. 17 and 19): inside the write
transaction, then fanned out to destinations, with per-destination receipts.

Shared by ``POST /v1/erase`` and the completion of an erasure request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from identity.graph import Identifier

if TYPE_CHECKING:
    from collector.runtime import Runtime


async def erase(rt: Runtime, identifiers: list[Identifier]) -> dict[str, object]:
    """Erase everyone these identifiers belong to. Shape: ``{"erased": bool,
    "people": [...], "outbox_rows_deleted": {dest: n}, "destinations": [receipt],
    "manual_deletion": [...]?, "wal_truncated": bool}`` (``destinations`` only
    when this server forwards)."""
    now = datetime.now(UTC)
    summary = await rt.writer.run(lambda c: rt.router.erase(c, identifiers, now=now))
    people = summary.get("people")
    if rt.forwarder is not None and isinstance(people, list):
        await rt.forwarder.propagate_erasures()
        one_ids = [p["one_id"] for p in people]
        summary["destinations"] = await rt.writer.run(lambda uow: uow.erasures.status(one_ids))
        # Never stored: what an operator deletes by hand downstream.
        manual = rt.forwarder.manual_deletions([o for p in people for o in p["one_ids"]])
        if manual:
            summary["manual_deletion"] = manual
    if isinstance(people, list):
        # Nothing of the person may survive in the WAL's old frames.
        summary["wal_truncated"] = await asyncio.to_thread(rt.truncate_wal)
    return summary
