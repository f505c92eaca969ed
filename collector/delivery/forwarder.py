"""The forwarder: drains each destination's outbox on its own task.

One task per destination, each with its own reader (``storage.ports.
DeliveryStorage``: a read connection of its own), so a destination that is
down or slow never delays another. On a shared database every replica's
forwarder reads the same outboxes; the reader leases the rows it returns, so
each row is sent by one replica at a time, and a replica that dies only delays
its rows until the lease runs out. At send time every row's consent
is decided again against the current ledger state (a withdrawal acknowledged
after ingest wins) and rows of erased people are dropped. Delivery is
at-least-once with the messageId as idempotency key: rows are deleted only
after the destination confirmed the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from collector.config import DestinationConfig
from collector.delivery.destinations.base import Destination, SendResult, SupportsDeletion
from collector.delivery.retry import retry_delay
from collector.metrics import Metrics
from collector.storage.ports import DeliveryReader, DeliveryStorage, Drop, OutboxRow
from collector.storage.writer import Writer
from consent.decide import ConsentState, DestinationFacts, EventFacts, decide
from consent.errors import PolicyError
from consent.jurisdiction import parse_recheck_label
from consent.policy import Policies
from identity.pseudonym import Pseudonymizer

log = logging.getLogger("consentry.forwarder")
_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The send-time decision for a row: the ledger records it cites and its
    reasons, joined (kept with a drop for `audit why`)."""

    allowed: bool
    records: tuple[int, ...]
    reasons: str


@dataclass(frozen=True, slots=True)
class Lane:
    config: DestinationConfig
    destination: Destination
    facts: DestinationFacts


