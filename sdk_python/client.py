"""The Consentry client: Segment's Python API, without its failure modes.

- Each call builds a msgspec Struct and encodes it once, in the caller's
  thread; batches are assembled from those bytes.
- The queue is bounded and the overflow policy is explicit (``block``,
  ``drop_oldest``, ``drop_newest``); every drop is counted and reported to
  ``on_drop``. Nothing is lost silently.
- Batches close on count, bytes (under the collector's 500 KB) or time, are
  gzipped, and are retried with exponential backoff and jitter on 429, 5xx and
  network errors, honouring ``Retry-After``; other 4xx are reported with the
  collector's error.
- Fork-safe: the child gets a fresh queue and sender (events queued in the
  parent stay with the parent, so nothing is sent twice).
- Never raises into the host application; logs to ``consentry.sdk`` only.
"""

from __future__ import annotations

import atexit
import collections
import gzip
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import msgspec

from sdk_python.messages import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    Alias,
    ConsentCall,
    Group,
    Identify,
    Message,
    Page,
    Recipient,
    Screen,
    Track,
)

log = logging.getLogger("consentry.sdk")
Overflow = Literal["block", "drop_oldest", "drop_newest"]
DropHandler = Callable[[str, int], None]
_encoder = msgspec.json.Encoder()
_BATCH_OVERHEAD = 64
DEFAULT_HOST = "http://127.0.0.1:8787"


def _now() -> datetime:
    return datetime.now(UTC)


