"""The Consentry client: Segment's Python API, without its failure modes.

- Each call builds a msgspec Struct and encodes it once, in the caller's
  thread; batches are assembled from those bytes.
- Memory is bounded and the overflow policy is explicit: ``spool`` (default:
  an on-disk SQLite spool that also keeps unsent events across restarts and
  collector outages, replayed in call order), ``block`` (with a timeout),
  ``drop_oldest``, ``drop_newest``. Every drop is counted and reported to
  ``on_drop``. Nothing is lost silently.
- Batches close on count, bytes (under the collector's 500 KB) or time, are
  gzipped, and are retried with exponential backoff and jitter on 429, 5xx and
  network errors, honouring ``Retry-After``; other 4xx are reported with the
  collector's error.
- Fork-safe: a child gets a fresh queue, sender and spool file, so events the
  parent queued are sent once, by the parent.
- Never raises into the host application; logs to ``consentry.sdk`` only.
"""

from __future__ import annotations

import atexit
import collections
import gzip as gzip_mod
import hashlib
import itertools
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec

from sdk_python.consent import current_consent
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
from sdk_python.spool import Spool

log = logging.getLogger("consentry.sdk")
Overflow = Literal["spool", "block", "drop_oldest", "drop_newest"]
DropHandler = Callable[[str, int], None]
_encoder = msgspec.json.Encoder()
_BATCH_OVERHEAD = 64
DEFAULT_HOST = "http://127.0.0.1:8787"
VERSION = "0.1.0"


def _now() -> datetime:
    return datetime.now(UTC)


