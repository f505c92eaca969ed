"""The Consentry client: Segment's Python API, without its failure modes.

- Each call builds a msgspec Struct and encodes it once, in the caller's
  thread; batches are assembled from those bytes (``sdk_python.encoding``).
- Memory is bounded and the overflow policy is explicit: ``spool`` (default:
  an on-disk SQLite spool that also keeps unsent events across restarts and
  collector outages, replayed in call order), ``block`` (with a timeout),
  ``drop_oldest``, ``drop_newest``. Every drop is counted and reported to
  ``on_drop(reason, n)``. Nothing is lost silently.
- The spool belongs to one process (``sdk_python.spool``): each process,
  forked child or gunicorn worker writes its own file, and spools left by
  processes that are gone are adopted and drained by a live one.
- Batches close on count (``upload_size`` messages), bytes (under the
  collector's 500 KB) or time (``upload_interval``), are gzipped, and are
  retried with exponential backoff and jitter on 429, 5xx and network errors,
  honouring ``Retry-After``; a message the collector keeps failing on is
  isolated and dropped with its reason (``sdk_python.delivery``).
- Fork-safe: a child gets a fresh queue, sender and spool file, so events the
  parent queued are sent once, by the parent.
- Never raises into the host application (except for invalid constructor
  arguments); logs to ``consentry.sdk`` only.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx

from sdk_python.calls import Calls, DropHandler
from sdk_python.delivery import retry_delay
from sdk_python.encoding import (
    VERSION,
    Build,
    Builder,
    SentMessage,
    Unencodable,
    batch_body,
    message_ids,
    pseudonymizer,
)
from sdk_python.messages import MAX_REQUEST_BYTES, SeparateConsents
from sdk_python.options import check_segment_options, proxy_mounts
from sdk_python.sender import Sender
from sdk_python.spool import Item, OwnedSpool, SpoolFamily

__all__ = [
    "DEFAULT_HOST",
    "VERSION",
    "Client",
    "DropHandler",
    "Overflow",
    "batch_body",
    "default_spool_path",
    "retry_delay",
]

log = logging.getLogger("consentry.sdk")
Overflow = Literal["spool", "block", "drop_oldest", "drop_newest"]
DEFAULT_HOST = "http://127.0.0.1:8787"
_SEGMENT_OAUTH_DEFAULTS = ("https://oauth2.segment.io", "tracking_api:write")


def default_spool_path(write_key: str, host: str) -> Path:
    """``$XDG_CACHE_HOME/consentry/spool-<hash of host and key>.db``: the base
    name of the spool family (each process writes ``<base>.d/<pid>-<random>.db``)."""
    digest = hashlib.sha256(f"{host}\x00{write_key}".encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "consentry" / f"spool-{digest}.db"


class Client(Calls, Sender):
    """Same constructor arguments, in the same order, and calls as
    ``segment.analytics.Client`` (analytics-python 2.3); see
    ``sdk_python.options.SEGMENT_ARGUMENTS`` for what each one does here.
    Keyword-only extras: ``flush_at``/``flush_interval`` (analytics-python 1.x
    names of ``upload_size``/``upload_interval``), ``overflow``, ``spool_path``,
    ``block_timeout``, ``on_drop``, ``context``, ``upload_bytes`` (batch byte
    cap), ``max_batch`` (messages per spool batch), ``pseudonym_key``,
    ``transport``. Raises ``ValueError`` for an argument it cannot honour."""

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        debug: bool = False,
        max_queue_size: int = 10_000,
        send: bool = True,
        on_error: Callable[[Exception, list[bytes]], None] | None = None,
        gzip: bool = True,
        max_retries: int = 10,
        sync_mode: bool = False,
        timeout: float = 15,
        proxies: Mapping[str, str] | str | None = None,
        thread: int = 1,
        upload_size: int = 100,
        upload_interval: float = 0.5,
        log_handler: logging.Handler | None = None,
        oauth_client_id: str | None = None,
        oauth_client_key: str | None = None,
        oauth_key_id: str | None = None,
        oauth_auth_server: str | None = None,
        oauth_scope: str | None = None,
        max_total_backoff_duration: float = 43200,
        max_rate_limit_duration: float = 1800,
        *,
        flush_at: int | None = None,
        flush_interval: float | None = None,
        overflow: Overflow = "spool",
        spool_path: str | Path | None = None,
        block_timeout: float = 5.0,
        on_drop: DropHandler | None = None,
        context: Mapping[str, Any] | None = None,
        upload_bytes: int = MAX_REQUEST_BYTES - 20_000,
        max_batch: int | None = None,
        pseudonym_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        upload_size = flush_at if flush_at is not None else upload_size
        upload_interval = flush_interval if flush_interval is not None else upload_interval
        oauth = {
            "oauth_client_id": oauth_client_id,
            "oauth_client_key": oauth_client_key,
            "oauth_key_id": oauth_key_id,
            "oauth_auth_server": None
            if oauth_auth_server in (None, _SEGMENT_OAUTH_DEFAULTS[0])
            else oauth_auth_server,
            "oauth_scope": None
            if oauth_scope in (None, _SEGMENT_OAUTH_DEFAULTS[1])
            else oauth_scope,
        }
        check_segment_options(
            thread=thread,
            oauth=oauth,
            upload_size=upload_size,
            upload_interval=upload_interval,
            max_queue_size=max_queue_size,
        )
        self.write_key = write_key or ""
        self.host = (host or DEFAULT_HOST).rstrip("/")
        self.send = send
        self.on_error = on_error
        self.on_drop = on_drop
        self.flush_at = upload_size
        self.flush_interval = upload_interval
        self.gzip = gzip
        self.max_retries = max_retries
        self.sync_mode = sync_mode
        self.timeout = timeout
        self.proxies = proxies
        self.overflow: Overflow = overflow
        self.block_timeout = block_timeout
        self.max_queue_size = max_queue_size
        self.upload_bytes = upload_bytes
        self.max_batch = max(self.flush_at, max_batch or 0)
        self.max_total_backoff_duration = max_total_backoff_duration
        self.max_rate_limit_duration = max_rate_limit_duration
        self._spool_base = (
            Path(spool_path) if spool_path else default_spool_path(self.write_key, self.host)
        )
        self._b = Builder(context, pseudonymizer(pseudonym_key))
        self._transport = transport
        self._mounts = proxy_mounts(proxies)
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._closed = False
        if log_handler is not None:
            log.addHandler(log_handler)
        if debug:
            log.setLevel(logging.DEBUG)
        self._start()
        _clients.add(self)

    # -- lifecycle ----------------------------------------------------------
    def _start(self) -> None:
        self._queue: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._inflight = 0
        self._http = httpx.Client(
            timeout=self.timeout,
            transport=self._transport,
            mounts=self._mounts,  # type: ignore[arg-type]
        )
        self._spool: OwnedSpool | None = None
        self._adopted: list[OwnedSpool] = []
        self._family: SpoolFamily | None = None
        self._next_adopt = 0.0
        self._last_spooled = 0
        if self.overflow == "spool" and self.send and not self.sync_mode:
            try:
                self._family = SpoolFamily(self._spool_base)
                self._spool = self._family.create_own()
                self._adopt_due()
            except Exception:
                log.exception(
                    "spool %s unavailable; falling back to blocking on overflow", self._spool_base
                )
                self._family = None
        self._seq = itertools.count((self._spool.max_seq() if self._spool is not None else 0) + 1)
        self._thread: threading.Thread | None = None
        self._ensure_sender()

    def _ensure_sender(self) -> None:
        """Start the sender thread, or restart it if it is gone."""
        if not self.send or self.sync_mode or self._stopping:
            return
        if self._thread is None or not self._thread.is_alive():
            if self._thread is not None:
                log.error("sender thread was gone; restarted")
            self._thread = threading.Thread(
                target=self._supervise, name="consentry-sdk", daemon=True
            )
            self._thread.start()

    def _after_fork_in_child(self) -> None:
        message_ids.reset()
        # The parent's queue and spools belong to the parent's sender; sending them
        # here too would deliver those events twice. Start clean, with our own spool.
        for spool in [*self._adopted, *([self._spool] if self._spool is not None else [])]:
            spool.abandon()
        if not self._closed:
            self._start()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def spooled(self) -> int:
        """Messages waiting on disk (this process's spool and adopted ones).
        Never raises: on an error it logs and returns the last known figure."""
        try:
            self._last_spooled = self._backlog()
        except Exception:
            log.exception("could not count the spool")
        return self._last_spooled

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far was sent (or spooled, if the
        collector stays unreachable); False if the timeout passed first."""
        if self.sync_mode or not self.send or self._closed:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # What a process that is gone left on disk is waiting too: look now,
            # not at the sender's next periodic look, or a flush right after a
            # forked child exits would report done with the child's events unsent.
            self._adopt_due(now=True)
            self._cond.notify_all()
            while self._queue or self._inflight or self.spooled:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._ensure_sender()
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
                self._cond.notify_all()
        return True

    def join(self, timeout: float = 10.0) -> None:
        """Segment's ``join``: send what is queued, then stop the sender."""
        self.shutdown(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush for up to ``timeout`` seconds, spool what is left, stop."""
        if self._closed:
            return
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
            for spool in [*self._adopted, *([self._spool] if self._spool is not None else [])]:
                spool.release()
            self._adopted, self._spool = [], None
            self._http.close()
            self._closed = True
        except Exception:  # never raise into the host
            log.exception("shutdown failed")

    # -- calls ------------------------------------------------------------------
    def consent(
        self,
        user_id: str | int | None = None,
        purposes: Mapping[str, bool | str] | None = None,
        *,
        separate_consents: SeparateConsents | None = None,
        **kw: Any,
    ) -> dict[str, Any] | None:
        """Record a grant, denial or withdrawal now (synchronously: the answer is
        the ledger record). Returns None, and logs, if it could not be recorded.

        ``separate_consents``: PIPL separate consents (sensitive categories for
        named purposes; third party per recipient and region; cross-border per
        recipient and region), see :class:`sdk_python.SeparateConsents`."""
        kw["separate_consents"] = separate_consents
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
            sent = SentMessage(data)
            if not self.send:
                return True, sent
            if self.sync_mode:
                plan = self._deliver_items([(0, data)], retries=self.max_retries)
                if plan.pending:
                    self._give_up([data], plan.error, "delivery_failed")
                return bool(plan.delivered), sent
            return self._put(data), sent
        except Unencodable as exc:
            log.error("message not sent: %s", exc)
            self._drop(f"unencodable: {exc}", 1)
            return False, None
        except Exception:
            log.exception("could not enqueue a message")
            self._drop("error", 1)
            return False, None

    def _put(self, data: bytes) -> bool:
        item = (next(self._seq), data)
        self._ensure_sender()
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