class Forwarder:
    def __init__(
        self,
        *,
        storage: DeliveryStorage,
        writer: Writer[Any],
        lanes: Mapping[str, Lane],
        policies: Policies,
        pseudonymizer: Pseudonymizer,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        # Commits in this process wake the lanes at once; rows stored by other
        # workers (or another process) are found by this poll.
        poll_seconds: float = 0.25,
        # Erasures queued by another process (`consentry erase`, another
        # replica that died before fanning out) are found by this poll.
        erasure_poll_seconds: float = 5.0,
    ) -> None:
        self._storage = storage
        self._writer = writer
        self._lanes = dict(lanes)
        self._policies = policies
        self._ps = pseudonymizer
        self._metrics = metrics
        self._clock = clock
        self._poll = poll_seconds
        self._erasure_poll = erasure_poll_seconds
        self._erasing: asyncio.Lock | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._unlisten: Callable[[], None] | None = None

    def open_reader(self) -> DeliveryReader:
        """A read-only view of the database for one lane (close it when done)."""
        return self._storage.open_reader()

    async def start(self, *, deliver: bool = True) -> None:
        """Start delivering; with ``deliver=False`` (the other worker processes)
        only erasure fan-out is available, so one process reads each outbox."""
        self._loop = asyncio.get_running_loop()
        if not deliver:
            return
        for name in self._lanes:
            self._events[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(name), name=f"forward:{name}"))
        # Rows other processes (replicas) queue wake the lanes too, where the
        # backend can tell.
        self._unlisten = self._storage.listen(self.wake)
        self._tasks.append(asyncio.create_task(self._erasures(), name="erasures"))

    async def _erasures(self) -> None:
        while not self._stopping:
            try:
                await self.propagate_erasures()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("erasure fan-out failed; retrying")
            await asyncio.sleep(self._erasure_poll)

    async def propagate_erasures(self) -> int:
        """Ask every destination that can delete to forget erased people (GDPR
        Art. 17/19); record per destination what happened. Returns requests made.
        One fan-out at a time in this process (an erasure request's own and
        the poll's); on a shared database, one replica at a time per erasure."""
        if self._erasing is None:
            self._erasing = asyncio.Lock()
        async with self._erasing:
            return await self._propagate_erasures()

    async def _propagate_erasures(self) -> int:
        # The reader stays open until every outcome is committed: on a shared
        # database it holds the erasures it returned, so no other replica
        # propagates them meanwhile.
        reader = self.open_reader()
        try:
            pending = await asyncio.to_thread(reader.pending_erasures)
            for erasure_id, name, one_ids in pending:
                lane = self._lanes.get(name)
                now = self._clock()
                detail: str | None
                if lane is None:
                    status, deleted, detail = "failed", None, "destination no longer configured"
                else:
                    status, deleted, detail = await self._delete_everywhere(lane, one_ids)
                await self._writer.run(
                    self._storage.finish_erasure(erasure_id, status, deleted, detail, now)
                )
        finally:
            await asyncio.to_thread(reader.close)
        return len(pending)

    async def _delete_everywhere(
        self, lane: Lane, one_ids: list[int]
    ) -> tuple[str, int | None, str | None]:
        """Ask the destination to delete the person under every key version it
        may have received their OneID with (issue 14 §3), one request per
        version; the detail reports each. Never names a pseudonym: it is stored."""
        if not isinstance(lane.destination, SupportsDeletion):
            return (
                "not_supported",
                None,
                "this destination cannot delete: the erasure response listed the"
                " context.consentry.oneId values to delete by hand",
            )
        domain = lane.config.domain()
        statuses: list[str] = []
        total: int | None = 0
        parts = []
        for kid in self._ps.domain_kids(domain):
            theirs = [self._ps.derive_opaque("one_id", str(o), domain, kid=kid) for o in one_ids]
            result = await lane.destination.delete(theirs)
            if result.ok:
                statuses.append("deleted")
            elif (result.detail or "").startswith("not supported"):
                statuses.append("not_supported")
            else:
                statuses.append("failed")
            if total is not None and result.deleted is not None:
                total += result.deleted
            else:
                total = None
            count = "?" if result.deleted is None else str(result.deleted)
            parts.append(
                f"{kid}: {statuses[-1]} {count}"
                + (f" ({result.detail})" if not result.ok and result.detail else "")
            )
        status = (
            "deleted"
            if all(x == "deleted" for x in statuses)
            else "failed"
            if "failed" in statuses
            else "not_supported"
        )
        return status, total, "; ".join(parts)

    def manual_deletions(self, one_ids: list[int]) -> dict[str, list[str]]:
        """Per destination that cannot delete, the person's OneIDs as it received
        them (every key version): for the operator, in the erasure response only."""
        out: dict[str, list[str]] = {}
        for name, lane in self._lanes.items():
            if isinstance(lane.destination, SupportsDeletion):
                continue
            domain = lane.config.domain()
            out[name] = [
                self._ps.derive_opaque("one_id", str(o), domain, kid=kid)
                for kid in self._ps.domain_kids(domain)
                for o in one_ids
            ]
        return out

    def wake(self) -> None:
        """Thread-safe: called by the writer after a commit."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._events:
            return
        loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for event in self._events.values():
            event.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._unlisten is not None:
            await asyncio.to_thread(self._unlisten)
        for event in self._events.values():
            event.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in self._lanes.values():
            await lane.destination.close()

    async def _run(self, name: str) -> None:
        reader = self.open_reader()
        try:
            while not self._stopping:
                try:
                    worked = await self.drain_once(name, reader)
                    if not worked:
                        await self._idle(name, reader)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # e.g. the database restarted: the reader reconnects on its
                    # next read; wait a poll interval rather than spin.
                    log.exception("destination %s: forwarding loop error; retrying", name)
                    await asyncio.sleep(self._poll)
        finally:
            reader.close()

    async def _idle(self, name: str, reader: DeliveryReader) -> None:
        event = self._events[name]
        nxt = await asyncio.to_thread(reader.next_due, name)
        until = await asyncio.to_thread(reader.backoff_until, name)
        if until is not None and nxt is not None:
            nxt = max(nxt, until)
        timeout = self._poll if nxt is None else min(self._poll, max(0.0, nxt - self._clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    def _recheck(
        self, reader: DeliveryReader, lane: Lane, rows: list[OutboxRow]
    ) -> tuple[list[tuple[OutboxRow, int]], list[Drop]]:
        send: list[tuple[OutboxRow, int]] = []
        drop: list[Drop] = []
        people: dict[int, tuple[int, bool]] = {}
        states: dict[int, Any] = {}
        verdicts: dict[tuple[int, str, bool, frozenset[str]], Verdict] = {}
        for row in rows:
            if row.one_id not in people:
                people[row.one_id] = reader.person(row.one_id)
            one_id, erased = people[row.one_id]
            if erased:
                drop.append(Drop(row, (), "the person was erased"))
                continue
            key = (one_id, row.jurisdiction, row.gpc, row.pi)
            verdict = verdicts.get(key)
            if verdict is None:
                if one_id not in states:
                    states[one_id] = reader.consent_state(one_id)
                verdict = verdicts[key] = self._verdict(states[one_id], row, lane)
            if verdict.allowed:
                send.append((row, one_id))
            else:
                drop.append(Drop(row, verdict.records, verdict.reasons))
        return send, drop

    def _verdict(self, state: ConsentState, row: OutboxRow, lane: Lane) -> Verdict:
        """The decision again, under the packs, country and age the row was routed
        with (a pack no longer loaded blocks: fail closed)."""
        name, country, age = parse_recheck_label(row.jurisdiction)
        try:
            regime = self._policies.regime(name)
        except PolicyError:
            log.warning(
                "destination %s: jurisdiction %s has no pack now; not sent", lane.facts.name, name
            )
            return Verdict(False, (), f"jurisdiction {name} has no policy pack now")
        facts = EventFacts(country=country, age=age, gpc=row.gpc, pi_categories=row.pi)
        decision = decide(state, facts, lane.facts, regime)
        return Verdict(decision.allowed, decision.record_ids, "; ".join(decision.reasons))

    def _finalize(self, row: OutboxRow, one_id: int, domain: str) -> bytes:
        """Add the OneID as this destination sees it (its own domain, current
        after merges). The collector wrote the marker itself, so a byte-level
        insert is exact; anything else takes the decode path."""
        their_one_id = self._ps.derive_opaque("one_id", str(one_id), domain)
        anchor = b'"domain":' + _encoder.encode(domain) + b"}"
        if row.payload.count(anchor) == 1:
            return row.payload.replace(
                anchor, anchor[:-1] + b',"oneId":"' + their_one_id.encode() + b'"}'
            )
        message = _decoder.decode(row.payload)
        context = message.setdefault("context", {})
        marker = context.setdefault("consentry", {})
        marker["oneId"] = their_one_id
        return _encoder.encode(message)

    async def drain_once(self, name: str, reader: DeliveryReader) -> bool:
        """Deliver one batch for ``name``; returns whether there was work."""
        lane = self._lanes[name]
        now = self._clock()
        until = await asyncio.to_thread(reader.backoff_until, name)
        if until is not None and until > now:
            return False  # the destination is backing off (a failure or its Retry-After)
        rows = await asyncio.to_thread(reader.due_rows, name, now, lane.config.batch_size)
        if not rows:
            return False
        # Consent is decided again at send time. If the ledger moved while we were
        # deciding (a withdrawal was acknowledged), decide again, so nothing goes
        # out on the strength of consent withdrawn before the send.
        for _ in range(5):
            head = await asyncio.to_thread(reader.ledger_seq)
            send, drop = await asyncio.to_thread(self._recheck, reader, lane, rows)
            payloads = [self._finalize(row, one_id, lane.config.domain()) for row, one_id in send]
            if await asyncio.to_thread(reader.ledger_seq) == head:
                break
        if drop:
            await self._writer.run(self._storage.dropped(name, drop, now))
            self._metrics.dropped_consent.labels(name).inc(len(drop))
        if not send:
            return True
        # Not awaited: the marker rides along with the next group commit.
        self._writer.submit(self._storage.in_flight(name, len(payloads), now))
        parts = await self._send_isolating(
            lane, list(zip([r for r, _ in send], payloads, strict=True))
        )
        delivered = [row for rows, result in parts if result.ok for row in rows]
        failed = [(rows, result) for rows, result in parts if not result.ok]
        if delivered:
            await self._writer.run(self._storage.delivered(name, delivered, self._clock()))
            self._metrics.forwarded.labels(name).inc(len(delivered))
        if not failed:
            return True
        plans = []
        dead = 0
        cfg = lane.config
        backoff: tuple[float, str] | None = None
        for rows, result in failed:
            # One delay per part, so it is retried together, not in fragments.
            delay = retry_delay(
                max(row.attempts for row in rows),
                base=cfg.backoff_base_seconds,
                cap=cfg.backoff_max_seconds,
                retry_after=result.retry_after,
            )
            if result.retryable:
                # The destination is unwell (or asked for time): no batch at all
                # until then, new rows included.
                until = now + delay
                if backoff is None or until > backoff[0]:
                    backoff = (until, result.error or "delivery failed")
            for row in rows:
                too_old = now - row.created_at >= cfg.max_age_seconds
                exhausted = row.attempts + 1 >= cfg.max_attempts
                is_dead = not result.retryable or too_old or exhausted
                plans.append((row.id, now + delay, is_dead, result.error or "delivery failed"))
                dead += is_dead
        await self._writer.run(self._storage.retry(name, plans, self._clock(), backoff))
        self._metrics.retries.labels(name).inc(len(plans))
        if dead:
            self._metrics.dead.labels(name).inc(dead)
        log.warning(
            "destination %s: %d of %d failed (%s); %d dead-lettered",
            name,
            len(plans),
            len(send),
            failed[0][1].error,
            dead,
        )
        return bool(delivered)

    async def _send_isolating(
        self, lane: Lane, items: list[tuple[OutboxRow, bytes]]
    ) -> list[tuple[list[OutboxRow], SendResult]]:
        """Send a batch; one that fails with a non-retryable error (a message the
        destination refuses) is split in halves until the messages it refuses are
        isolated, so they alone are dead-lettered and the rest delivered (issue 19
        item 3). A retryable failure is not split: the whole part waits. Returns
        (rows, result) per part sent; at most about 2·k·log2(n) sends for k
        refused messages in a batch of n."""
        result = await lane.destination.send([payload for _, payload in items])
        if result.ok or result.retryable or len(items) == 1:
            return [([row for row, _ in items], result)]
        mid = len(items) // 2
        head = await self._send_isolating(lane, items[:mid])
        return head + await self._send_isolating(lane, items[mid:])
