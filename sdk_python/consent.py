"""Consent from the incoming storefront request, attached to events sent while
handling it.

``ConsentMiddleware`` (ASGI) and ``WSGIConsentMiddleware`` read ``Sec-GPC``
and the consent cookies of the request (every ``Cookie`` header; the CMPs in
``sdk_python.cmp``: OneTrust, Cookiebot, Didomi, Klaro, Complianz, CookieYes,
Shopify, TCF and GPP strings, and a plain ``consent`` cookie) and hold them in
a context variable for the whole request, streamed response body included.
The clients combine them with a call's explicit ``context.consent``
(``combine_consent``): categories are granted only if neither denies them and
GPC is never dropped.

Options (both middlewares): ``cookie`` (the plain cookie's name),
``jurisdiction`` (a code such as ``GDPR`` or ``US-CA``, or a function of the
request's headers returning one; it decides how an unreadable cookie fails
closed), ``category_map`` and ``parse`` (passed to ``parse_consent_cookies``),
``on_warning`` (called with each warning; they are also logged).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import Any

from sdk_python.cmp import (
    CategoryMap,
    Parser,
    combine_consent,
    parse_consent_cookies,
    parse_cookie_header,
)

__all__ = [
    "ConsentMiddleware",
    "WSGIConsentMiddleware",
    "combine_consent",
    "current_consent",
    "parse_signals",
]

log = logging.getLogger("consentry.sdk")
_consent: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "consentry_consent", default=None
)
Jurisdiction = str | Callable[[Mapping[str, str]], str | None] | None


def current_consent() -> dict[str, Any] | None:
    """The request's consent as ``context.consent``, or None outside a request."""
    return _consent.get()


class _Reader:
    def __init__(
        self,
        *,
        cookie: str,
        jurisdiction: Jurisdiction,
        category_map: Mapping[str, CategoryMap] | None,
        parse: Sequence[Parser],
        on_warning: Callable[[str], None] | None,
    ) -> None:
        self.cookie = cookie
        self.jurisdiction = jurisdiction
        self.category_map = category_map
        self.parse = tuple(parse)
        self.on_warning = on_warning

    def read(
        self, headers: Mapping[str, str], cookie_headers: Sequence[str]
    ) -> dict[str, Any] | None:
        try:
            j = self.jurisdiction(headers) if callable(self.jurisdiction) else self.jurisdiction
            found = parse_consent_cookies(
                parse_cookie_header(*cookie_headers),
                jurisdiction=j,
                category_map=self.category_map,
                parse=self.parse,
                plain_cookie=self.cookie,
            )
            for warning in found.warnings:
                log.warning("consent cookie: %s", warning)
                if self.on_warning is not None:
                    self.on_warning(warning)
            consent = found.context() or {}
        except Exception:
            log.exception("could not read the request's consent; read as none")
            consent = {}
        gpc = headers.get("sec-gpc")
        if gpc is not None and gpc.strip() == "1":
            consent["gpc"] = True
        return consent or None


def parse_signals(
    gpc_header: str | None, cookie_header: str | None, cookie_name: str
) -> dict[str, Any] | None:
    """``context.consent`` from one ``Sec-GPC`` and one ``Cookie`` header value."""
    reader = _Reader(
        cookie=cookie_name, jurisdiction=None, category_map=None, parse=(), on_warning=None
    )
    headers = {"sec-gpc": gpc_header} if gpc_header is not None else {}
    return reader.read(headers, [cookie_header] if cookie_header else [])


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class ConsentMiddleware:
    """ASGI middleware (Starlette, FastAPI, Django ASGI, Quart)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cookie: str = "consent",
        jurisdiction: Jurisdiction = None,
        category_map: Mapping[str, CategoryMap] | None = None,
        parse: Sequence[Parser] = (),
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.cookie = cookie
        self._reader = _Reader(
            cookie=cookie,
            jurisdiction=jurisdiction,
            category_map=category_map,
            parse=parse,
            on_warning=on_warning,
        )

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for k, v in scope.get("headers", []):
            name = k.decode("latin-1").lower()
            value = v.decode("latin-1")
            if name == "cookie":
                cookies.append(value)  # HTTP/2 and proxies send several
            else:
                headers.setdefault(name, value)
        token = _consent.set(self._reader.read(headers, cookies))
        try:
            await self.app(scope, receive, send)  # the response body is sent in here
        finally:
            _consent.reset(token)


class WSGIConsentMiddleware:
    """WSGI middleware (Flask, Django WSGI, gunicorn). The consent stays set
    while the server iterates the response, so streaming bodies keep it."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        cookie: str = "consent",
        jurisdiction: Jurisdiction = None,
        category_map: Mapping[str, CategoryMap] | None = None,
        parse: Sequence[Parser] = (),
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.cookie = cookie
        self._reader = _Reader(
            cookie=cookie,
            jurisdiction=jurisdiction,
            category_map=category_map,
            parse=parse,
            on_warning=on_warning,
        )

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = {
            k[5:].replace("_", "-").lower(): v
            for k, v in environ.items()
            if k.startswith("HTTP_") and isinstance(v, str)
        }
        cookies = [environ["HTTP_COOKIE"]] if environ.get("HTTP_COOKIE") else []
        consent = self._reader.read(headers, cookies)
        ctx = contextvars.copy_context()
        ctx.run(_consent.set, consent)
        return _Body(ctx, ctx.run(self.app, environ, start_response))


class _Body:
    """The app's response iterable, iterated (and closed) inside the request's
    context (PEP 3333: the server calls ``close`` when done)."""

    def __init__(self, ctx: contextvars.Context, body: Iterable[bytes]) -> None:
        self._ctx = ctx
        self._body = body
        self._it: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._it is None:
            self._it = self._ctx.run(iter, self._body)
        return self._ctx.run(next, self._it)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            self._ctx.run(close)
