"""``AsyncClient``: the same calls for asyncio storefronts, with ``await``.

Events are encoded once at the call and queued in memory (bounded, with the
``block``/``drop_oldest``/``drop_newest`` policies; drops are counted and
reported); a task on the running loop sends them in gzipped batches with
retries, isolating a message the collector keeps failing on
(``sdk_python.delivery``). For an on-disk spool across restarts use the
threaded ``Client``.

Any event loop: the sender task and the HTTP connections belong to one loop;
a call from another loop (a second ``asyncio.run``, Django's and Flask's async
views) moves them to that loop and keeps the queue, so nothing queued on a
loop that has ended is lost. At interpreter exit, what is still queued is sent
synchronously (for up to 5 s); what cannot be sent is counted in ``dropped``
with reason ``shutdown`` and logged.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import logging
import weakref
from collections.abc import Mapping
from typing import Any, Literal

import httpx

from sdk_python.calls import Calls, DropHandler
from sdk_python.delivery import Attempt, Plan, answer, isolate, retry_delay
from sdk_python.encoding import (
    Build,
    Builder,
    SentMessage,
    Unencodable,
    batch_body,
    pseudonymizer,
)
from sdk_python.messages import MAX_REQUEST_BYTES, SeparateConsents

log = logging.getLogger("consentry.sdk")
DEFAULT_HOST = "http://127.0.0.1:8787"


class AsyncClient(Calls):
    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        *,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        max_queue_size: int = 10_000,
        overflow: Literal["block", "drop_oldest", "drop_newest"] = "block",
        block_timeout: float = 5.0,
        on_drop: DropHandler | None = None,
        gzip: bool = True,
        max_retries: int = 10,
        timeout: float = 15.0,
        context: Mapping[str, Any] | None = None,
        pseudonym_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.write_key = write_key or ""
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self.flush_at = max(1, flush_at)
        self.flush_interval = flush_interval
        self.max_queue_size = max_queue_size
        self.overflow = overflow
        self.block_timeout = block_timeout
        self.on_drop = on_drop
        self.gzip = gzip
        self.max_retries = max_retries
        self.timeout = timeout
        self._transport = transport
        self._b = Builder(context, pseudonymizer(pseudonym_key))
        self._queue: collections.deque[bytes] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.delivered = 0
        _async_clients.add(self)

    # -- the loop the client currently lives on --------------------------------
    def _bind(self) -> None:
        """Make the sender task and HTTP client belong to the running loop."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        if self._loop is not loop:
            self._http = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
            self._wake = asyncio.Event()
            self._space = asyncio.Event()
            self._idle = asyncio.Event()
            self._loop = loop
        self._task = loop.create_task(self._run())

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def _enqueue(
        self,
        build: Build,
        context: Mapping[str, Any] | None,
        timestamp: Any,
        message_id: str | None,
    ) -> tuple[bool, SentMessage | None]:
        try:
            _, data = self._b.encode(build, context, timestamp, message_id)
            if data is None:
                self._drop("too_large", 1)
                return False, None
            self._bind()
            while len(self._queue) >= self.max_queue_size:
                if self.overflow == "drop_newest":
                    self._drop("queue_full", 1)
                    return False, SentMessage(data)
                if self.overflow == "drop_oldest":
                    self._queue.popleft()
                    self._drop("queue_full", 1)
                    break
                self._space.clear()
                self._wake.set()
                try:
                    await asyncio.wait_for(self._space.wait(), self.block_timeout)
                except TimeoutError:
                    self._drop("queue_full_timeout", 1)
                    return False, SentMessage(data)
            self._queue.append(data)
            self._idle.clear()
            if len(self._queue) >= self.flush_at:
                self._wake.set()
            return True, SentMessage(data)
        except Unencodable as exc:
            log.error("message not sent: %s", exc)
            self._drop(f"unencodable: {exc}", 1)
            return False, None
        except Exception:
            log.exception("could not enqueue a message")
            self._drop("error", 1)
            return False, None

    async def consent(
        self,
        user_id: str | int | None = None,
        purposes: Mapping[str, bool | str] | None = None,
        *,
        separate_consents: SeparateConsents | None = None,
        **kw: Any,
    ) -> dict[str, Any] | None:
        """As :meth:`Client.consent`."""
        kw["separate_consents"] = separate_consents
        try:
            self._bind()
            response = await self._post("/v1/consent", self._consent_body(user_id, purposes, kw))
            if response.status_code >= 300:
                log.error(
                    "consent call rejected: HTTP %s %s", response.status_code, response.text[:500]
                )
                return None
            result: dict[str, Any] = response.json()
            return result
        except Exception:
            log.exception("consent call failed")
            return None

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        content, headers = self._wire(body)
        return await self._http.post(
            self.host + path, content=content, headers=headers, auth=(self.write_key, "")
        )

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
                continue
            if len(self._queue) < self.flush_at and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval)
                self._wake.clear()
            batch = _take(self._queue, self.flush_at)
            self._space.set()
            try:
                await self._deliver(batch)
            except BaseException:
                # cancelled with its loop (asyncio.run ending): keep the batch
                self._queue.extendleft(reversed(batch))
                raise

    async def _deliver(self, batch: list[bytes]) -> None:
        steps = isolate(batch)
        group = next(steps)
        while True:
            attempt = await self._attempt(group)
            try:
                group = steps.send(attempt)
            except StopIteration as stop:
                plan: Plan[bytes] = stop.value
                break
        self._account(plan)

    def _account(self, plan: Plan[bytes]) -> None:
        self.delivered += len(plan.delivered)
        reasons: dict[str, int] = {}
        for _, reason in plan.dropped:
            reasons[reason] = reasons.get(reason, 0) + 1
        if plan.pending:
            reasons["delivery_failed"] = reasons.get("delivery_failed", 0) + len(plan.pending)
        for reason, n in reasons.items():
            log.error("%d messages not delivered (%s): %s", n, reason, plan.error)
            self._drop(reason, n)

    async def _attempt(self, group: list[bytes]) -> Attempt:
        body = batch_body(group)
        attempt = Attempt("unavailable", error="not sent")
        for n in range(self.max_retries + 1):
            retry_after = None
            try:
                response = await self._post("/v1/batch", body)
            except httpx.HTTPError as exc:
                attempt = Attempt("unavailable", error=f"{type(exc).__name__}: {exc}")
            else:
                attempt = answer(response)
                if attempt.kind in ("delivered", "refused"):
                    return attempt
                retry_after = response.headers.get("retry-after")
            if n == self.max_retries or self._stopping:
                break
            await asyncio.sleep(retry_delay(n, retry_after))
        return attempt

    async def flush(self, timeout: float | None = None) -> bool:
        if not self._queue and (self._task is None or self._task.done()):
            return True
        self._bind()
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def shutdown(self, timeout: float = 10.0) -> None:
        try:
            self._stopping = True
            if self._queue:
                self._bind()
            if self._task is not None and self._loop is asyncio.get_running_loop():
                self._wake.set()
                try:
                    await asyncio.wait_for(self._task, timeout)
                except TimeoutError:
                    self._drop("shutdown", len(self._queue))
                    self._queue.clear()
            if self._loop is not None:
                await self._http.aclose()
        except Exception:
            log.exception("shutdown failed")

    def _flush_sync(self, timeout: float) -> None:
        """At exit, outside any loop: send what is queued with a blocking client."""
        pending = collections.deque(self._queue)
        self._queue.clear()
        if not pending:
            return
        try:
            with httpx.Client(timeout=min(self.timeout, timeout)) as http:
                while pending:
                    batch = _take(pending, self.flush_at)
                    content, headers = self._wire(batch_body(batch))
                    response = http.post(
                        self.host + "/v1/batch",
                        content=content,
                        headers=headers,
                        auth=(self.write_key, ""),
                    )
                    result = answer(response)
                    if result.kind != "delivered":
                        pending.extendleft(reversed(batch))
                        raise RuntimeError(result.error)
                    self.delivered += len(batch) - len(result.rejected)
                    for _, reason, path in result.rejected:
                        self._drop(f"quarantined: {reason} at {path}", 1)
        except Exception as exc:
            log.error("AsyncClient: %d queued messages lost at exit: %s", len(pending), exc)
            self._drop("shutdown", len(pending))


def _take(queue: collections.deque[bytes], limit: int) -> list[bytes]:
    batch: list[bytes] = []
    size = 64
    while queue and len(batch) < limit:
        if batch and size + len(queue[0]) + 1 > MAX_REQUEST_BYTES - 20_000:
            break
        item = queue.popleft()
        batch.append(item)
        size += len(item) + 1
    return batch


_async_clients: weakref.WeakSet[AsyncClient] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for client in list(_async_clients):
        client._flush_sync(5.0)


atexit.register(_flush_at_exit)
