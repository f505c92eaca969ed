"""The HTTP/1.1 server's guard rails (issue 19 items 5 and 7).

Write keys are public in browsers, so any client may be slow or greedy.
uvicorn's httptools protocol is kept (it is the fast one) with these limits:

- request line + headers at most ``max_header_bytes`` (default 32 KiB): more is
  answered ``431 Request Header Fields Too Large`` and the connection closed
  (RFC 6585 §5); the body limits stay in ``read_body`` (500 KB, after inflation);
- a connection that has not sent a complete request head within
  ``header_timeout_seconds`` of opening (or of its previous response) is
  answered ``408 Request Timeout`` and closed (slowloris);
- a body not complete within ``body_timeout_seconds`` of its head closes the
  connection (the request is not acknowledged, so the client may retry);
- idle keep-alive connections close after ``idle_timeout_seconds``
  (uvicorn's ``timeout_keep_alive``).

Pipelining (RFC 9112 §9.3.2): requests are answered in order, each with its own
response. A malformed request after valid ones no longer cuts their responses
short: its 400 is sent once every earlier response has been written, then the
connection closes.

Refused clients are logged one line each, at most ``LOG_PER_SECOND`` lines a
second per process (the rest counted in the next line), never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("consentry.http")
LOG_PER_SECOND = 5
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0


class _LogBudget:
    """At most ``per_second`` lines a second; the suppressed ones are counted."""

    def __init__(self, per_second: int) -> None:
        self._per_second = per_second
        self._window = 0
        self._used = 0
        self._dropped = 0

    def line(self, message: str) -> None:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._used = now, 0
        if self._used >= self._per_second:
            self._dropped += 1
            return
        self._used += 1
        if self._dropped:
            message += f" ({self._dropped} similar lines suppressed)"
            self._dropped = 0
        log.warning(message)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def protocol_class(limits: Limits) -> type[HttpToolsProtocol]:
    """An httptools protocol class with ``limits``, for ``uvicorn.Config(http=...)``."""
    budget = _LogBudget(LOG_PER_SECOND)

    class GuardedProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _head_timer: asyncio.TimerHandle | None = None
        _body_timer: asyncio.TimerHandle | None = None
        _deferred: _Refused | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_timers()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deferred is not None or self.transport.is_closing():
                return  # a refusal is pending: nothing more is read
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                refused = exc.__context__
                if not isinstance(refused, _Refused):
                    refused = _Refused(400, "invalid HTTP request")
                self._refuse(refused)
            except httptools.HttpParserUpgrade:
                self._unsupported_upgrade_warning()
            except httptools.HttpParserError:
                self._refuse(_Refused(400, "invalid HTTP request"))

        # -- parser callbacks -----------------------------------------------------
        def on_message_begin(self) -> None:
            self._head_bytes = 0
            self._arm_head_timer()
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._cancel(self._head_timer)
            self._head_timer = None
            self._body_timer = self.loop.call_later(
                limits.body_timeout_seconds, self._body_timed_out
            )
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._cancel(self._body_timer)
            self._body_timer = None
            super().on_message_complete()

        def on_response_complete(self) -> None:
            if self._deferred is not None and not self.pipeline:
                # Every earlier request has its answer: now the refusal.
                self.server_state.total_requests += 1
                self._send_refusal(self._deferred)
                return
            super().on_response_complete()
            if not self.pipeline and not self.transport.is_closing():
                self._arm_head_timer()

        # -- limits ---------------------------------------------------------------
        def _count(self, n: int) -> None:
            self._head_bytes += n
            if self._head_bytes > limits.max_header_bytes:
                raise _Refused(431, f"request head over {limits.max_header_bytes} bytes; refused")

        def _arm_head_timer(self) -> None:
            self._cancel(self._head_timer)
            self._head_timer = self.loop.call_later(
                limits.header_timeout_seconds, self._head_timed_out
            )

        def _head_timed_out(self) -> None:
            self._head_timer = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy or self.transport.is_closing():
                return  # a response is on its way; the keep-alive timer follows it
            self._refuse(
                _Refused(408, f"no request head within {limits.header_timeout_seconds:g} s")
            )

        def _body_timed_out(self) -> None:
            self._body_timer = None
            budget.line(
                f"{self._who()}: body not complete within"
                f" {limits.body_timeout_seconds:g} s; connection closed"
            )
            self.transport.close()

        def _refuse(self, refused: _Refused) -> None:
            self._cancel_timers()
            if self.cycle is not None and not self.cycle.response_complete:
                # Earlier pipelined requests are still being answered: wait.
                self._deferred = refused
                self.flow.pause_reading()
                return
            self._send_refusal(refused)

        def _send_refusal(self, refused: _Refused) -> None:
            budget.line(f"{self._who()}: {refused.status} {refused.reason}")
            body = refused.reason.encode()
            head = b"HTTP/1.1 %d %s\r\n" % (refused.status, _REASONS.get(refused.status, b""))
            self.transport.write(
                head
                + b"content-type: text/plain; charset=utf-8\r\n"
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                + body
            )
            self.transport.close()

        def _who(self) -> str:
            return f"{self.client[0]}:{self.client[1]}" if self.client else "client"

        def _cancel_timers(self) -> None:
            self._cancel(self._head_timer)
            self._cancel(self._body_timer)
            self._head_timer = self._body_timer = None

        @staticmethod
        def _cancel(timer: Any) -> None:
            if timer is not None:
                timer.cancel()

    return GuardedProtocol