class Client:
    """Same constructor arguments and calls as ``segment.analytics.Client``."""

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        debug: bool = False,
        max_queue_size: int = 10_000,
        send: bool = True,
        on_error: Callable[[Exception, list[bytes]], None] | None = None,
        flush_at: int = 100,
        flush_interval: float = 0.5,
        gzip: bool = True,
        max_retries: int = 10,
        sync_mode: bool = False,
        timeout: float = 15,
        *,
        overflow: Overflow = "block",
        block_timeout: float = 5.0,
        on_drop: DropHandler | None = None,
        context: Mapping[str, Any] | None = None,
        upload_size: int = MAX_REQUEST_BYTES - 20_000,
        transport: httpx.BaseTransport | None = None,
        **_ignored: Any,
    ) -> None:
        self.write_key = write_key or ""
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self.send = send
        self.on_error = on_error
        self.on_drop = on_drop
        self.flush_at = max(1, flush_at)
        self.flush_interval = flush_interval
        self.gzip = gzip
        self.max_retries = max_retries
        self.sync_mode = sync_mode
        self.timeout = timeout
        self.overflow: Overflow = overflow
        self.block_timeout = block_timeout
        self.max_queue_size = max_queue_size
        self.upload_size = upload_size
        self.default_context = dict(context or {})
        self._transport = transport
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        if debug:
            log.setLevel(logging.DEBUG)
        self._start()
        _clients.add(self)

    # -- lifecycle ----------------------------------------------------------
    def _start(self) -> None:
        self._queue: collections.deque[bytes] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._http = httpx.Client(timeout=self.timeout, transport=self._transport)
        self._thread: threading.Thread | None = None
        if self.send and not self.sync_mode:
            self._thread = threading.Thread(target=self._run, name="consentry-sdk", daemon=True)
            self._thread.start()

    def _after_fork_in_child(self) -> None:
        # The parent's queue belongs to the parent's sender; sending it here too
        # would deliver those events twice. Start clean.
        self._start()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far was sent or given up on."""
        if self.sync_mode or not self.send:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
                self._cond.notify_all()
        return True

    join = flush

    def shutdown(self, timeout: float = 10.0) -> None:
        try:
            self.flush(timeout)
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join(timeout)
            self._http.close()
        except Exception:  # never raise into the host
            log.exception("shutdown failed")

    # -- the calls (Segment's names and argument order) ----------------------
    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Track(
                event=event or "",
                properties=dict(properties) if properties else None,
                userId=user_id,
                anonymousId=anonymous_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def identify(
        self,
        user_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Identify(
                traits=dict(traits) if traits else None,
                userId=user_id,
                anonymousId=anonymous_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def group(
        self,
        user_id: str | None = None,
        group_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Group(
                groupId=group_id or "",
                traits=dict(traits) if traits else None,
                userId=user_id,
                anonymousId=anonymous_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def alias(
        self,
        previous_id: str | None = None,
        user_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Alias(
                previousId=previous_id or "",
                userId=user_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def page(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Page(
                name=name,
                category=category,
                properties=dict(properties) if properties else None,
                userId=user_id,
                anonymousId=anonymous_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def screen(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: str | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> tuple[bool, str | None]:
        return self._enqueue(
            lambda c, t, m: Screen(
                name=name,
                category=category,
                properties=dict(properties) if properties else None,
                userId=user_id,
                anonymousId=anonymous_id,
                context=c,
                timestamp=t,
                messageId=m,
                integrations=dict(integrations) if integrations else None,
            ),
            context,
            timestamp,
            message_id,
        )

    def consent(
        self,
        user_id: str | None = None,
        purposes: Mapping[str, bool | str] | None = None,
        *,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        jurisdiction: str | None = None,
        legal_basis: str = "consent",
        pi_categories: list[str] | None = None,
        recipients: list[tuple[str, str | None]] | None = None,
        separate: bool = False,
        consenter: Literal["self", "guardian"] = "self",
        notice_id: str | None = None,
        notice_version: str | None = None,
        method: str = "api",
        signal: str | None = None,
        timestamp: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Record a grant, denial or withdrawal now (synchronously: the answer is
        the ledger record). Returns None, and logs, if it could not be recorded."""
        try:
            call = ConsentCall(
                purposes={
                    k: ("granted" if v is True or v == "granted" else "denied")
                    for k, v in (purposes or {}).items()
                },
                userId=user_id,
                anonymousId=anonymous_id,
                traits=dict(traits) if traits else None,
                jurisdiction=jurisdiction,
                legalBasis=legal_basis,
                piCategories=list(pi_categories or []),
                recipients=[Recipient(name=n, region=r) for n, r in (recipients or [])],
                separate=separate,
                consenter=consenter,
                noticeId=notice_id,
                noticeVersion=notice_version,
                method=method,  # type: ignore[arg-type]
                signal=signal,
                timestamp=timestamp or _now(),
                messageId=str(uuid.uuid4()),
            )
            response = self._post("/v1/consent", _encoder.encode(call))
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

    # -- queueing -------------------------------------------------------------
    def _enqueue(
        self,
        build: Callable[[dict[str, Any] | None, datetime, str], Message],
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> tuple[bool, str | None]:
        try:
            ctx = {**self.default_context, **(context or {})}
            ctx.setdefault("library", {"name": "consentry-python", "version": "0.1.0"})
            message = build(ctx, timestamp or _now(), message_id or str(uuid.uuid4()))
            data = _encoder.encode(message)
            if len(data) > MAX_MESSAGE_BYTES:
                self._drop("too_large", 1)
                log.error(
                    "message over %d bytes dropped: %s", MAX_MESSAGE_BYTES, type(message).__name__
                )
                return False, None
            if not self.send:
                return True, message.messageId
            if self.sync_mode:
                self._deliver([data])
                return True, message.messageId
            return self._put(data), message.messageId
        except Exception:
            log.exception("could not enqueue a message")
            return False, None

    def _put(self, data: bytes) -> bool:
        with self._cond:
            if len(self._queue) >= self.max_queue_size:
                if self.overflow == "drop_newest":
                    self._drop("queue_full", 1)
                    return False
                if self.overflow == "drop_oldest":
                    self._queue.popleft()
                    self._drop("queue_full", 1)
                else:
                    deadline = time.monotonic() + self.block_timeout
                    while len(self._queue) >= self.max_queue_size:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            self._drop("queue_full_timeout", 1)
                            return False
                        self._cond.notify_all()
                        self._cond.wait(remaining)
            self._queue.append(data)
            if len(self._queue) >= self.flush_at:
                self._cond.notify_all()
        return True

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            try:
                self.on_drop(reason, n)
            except Exception:
                log.exception("on_drop callback failed")

    # -- sending --------------------------------------------------------------
    def _take_batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = _BATCH_OVERHEAD
        while self._queue and len(batch) < self.flush_at:
            nxt = self._queue[0]
            if batch and size + len(nxt) + 1 > self.upload_size:
                break
            batch.append(self._queue.popleft())
            size += len(nxt) + 1
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval
                while not self._stopping and len(self._queue) < self.flush_at:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 and self._queue:
                        break
                    self._cond.wait(max(remaining, 0.01) if self._queue else self.flush_interval)
                    if self._queue and time.monotonic() >= deadline:
                        break
                if self._stopping and not self._queue:
                    return
                batch = self._take_batch()
                self._inflight += len(batch)
                self._cond.notify_all()
            try:
                if batch:
                    self._deliver(batch)
            finally:
                with self._cond:
                    self._inflight -= len(batch)
                    self._cond.notify_all()

    def _post(self, path: str, body: bytes) -> httpx.Response:
        headers = {"Content-Type": "application/json", "User-Agent": "consentry-python/0.1.0"}
        if self.gzip:
            body = gzip.compress(body, 6)
            headers["Content-Encoding"] = "gzip"
        return self._http.post(
            self.host + path, content=body, headers=headers, auth=(self.write_key, "")
        )

    def _deliver(self, batch: list[bytes]) -> None:
        body = (
            b'{"batch":[' + b",".join(batch) + b'],"sentAt":"' + _now().isoformat().encode() + b'"}'
        )
        error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                response = self._post("/v1/batch", body)
            except httpx.HTTPError as exc:
                error = exc
                delay = None
            else:
                if response.status_code < 300:
                    self.delivered += len(batch)
                    self._report_rejections(response)
                    return
                error = RuntimeError(
                    f"collector answered HTTP {response.status_code}: {response.text[:500]}"
                )
                if response.status_code != 429 and response.status_code < 500:
                    break
                delay = _retry_after(response.headers.get("retry-after"))
            if attempt == self.max_retries or (self._stopping and attempt >= 2):
                break
            backoff = min(30.0, 0.1 * 2**attempt)
            time.sleep(delay if delay is not None else backoff / 2 + random.random() * backoff / 2)
        self.failed += len(batch)
        self._drop("delivery_failed", len(batch))
        log.error("batch of %d messages not delivered: %s", len(batch), error)
        if self.on_error is not None and error is not None:
            try:
                self.on_error(error, batch)
            except Exception:
                log.exception("on_error callback failed")

    def _report_rejections(self, response: httpx.Response) -> None:
        try:
            rejected = response.json().get("rejected") or []
        except ValueError:
            return
        for item in rejected:
            log.warning(
                "collector quarantined message %s: %s at %s",
                item.get("index"),
                item.get("reason"),
                item.get("path"),
            )


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value), 300.0)
    return None


_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _reinit_after_fork() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


def _flush_at_exit() -> None:
    for client in list(_clients):
        client.shutdown(timeout=5.0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
atexit.register(_flush_at_exit)
