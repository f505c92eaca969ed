"""Consent from the incoming storefront request, attached to events sent while
handling it.

``ConsentMiddleware`` (ASGI) and ``WSGIConsentMiddleware`` read ``Sec-GPC`` and a
consent cookie (a TCF string, or JSON categories such as
``{"analytics": true}``) and put them in a context variable; the clients add
them as ``context.consent`` to every event whose caller did not set one.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import unquote

_consent: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "consentry_consent", default=None
)
_TCF = re.compile(r"^C[A-Za-z0-9_-]{20,}(\.[A-Za-z0-9_-]+)*$")


def current_consent() -> dict[str, Any] | None:
    return _consent.get()


def parse_signals(
    gpc_header: str | None, cookie_header: str | None, cookie_name: str
) -> dict[str, Any] | None:
    consent: dict[str, Any] = {}
    if gpc_header is not None and gpc_header.strip() == "1":
        consent["gpc"] = True
    value = _cookie(cookie_header, cookie_name) if cookie_header else None
    if value is not None:
        if _TCF.match(value):
            consent["tcString"] = value
        else:
            try:
                categories = json.loads(value)
            except ValueError:
                categories = None
            if isinstance(categories, dict) and all(
                isinstance(v, bool) for v in categories.values()
            ):
                consent["categoryPreferences"] = categories
    return consent or None


def _cookie(header: str, name: str) -> str | None:
    # Browsers send "a=1; b=2"; CMP cookies hold JSON that SimpleCookie rejects.
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return unquote(value.strip().strip('"'))
    return None


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class ConsentMiddleware:
    def __init__(self, app: ASGIApp, *, cookie: str = "consent") -> None:
        self.app = app
        self.cookie = cookie

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        token = _consent.set(
            parse_signals(headers.get("sec-gpc"), headers.get("cookie"), self.cookie)
        )
        try:
            await self.app(scope, receive, send)
        finally:
            _consent.reset(token)


class WSGIConsentMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]], *, cookie: str = "consent") -> None:
        self.app = app
        self.cookie = cookie

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        token = _consent.set(
            parse_signals(environ.get("HTTP_SEC_GPC"), environ.get("HTTP_COOKIE"), self.cookie)
        )
        try:
            return self.app(environ, start_response)
        finally:
            _consent.reset(token)
