"""Browsers as a source: CORS per source, beacons, pixels, the request's signals,
the first-party anonymous-id cookie and rate limits.

A request is a *browser request* when it carries an ``Origin`` header (every
cross-origin ``fetch``, XHR and ``sendBeacon`` POST does) or arrives at a
beacon or pixel path. For those:

- **CORS** (Fetch Standard, "CORS protocol"): the origin must be in the
  authenticated source's ``allowed_origins``; then responses carry
  ``Access-Control-Allow-Origin: <origin>``, ``Access-Control-Allow-Credentials:
  true`` and ``Vary: Origin``. An origin not allowed is refused with 403 and no
  CORS headers, and nothing is stored. A preflight (``OPTIONS``) is answered
  204 with the allowed methods and headers when the origin is allowed for the
  source named by ``?writeKey=`` (or, without one, for any source).
- **Signals of the request itself**: ``Sec-GPC: 1`` (Global Privacy Control,
  W3C draft, section "The Sec-GPC header field") becomes
  ``context.consent.gpc = true`` on every message of the request; the client
  address (from the connection, or ``X-Forwarded-For`` through
  ``[server] trusted_proxies`` only) fills ``context.ip`` when the message has
  none; the pipeline truncates it as for every source.
- **The cookie**: see ``CookiePolicy``.
- **Rate limits**: per client address and per source (``RateLimiter``), 429
  with ``Retry-After``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.config import BrowserConfig, Config
from collector.errors import RequestError
from collector.sources.cookies import request_consent
from collector.sources.http import client_address
from collector.sources.ratelimit import RateLimiter
from consent.errors import ConsentSignalError
from consent.purposes import DEFAULT_CATEGORY_MAP
from consent.signals import read_context
from sdk_python.cmp import combine_consent

ALLOWED_METHODS = "GET, POST, OPTIONS"
# Content-Type and Authorization (Basic write key); RudderStack's SDK adds AnonymousId.
ALLOWED_HEADERS = "Content-Type, Authorization, AnonymousId"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class RateLimited(RequestError):
    def __init__(self, retry_after: int, visit: Visit) -> None:
        super().__init__(429, f"too many requests: retry after {retry_after} s", "$")
        self.retry_after = retry_after
        self.visit = visit  # an allowed origin still gets its CORS headers


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request says beside its body."""

    client_ip: str | None
    gpc: bool
    origin: str | None
    cookie_id: str | None
    # The page's consent from its CMP's cookies (sdk_python.cmp), as context.consent.
    cmp_consent: Mapping[str, Any] | None = None
    # Cookies present but unreadable: (reason, JSON path), for the response's warnings.
    cmp_warnings: Sequence[tuple[str, str]] = ()


@dataclass(slots=True)
class Visit:
    """One browser request in progress: its facts, its source and what the cookie
    should become (``"set"``, ``"clear"`` or None: untouched)."""

    facts: RequestFacts
    source: str
    cors: bool
    cookie_id: str | None = None
    cookie_action: str | None = None


class CookiePolicy:
    """The first-party anonymous-id cookie (``HttpOnly; Secure; SameSite=Lax``).

    ePrivacy Directive Art. 5(3) requires consent to store or read information
    on a person's device unless strictly necessary for a service they asked
    for; an analytics id is not. So the id is used and set only when the event
    itself grants the configured purpose (``[browser] cookie_purpose``); a
    denial of that purpose expires the cookie; otherwise the request gets a
    one-off id that is never persisted. Pure apart from ``uuid4``."""

    def __init__(self, config: BrowserConfig) -> None:
        self.config = config

    def decide(self, messages: Sequence[Mapping[str, Any]]) -> bool | None:
        """True: some message grants the purpose and none denies it; False: some
        message denies it; None: no message speaks of it."""
        if not self.config.cookie:
            return None
        verdict: bool | None = None
        for message in messages:
            context = message.get("context")
            try:
                signals = read_context(
                    context if isinstance(context, dict) else None,
                    category_map=DEFAULT_CATEGORY_MAP,
                )
            except ConsentSignalError:
                continue  # the pipeline rejects the message with its path
            state = signals.purposes.get(self.config.cookie_purpose)
            if state is False:
                return False
            if state is True:
                verdict = True
        return verdict

    def header(self, value: str | None) -> str:
        """A ``Set-Cookie`` value; ``None`` expires the cookie."""
        c = self.config
        parts = [f"{c.cookie_name}={value or ''}", "Path=/"]
        parts.append(f"Max-Age={c.cookie_max_age_days * 86400 if value else 0}")
        if c.cookie_domain:
            parts.append(f"Domain={c.cookie_domain}")
        parts += ["HttpOnly", "Secure", "SameSite=Lax"]
        return "; ".join(parts)


def apply_facts(
    message: dict[str, Any], facts: RequestFacts, anonymous_id: str | None
) -> dict[str, Any]:
    """The request's signals written into one decoded message (pure): the client
    address when the message has none; the CMP cookies' consent combined with
    the message's own (``combine_consent``: a category is granted only if
    neither denies it); ``gpc`` from ``Sec-GPC``; ``anonymous_id`` when the
    message names nobody."""
    context = message.get("context")
    if context is None:
        context = {}
    if isinstance(context, dict):
        context = dict(context)
        if facts.client_ip and "ip" not in context:
            context["ip"] = facts.client_ip
        consent = context.get("consent")
        if consent is None or isinstance(consent, dict):
            ambient = dict(facts.cmp_consent or {})
            if facts.gpc:
                ambient["gpc"] = True
            if ambient:
                context["consent"] = combine_consent(consent or {}, ambient)
        message["context"] = context
    if anonymous_id and not message.get("userId") and not message.get("anonymousId"):
        message["anonymousId"] = anonymous_id
    return message


