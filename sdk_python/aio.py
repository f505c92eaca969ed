"""``AsyncClient``: the same calls for asyncio storefronts, with ``await``.

Events are encoded once at the call and queued in memory (bounded, with the
``block``/``drop_oldest``/``drop_newest`` policies; drops are counted and
reported); a task on the running loop sends them in gzipped batches with
retries. For an on-disk spool across restarts use the threaded ``Client``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import httpx

from sdk_python.client import (
    DEFAULT_HOST,
    DropHandler,
    _Builder,
    _Calls,
    _pseudonymizer,
    batch_body,
    retry_delay,
)
from sdk_python.messages import MAX_REQUEST_BYTES, Message

log = logging.getLogger("consentry.sdk")


class AsyncClient(_Calls):
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
        self._b = _Builder(context, _pseudonymizer(pseudonym_key))
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._queue: collections.deque[bytes] = collections.deque()
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.dropped = 0
        self.delivered = 0

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def _enqueue(
        self,
        build: Callable[[dict[str, Any], datetime, str], Message],
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> tuple[bool, str | None]:
        try:
            message, data = self._b.encode(build, context, timestamp, message_id)
            if data is None:
                self._drop("too_large", 1)
                return False, None
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._run())
            while len(self._queue) >= self.max_queue_size:
                if self.overflow == "drop_newest":
                    self._drop("queue_full", 1)
                    return False, None
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
                    return False, None
            self._queue.append(data)
            self._idle.clear()
            if len(self._queue) >= self.flush_at:
                self._wake.set()
            return True, message.messageId
        except Exception:
            log.exception("could not enqueue a message")
            return False, None

    async def consent(
        self,
        user_id: str | None = None,
        purposes: Mapping[str, bool | str] | None = None,
        **kw: Any,
    ) -> dict[str, Any] | None:
        try:
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
            batch: list[bytes] = []
            size = 64
            while self._queue and len(batch) < self.flush_at:
                if batch and size + len(self._queue[0]) + 1 > MAX_REQUEST_BYTES - 20_000:
                    break
                item = self._queue.popleft()
                batch.append(item)
                size += len(item) + 1
            self._space.set()
            await self._deliver(batch)

    async def _deliver(self, batch: list[bytes]) -> None:
        body = batch_body(batch)
        error: object = None
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._post("/v1/batch", body)
            except httpx.HTTPError as exc:
                error, retry_after = exc, None
            else:
                if response.status_code < 300:
                    self.delivered += len(batch)
                    return
                error = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code != 429 and response.status_code < 500:
                    break
                retry_after = response.headers.get("retry-after")
            if attempt == self.max_retries:
                break
            await asyncio.sleep(retry_delay(attempt, retry_after))
        self._drop("delivery_failed", len(batch))
        log.error("batch of %d messages not delivered: %s", len(batch), error)

    async def flush(self, timeout: float | None = None) -> bool:
        if self._task is None:
            return True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def shutdown(self, timeout: float = 10.0) -> None:
        try:
            self._stopping = True
            self._wake.set()
            if self._task is not None:
                try:
                    await asyncio.wait_for(self._task, timeout)
                except TimeoutError:
                    self._task.cancel()
                    self._drop("shutdown", len(self._queue))
            await self._http.aclose()
        except Exception:
            log.exception("shutdown failed")