class MessageIds:
    """UUID-shaped message ids from a random per-process prefix and a counter:
    unique, and a tenth of uuid4's cost on the caller's thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = str(uuid.uuid4())[:23]
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):012x}"


message_ids = MessageIds()


def default_spool_path(write_key: str, host: str) -> Path:
    digest = hashlib.sha256(f"{host}\x00{write_key}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "consentry" / f"spool-{digest}.db"


def retry_delay(
    attempt: int, retry_after: str | None, rng: Callable[[], float] = random.random
) -> float:
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), 300.0)
    backoff = min(30.0, 0.1 * 2**attempt)
    return backoff / 2 + rng() * backoff / 2


_LIBRARY = {"name": "consentry-python", "version": VERSION}
_LIBRARY_CONTEXT: dict[str, Any] = {"library": _LIBRARY}


def _plain(value: Mapping[str, Any] | None) -> Any:
    """Pass dicts through (they are encoded at once); copy other mappings."""
    if not value:
        return None
    return value if type(value) is dict else dict(value)


class _Builder:
    """Builds and encodes messages; shared by Client and AsyncClient."""

    def __init__(self, context: Mapping[str, Any] | None, pseudonymizer: Any) -> None:
        self.default_context = dict(context or {})
        self._ps = pseudonymizer

    def context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        ambient = current_consent()
        if not context and not self.default_context and not ambient:
            # Encoded right away and never mutated: one shared dict is enough.
            return _LIBRARY_CONTEXT
        ctx = {**self.default_context, **(context or {})}
        ctx.setdefault("library", _LIBRARY)
        if ambient and "consent" not in ctx:
            ctx["consent"] = ambient
        return ctx

    def encode(
        self,
        build: Callable[[dict[str, Any], datetime, str], Message],
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> tuple[Message, bytes | None]:
        """Build and encode once; ``None`` bytes when over the per-message limit."""
        message = build(self.context(context), timestamp or _now(), message_id or message_ids())
        data = _encoder.encode(message)
        if len(data) > MAX_MESSAGE_BYTES:
            log.error(
                "message over %d bytes dropped: %s", MAX_MESSAGE_BYTES, type(message).__name__
            )
            return message, None
        return message, data

    def ident(self, kind: str, value: str | None) -> str | None:
        """Local pseudonymization: raw identifiers never leave the backend."""
        if value is None or self._ps is None:
            return value
        from identity.normalize import is_placeholder  # only with local pseudonymization

        if is_placeholder(value):
            return value  # "null" and the like: not personal data; the collector drops it
        try:
            return str(self._ps.pseudonym(kind, value, "sdk"))
        except Exception:
            # Cannot be pseudonymized (e.g. over 512 bytes): never send it raw.
            log.error("%s could not be pseudonymized and was left out", kind)
            return None

    def traits(self, traits: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if traits is None:
            return None
        out = dict(traits)
        if self._ps is not None:
            for key in ("email", "phone"):
                if isinstance(out.get(key), str):
                    try:
                        out[key] = self._ps.pseudonym(key, out[key], "sdk")
                    except Exception:
                        out.pop(key)  # cannot be pseudonymized, so it must not leave raw
        return out


def _pseudonymizer(key: str | None) -> Any:
    if key is None:
        return None
    import base64

    from identity.pseudonym import Pseudonymizer

    secret = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))

    class _OneKey:
        active_kid = "s1"

        def secret(self, kid: str) -> bytes:
            return secret

        def lookup_kids(self) -> tuple[str, ...]:
            return ("s1",)

    return Pseudonymizer(_OneKey())


def batch_body(batch: list[bytes]) -> bytes:
    """A Segment batch from messages already encoded: no second encode."""
    return b'{"batch":[' + b",".join(batch) + b'],"sentAt":"' + _now().isoformat().encode() + b'"}'


class _Calls:
    """Segment's call signatures over ``_enqueue``, and what both clients share."""

    _b: _Builder
    gzip: bool
    dropped: int
    on_drop: DropHandler | None

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            try:
                self.on_drop(reason, n)
            except Exception:
                log.exception("on_drop callback failed")

    def _wire(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": f"consentry-python/{VERSION}"}
        if self.gzip:
            body = gzip_mod.compress(body, 1)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def _enqueue(
        self,
        build: Callable[[dict[str, Any], datetime, str], Message],
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> Any:
        raise NotImplementedError

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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Track(
                event=event or "",
                properties=_plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Identify(
                traits=b.traits(traits),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Group(
                groupId=group_id or "",
                traits=dict(traits) if traits else None,
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Alias(
                previousId=b.ident("anonymous_id", previous_id) or "",
                userId=b.ident("user_id", user_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Page(
                name=name,
                category=category,
                properties=_plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
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
    ) -> Any:
        b = self._b
        return self._enqueue(
            lambda c, t, m: Screen(
                name=name,
                category=category,
                properties=_plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=_plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def _consent_body(
        self, user_id: str | None, purposes: Mapping[str, bool | str] | None, kw: dict[str, Any]
    ) -> bytes:
        b = self._b
        call = ConsentCall(
            purposes={
                k: ("granted" if v is True or v == "granted" else "denied")
                for k, v in (purposes or {}).items()
            },
            userId=b.ident("user_id", user_id),
            anonymousId=b.ident("anonymous_id", kw.get("anonymous_id")),
            traits=b.traits(kw.get("traits")),
            jurisdiction=kw.get("jurisdiction"),
            legalBasis=kw.get("legal_basis", "consent"),
            piCategories=list(kw.get("pi_categories") or []),
            recipients=[Recipient(name=n, region=r) for n, r in (kw.get("recipients") or [])],
            separate=kw.get("separate", False),
            consenter=kw.get("consenter", "self"),
            noticeId=kw.get("notice_id"),
            noticeVersion=kw.get("notice_version"),
            method=kw.get("method", "api"),
            signal=kw.get("signal"),
            timestamp=kw.get("timestamp") or _now(),
            messageId=str(uuid.uuid4()),
        )
        return _encoder.encode(call)


class Client(_Calls):
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
        overflow: Overflow = "spool",
        spool_path: str | Path | None = None,
        block_timeout: float = 5.0,
        on_drop: DropHandler | None = None,
        context: Mapping[str, Any] | None = None,
        upload_size: int = MAX_REQUEST_BYTES - 20_000,
        max_batch: int = 1000,
        pseudonym_key: str | None = None,
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
        self.max_batch = max(self.flush_at, max_batch)
        self._spool_base = (
            Path(spool_path) if spool_path else default_spool_path(self.write_key, self.host)
        )
        self._b = _Builder(context, _pseudonymizer(pseudonym_key))
        self._transport = transport
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        if debug:
            log.setLevel(logging.DEBUG)
        self._start(self._spool_base)
        _clients.add(self)

    # -- lifecycle ----------------------------------------------------------
    def _start(self, spool_path: Path) -> None:
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._http = httpx.Client(timeout=self.timeout, transport=self._transport)
        self._spool: Spool | None = None
        if self.overflow == "spool" and self.send and not self.sync_mode:
            try:
                self._spool = Spool(spool_path)
            except Exception:
                log.exception(
                    "spool %s unavailable; falling back to blocking on overflow", spool_path
                )
        self._seq = itertools.count((self._spool.max_seq() if self._spool else 0) + 1)
        self._thread: threading.Thread | None = None
        if self.send and not self.sync_mode:
            self._thread = threading.Thread(target=self._run, name="consentry-sdk", daemon=True)
            self._thread.start()

    def _after_fork_in_child(self) -> None:
        message_ids.reset()
        # The parent's queue and spool belong to the parent's sender; sending them
        # here too would deliver those events twice. Start clean, with our own spool.
        self._start(self._spool_base.with_name(f"{self._spool_base.name}.{os.getpid()}"))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def spooled(self) -> int:
        return len(self._spool) if self._spool is not None else 0

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far was sent (or spooled, if the
        collector stays unreachable); False if the timeout passed first."""
        if self.sync_mode or not self.send:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while self._queue or self._inflight or self.spooled:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
                self._cond.notify_all()
        return True

    join = flush

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush for up to ``timeout`` seconds, spool what is left, stop."""
        try:
            self.flush(timeout)
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join(timeout)
            with self._cond:
                left = list(self._queue)
                self._queue.clear()
            if left:
                if self._spool is not None:
                    self._spool.put(left)
                else:
                    self._drop("shutdown", len(left))
            if self._spool is not None:
                self._spool.close()
                self._spool = None
            self._http.close()
        except Exception:  # never raise into the host
            log.exception("shutdown failed")

    # -- calls ------------------------------------------------------------------
    def consent(
        self,
        user_id: str | None = None,
        purposes: Mapping[str, bool | str] | None = None,
        **kw: Any,
    ) -> dict[str, Any] | None:
        """Record a grant, denial or withdrawal now (synchronously: the answer is
        the ledger record). Returns None, and logs, if it could not be recorded."""
        try:
            response = self._post("/v1/consent", self._consent_body(user_id, purposes, kw))
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

    def _enqueue(
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
        item = (next(self._seq), data)
        with self._cond:
            if len(self._queue) >= self.max_queue_size:
                if self._spool is not None:
                    if len(self._queue) < 2 * self.max_queue_size:
                        # The sender moves the overflow to disk, off the caller's
                        # thread; memory stays under twice max_queue_size.
                        self._queue.append(item)
                        self._cond.notify_all()
                        return True
                    # The sender is stuck: spill here. The spool keeps call order.
                    spill = [*self._queue, item]
                    self._queue.clear()
                    self._spool.put(spill)
                    self._cond.notify_all()
                    return True
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
            self._queue.append(item)
            if len(self._queue) >= self.flush_at:
                self._cond.notify_all()
        return True

    # -- sending --------------------------------------------------------------
    def _take_batch(self) -> tuple[list[tuple[int, bytes]], bool]:
        if self._spool is not None and len(self._spool):
            return self._spool.head(self.max_batch, self.upload_size), True
        batch: list[tuple[int, bytes]] = []
        size = _BATCH_OVERHEAD
        while self._queue and len(batch) < self.max_batch:
            nxt = self._queue[0]
            if batch and size + len(nxt[1]) + 1 > self.upload_size:
                break
            batch.append(self._queue.popleft())
            size += len(nxt[1]) + 1
        return batch, False

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                deadline = time.monotonic() + self.flush_interval
                while not self._stopping and len(self._queue) < self.flush_at and not self.spooled:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 and self._queue:
                        break
                    self._cond.wait(max(remaining, 0.01) if self._queue else self.flush_interval)
                    if self._queue and time.monotonic() >= deadline:
                        break
                if self._stopping and not self._queue:
                    return
                spill: list[tuple[int, bytes]] = []
                if self._spool is not None and len(self._queue) > self.max_queue_size:
                    spill = list(self._queue)
                    self._queue.clear()
                    self._inflight += len(spill)  # so flush() waits for the move
            if spill:
                assert self._spool is not None
                try:
                    self._spool.put(spill)
                finally:
                    with self._cond:
                        self._inflight -= len(spill)
            with self._cond:
                batch, from_spool = self._take_batch()
                self._inflight += len(batch)
                self._cond.notify_all()
            try:
                if batch:
                    outcome = self._deliver([d for _, d in batch], keep=self._spool is not None)
                    if outcome == "retry" and self._spool is not None:
                        if not from_spool:
                            self._spool.put(batch)
                        failures += 1
                        # The collector is down: wait before trying the spool again.
                        time.sleep(min(30.0, 0.2 * 2 ** min(failures, 8)))
                    else:
                        # Delivered, or refused for good (already reported via on_drop).
                        if from_spool and self._spool is not None:
                            self._spool.delete([s for s, _ in batch])
                        failures = 0
            except Exception:
                log.exception("sender error")
            finally:
                with self._cond:
                    self._inflight -= len(batch)
                    self._cond.notify_all()
            if self._stopping and failures:
                return

    def _post(self, path: str, body: bytes) -> httpx.Response:
        content, headers = self._wire(body)
        return self._http.post(
            self.host + path, content=content, headers=headers, auth=(self.write_key, "")
        )

    def _deliver(
        self, batch: list[bytes], *, keep: bool = False
    ) -> Literal["delivered", "retry", "rejected"]:
        """Send one batch with retries. ``keep``: the caller will spool it on
        failure, so it is not counted as dropped."""
        body = batch_body(batch)
        error: Exception | None = None
        retries = 2 if keep else self.max_retries
        for attempt in range(retries + 1):
            try:
                response = self._post("/v1/batch", body)
            except httpx.HTTPError as exc:
                error, retry_after = exc, None
            else:
                if response.status_code < 300:
                    self.delivered += len(batch)
                    self._report_rejections(response)
                    return "delivered"
                error = RuntimeError(
                    f"collector answered HTTP {response.status_code}: {response.text[:500]}"
                )
                if response.status_code != 429 and response.status_code < 500:
                    keep = False  # the collector will never accept it: report, do not retry
                    break
                retry_after = response.headers.get("retry-after")
            if attempt == retries or self._stopping:
                break
            time.sleep(retry_delay(attempt, retry_after))
        if keep:
            log.warning(
                "collector unreachable (%s); %d messages kept in the spool", error, len(batch)
            )
            return "retry"
        self.failed += len(batch)
        self._drop("delivery_failed", len(batch))
        log.error("batch of %d messages not delivered: %s", len(batch), error)
        if self.on_error is not None and error is not None:
            try:
                self.on_error(error, batch)
            except Exception:
                log.exception("on_error callback failed")
        return "rejected"

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
