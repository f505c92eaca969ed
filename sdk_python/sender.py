"""The threaded client's sender: one thread per client that takes batches from
the spools and the queue, posts them, and records where every message ended.

Order of work: spools adopted from processes that are gone (their events are
the oldest), then this process's own spool, then the in-memory queue. A batch
that cannot be delivered now goes (back) to this process's spool; messages
delivered or dropped with a reason leave it. The loop is supervised: an
exception is logged and the loop restarts after a pause; it never reaches the
caller (``Client._ensure_sender`` also restarts a thread that is gone).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

import httpx

from sdk_python.delivery import Attempt, Plan, answer, isolate, retry_delay
from sdk_python.encoding import batch_body
from sdk_python.spool import Item, OwnedSpool, Spool, SpoolFamily

log = logging.getLogger("consentry.sdk")
_BATCH_OVERHEAD = 64
ADOPT_EVERY = 2.0  # seconds between looks for spools left by processes that are gone


class Sender:
    """Mixin for ``Client``: the sending half. Attributes are set by ``Client``."""

    host: str
    write_key: str
    max_retries: int
    max_queue_size: int
    flush_at: int
    flush_interval: float
    max_batch: int
    upload_bytes: int
    max_total_backoff_duration: float
    max_rate_limit_duration: float
    on_error: Callable[[Exception, list[bytes]], None] | None
    delivered: int
    failed: int
    _queue: collections.deque[Item]
    _cond: threading.Condition
    _stopping: bool
    _inflight: int
    _http: httpx.Client
    _spool: OwnedSpool | None
    _adopted: list[OwnedSpool]
    _family: SpoolFamily | None
    _next_adopt: float

    def _drop(self, reason: str, n: int) -> None:
        raise NotImplementedError

    def _wire(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    # -- the loop -----------------------------------------------------------------
    def _supervise(self) -> None:
        pause = 0.1
        while True:
            try:
                self._run()
                return
            except Exception:
                log.exception("sender failed; restarting it")
            with self._cond:
                if self._stopping:
                    return
                self._cond.wait(pause)
            pause = min(pause * 2, 5.0)

    def _backlog(self) -> int:
        return sum(len(s) for s in self._adopted) + (len(self._spool) if self._spool else 0)

    def _wait_for_work(self) -> list[Item]:
        """Under the lock: wait until a batch is due; returns a spill for the spool."""
        deadline = time.monotonic() + self.flush_interval
        while not self._stopping and len(self._queue) < self.flush_at and not self._backlog():
            remaining = deadline - time.monotonic()
            if remaining <= 0 and self._queue:
                break
            self._cond.wait(max(remaining, 0.01) if self._queue else self.flush_interval)
            if self._queue and time.monotonic() >= deadline:
                break
            self._adopt_due()
        spill: list[Item] = []
        if self._spool is not None and len(self._queue) > self.max_queue_size:
            spill = list(self._queue)
            self._queue.clear()
            self._inflight += len(spill)  # so flush() waits for the move
        return spill

    def _adopt_due(self, *, now: bool = False) -> None:
        """Adopt the family's spools whose owner is gone, at most every
        ADOPT_EVERY seconds (``now``: at once). Call with ``_cond`` held."""
        if self._family is None or (not now and time.monotonic() < self._next_adopt):
            return
        self._next_adopt = time.monotonic() + ADOPT_EVERY
        skip = {s.path for s in self._adopted}
        if self._spool is not None:
            skip.add(self._spool.path)
        self._adopted.extend(self._family.adopt(skip))

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                spill = self._wait_for_work()
                if self._stopping and not self._queue:
                    return
            if spill:
                assert self._spool is not None
                try:
                    self._spool.put(spill)
                finally:
                    with self._cond:
                        self._inflight -= len(spill)
            with self._cond:
                batch, source = self._take_batch()
                self._inflight += len(batch)
                self._cond.notify_all()
            try:
                stuck = bool(batch) and self._send(batch, source)
            finally:
                with self._cond:
                    self._inflight -= len(batch)
                    self._cond.notify_all()
            self._release_drained()
            if not stuck:
                failures = 0
                continue
            failures += 1
            if self._stopping:
                return
            with self._cond:  # the collector is down: wait before trying the spool again
                self._cond.wait(min(30.0, 0.2 * 2 ** min(failures, 8)))

    def _take_batch(self) -> tuple[list[Item], Spool | None]:
        for spool in [*self._adopted, self._spool]:
            if spool is not None and len(spool):
                return spool.head(self.max_batch, self.upload_bytes), spool
        batch: list[Item] = []
        size = _BATCH_OVERHEAD
        while self._queue and len(batch) < self.max_batch:
            nxt = self._queue[0]
            if batch and size + len(nxt[1]) + 1 > self.upload_bytes:
                break
            batch.append(self._queue.popleft())
            size += len(nxt[1]) + 1
        return batch, None

    def _release_drained(self) -> None:
        for spool in [s for s in self._adopted if not len(s)]:
            self._adopted.remove(spool)
            try:
                spool.release()
                log.info("adopted spool %s drained and removed", spool.path.name)
            except Exception:
                log.exception("could not remove drained spool %s", spool.path)

    # -- one batch ----------------------------------------------------------------
    def _send(self, batch: list[Item], source: Spool | None) -> bool:
        """Deliver ``batch``; True when some of it must wait for the collector."""
        keep = self._spool is not None
        plan = self._deliver_items(batch, retries=2 if keep else self.max_retries)
        done = [s for s, _ in plan.delivered] + [s for (s, _), _ in plan.dropped]
        if source is not None:
            source.delete(done)  # what is pending stays where it is, in order
        elif plan.pending and self._spool is not None:
            self._spool.put(plan.pending)
        elif plan.pending:
            self._give_up([d for _, d in plan.pending], plan.error, "delivery_failed")
        if plan.pending and keep:
            log.warning(
                "collector unavailable (%s); %d messages kept in the spool",
                plan.error,
                len(plan.pending),
            )
        return bool(plan.pending)

    def _deliver_items(self, batch: list[Item], *, retries: int) -> Plan[Item]:
        steps = isolate(batch)
        group = next(steps)
        first = True
        while True:
            attempt = self._attempt([d for _, d in group], retries if first else min(retries, 1))
            first = False
            try:
                group = steps.send(attempt)
            except StopIteration as stop:
                plan: Plan[Item] = stop.value
                break
        self.delivered += len(plan.delivered)
        reasons: dict[str, list[bytes]] = {}
        for (_, data), reason in plan.dropped:
            reasons.setdefault(reason, []).append(data)
        for reason, items in reasons.items():
            if reason.startswith("quarantined"):
                log.warning("collector quarantined a message: %s", reason)
                self._drop(reason, len(items))
            else:
                self._give_up(items, plan.error, reason)
        return plan

    def _give_up(self, items: list[bytes], error: str, reason: str) -> None:
        self.failed += len(items)
        self._drop(reason, len(items))
        log.error("%d messages not delivered (%s): %s", len(items), reason, error)
        if self.on_error is not None:
            try:
                self.on_error(RuntimeError(error or reason), items)
            except Exception:
                log.exception("on_error callback failed")

    def _post(self, path: str, body: bytes) -> httpx.Response:
        content, headers = self._wire(body)
        return self._http.post(
            self.host + path, content=content, headers=headers, auth=(self.write_key, "")
        )

    def _attempt(self, group: list[bytes], retries: int) -> Attempt:
        """Post one group, retrying 429, 5xx and network errors ``retries`` times
        within the backoff caps."""
        body = batch_body(group)
        waited = limited = 0.0
        attempt = Attempt("unavailable", error="not sent")
        for n in range(retries + 1):
            retry_after = None
            try:
                response = self._post("/v1/batch", body)
            except httpx.HTTPError as exc:
                attempt = Attempt("unavailable", error=f"{type(exc).__name__}: {exc}")
            else:
                attempt = answer(response)
                if attempt.kind in ("delivered", "refused"):
                    return attempt
                retry_after = response.headers.get("retry-after")
            delay = retry_delay(n, retry_after)
            if attempt.status == 429:
                limited += delay
            waited += delay
            if (
                n == retries
                or self._stopping
                or waited > self.max_total_backoff_duration
                or limited > self.max_rate_limit_duration
            ):
                break
            time.sleep(delay)
        return attempt
