"""Replay quarantined messages through the pipeline (``consentry quarantine replay``).

Typical use: a tracking plan held messages back (``quarantine``/``block``);
the plan is fixed; the operator replays them. Each kept message is decrypted,
decoded and prepared again exactly as at ingest, with its source's *current*
plan (read from its file when the runtime starts), then routed and stored in
one write transaction that also deletes its quarantine row. A message that is
still refused keeps its row (nothing is stored twice); the result says why.

What a replayed message keeps: its ``messageId`` (a replay inside the dedupe
window of a stored copy is acknowledged once, as any repeat), its batch
context and request consent as they were merged at ingest, and its event
time. Its ``receivedAt`` is the time of the replay.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from collector.errors import InvalidMessage, QuarantineError
from collector.pipeline.decode import decode_message
from collector.pipeline.prepare import Prepared, Preparer
from collector.quality.plan import TrackingPlan
from collector.storage.ports import QuarantinedRow, UnitOfWork
from collector.vault import Vault


class Runtime(Protocol):
    """What a replay needs of the running collector (collector.runtime.Runtime)."""

    keyring: Any  # identity.keyring.Keyring: the vault key
    config: Any  # collector.config.Config: the depth limit
    preparer: Preparer
    plans: dict[str, TrackingPlan]
    router: Any  # collector.pipeline.route.Router
    writer: Any  # storage writer: .call(work(UnitOfWork), timeout)


@dataclass
class ReplayResult:
    """Row ids replayed (stored and removed from the quarantine) and still held
    (row id, reason, path)."""

    replayed: list[int] = field(default_factory=list)
    held: list[tuple[int, str, str]] = field(default_factory=list)


def quarantined(
    rt: Runtime, *, source: str | None = None, ids: Sequence[int] = ()
) -> list[QuarantinedRow]:
    """The kept rows, oldest first (read through the writer's unit of work)."""

    def read(uow: UnitOfWork) -> list[QuarantinedRow]:
        return uow.quarantine.rows(source=source, ids=ids)

    rows: list[QuarantinedRow] = rt.writer.call(read, timeout=120)
    return rows


def replay(rt: Runtime, *, source: str | None = None, ids: Sequence[int] = ()) -> ReplayResult:
    """Replay the kept rows of `source` (or the given `ids`, or all)."""
    vault = Vault(rt.keyring.vault_key)
    result = ReplayResult()
    ready: dict[str, list[tuple[int, Prepared]]] = defaultdict(list)
    now = datetime.now(UTC)
    for row in quarantined(rt, source=source, ids=ids):
        try:
            raw = vault.open(row.sealed, f"quarantine/{row.id}/{row.expires_at}".encode())
            message = decode_message(raw, index=0, prefix="$", max_depth=rt.config.ingest.max_depth)
            prepared = rt.preparer.prepare(
                message, index=0, prefix="$", received_at=now, plan=rt.plans.get(row.source)
            )
        except (InvalidMessage, QuarantineError) as exc:
            reason = getattr(exc, "reason", str(exc))
            result.held.append((row.id, reason, getattr(exc, "path", row.path)))
            continue
        ready[row.source].append((row.id, prepared))
    for name, items in ready.items():
        unit = rt.router.unit([p for _, p in items], [], source=name, received_at=now)
        row_ids = [row_id for row_id, _ in items]

        def work(uow, unit=unit, row_ids=row_ids):  # type: ignore[no-untyped-def]
            tally = unit(uow)
            uow.quarantine.delete(row_ids)
            return tally

        rt.writer.call(work, timeout=120)
        result.replayed += row_ids
    return result