class Browser:
    """CORS, signals, cookie and limits for the browser-facing endpoints."""

    def __init__(
        self,
        config: Config,
        origins: Mapping[str, Sequence[str]],
        *,
        count: Callable[[str, str], None] | None = None,
    ) -> None:
        """``count(source, outcome)``: origin_refused, rate_limited, cookie_set,
        cookie_cleared (``consentry_browser_requests``)."""
        self.config = config
        self._count = count or (lambda source, outcome: None)
        self.origins = {name: frozenset(o) for name, o in origins.items()}
        self.any_origin = frozenset().union(*self.origins.values()) if self.origins else frozenset()
        self.cookie = CookiePolicy(config.browser)
        self.limiter = RateLimiter(
            config.browser.rate_limit_per_ip, config.browser.rate_limit_per_source
        )

    # -- requests ------------------------------------------------------------
    def is_browser(self, request: Request) -> bool:
        return "origin" in request.headers

    def facts(self, request: Request) -> RequestFacts:
        cookie = request.cookies.get(self.config.browser.cookie_name)
        # The CMP cookies' consent, read as the API path reads it (every Cookie
        # header); needed here too: the first-party cookie is decided on it.
        cmp, warnings = request_consent(request.headers.getlist("cookie"))
        return RequestFacts(
            client_ip=client_address(request, self.config),
            gpc=request.headers.get("sec-gpc", "").strip() == "1",
            origin=request.headers.get("origin"),
            cookie_id=cookie if cookie and _COOKIE_VALUE.match(cookie) else None,
            cmp_consent=cmp,
            cmp_warnings=warnings,
        )

    def begin(self, request: Request, source: str, *, always: bool = False) -> Visit | None:
        """None for a server client; raises RequestError(403) for an origin the
        source does not allow and RateLimited when over a limit."""
        if not always and not self.is_browser(request):
            return None
        facts = self.facts(request)
        cors = False
        if facts.origin is not None:
            if facts.origin not in self.origins.get(source, frozenset()):
                self._count(source, "origin_refused")
                raise RequestError(
                    403,
                    f"origin {facts.origin!r} is not allowed for source {source!r}:"
                    " add it to the source's allowed_origins",
                    "$.headers.Origin",
                )
            cors = True
        visit = Visit(facts, source, cors)
        retry = self.limiter.hit(source, facts.client_ip)
        if retry is not None:
            self._count(source, "rate_limited")
            raise RateLimited(retry, visit)
        return visit

    def rewrite(self, visit: Visit, raws: Sequence[bytes]) -> list[bytes]:
        """The request's facts into each message; the cookie decided."""
        decoded: list[Any] = []
        for raw in raws:
            try:
                decoded.append(_decoder.decode(raw))
            except msgspec.DecodeError:
                decoded.append(None)
        # Request facts first, so the CMP cookies' consent counts for the cookie.
        decoded = [apply_facts(m, visit.facts, None) if isinstance(m, dict) else m for m in decoded]
        verdict = self.cookie.decide([m for m in decoded if isinstance(m, dict)])
        if verdict is True:
            visit.cookie_id = visit.facts.cookie_id or str(uuid.uuid4())
            if visit.facts.cookie_id is None:
                visit.cookie_action = "set"
        elif verdict is False and visit.facts.cookie_id is not None:
            visit.cookie_action = "clear"
        one_off = visit.cookie_id or str(uuid.uuid4())
        out: list[bytes] = []
        for raw, message in zip(raws, decoded, strict=True):
            if isinstance(message, dict):
                if not message.get("userId") and not message.get("anonymousId"):
                    message["anonymousId"] = one_off
                out.append(_encoder.encode(message))
            else:
                out.append(raw)  # rejected by the pipeline with its path
        return out

    # -- responses -----------------------------------------------------------
    def finish(self, visit: Visit | None, response: Response) -> Response:
        if visit is None:
            return response
        if visit.cors and visit.facts.origin:
            response.headers["Access-Control-Allow-Origin"] = visit.facts.origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        if visit.cookie_action == "set":
            response.headers.append("Set-Cookie", self.cookie.header(visit.cookie_id))
            self._count(visit.source, "cookie_set")
        elif visit.cookie_action == "clear":
            response.headers.append("Set-Cookie", self.cookie.header(None))
            self._count(visit.source, "cookie_cleared")
        return response

    def error(self, visit: Visit | None, exc: RequestError, response: Response) -> Response:
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
            visit = visit or exc.visit
        return self.finish(visit, response)

    def preflight(self, request: Request, source: str | None) -> Response:
        origin = request.headers.get("origin")
        allowed = self.origins.get(source, frozenset()) if source else self.any_origin
        if origin is None or origin not in allowed:
            return Response(status_code=403)
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )
