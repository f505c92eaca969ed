"""The Starlette app: the sources' routes, the admin and operations endpoints,
the forwarder's lifespan, and errors handled once (collector.http.errors)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from collector.access.principals import Principals
from collector.http import errors
from collector.http.admin import AdminApi
from collector.http.erase_api import EraseApi
from collector.http.guard import Guard
from collector.http.ops import Ops
from collector.runtime import Runtime
from collector.sources.browser import Browser
from collector.sources.browser_http import BrowserEndpoints
from collector.sources.segment_http import SegmentHttpSource
from collector.sources.webhooks.endpoint import Webhooks

log = logging.getLogger("consentry.collector")


def create_app(runtime: Runtime, *, forward: bool = True, deliver: bool = True) -> Starlette:
    """``forward``: this server forwards (and fans erasures out); ``deliver``:
    this process is the one that reads the outbox (one worker among several)."""
    config = runtime.config
    principals = Principals.from_config(
        config.access, admin_token_env=config.server.admin_token_env
    )
    guard = Guard(principals)
    browser = Browser(
        config,
        {s.name: s.allowed_origins for s in config.effective_sources() if s.type == "http_api"},
        count=lambda source, outcome: runtime.metrics.browser.labels(source, outcome).inc(),
    )
    segment = SegmentHttpSource(runtime, browser)
    pages = BrowserEndpoints(runtime, browser)
    webhooks = Webhooks(runtime, browser.limiter)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        forwarder = runtime.make_forwarder() if forward else None
        if forwarder is not None:
            await forwarder.start(deliver=deliver)
        try:
            yield
        finally:
            if forwarder is not None:
                await forwarder.stop()

    ingest = segment.routes()
    routes = [
        *ingest,
        *(Route(r.path, pages.preflight, methods=["OPTIONS"]) for r in ingest),
        *(
            Route(path, pages.pixel(kind), methods=["GET"])
            for kind in ("track", "page")
            for path in (f"/v1/pixel/{kind}", f"/pixel/v1/{kind}")
        ),
        Route("/v1/consentry.js", pages.tag, methods=["GET"]),
        Route("/v1/webhooks/{source}", webhooks.receive, methods=["POST"]),
        *segment.consent_routes(),
        *EraseApi(runtime, guard).routes(),
        *Ops(runtime).routes(),
        *AdminApi(runtime, guard).routes(),
        *_console(runtime, principals),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=errors.handlers(browser))


def _console(runtime: Runtime, principals: Principals) -> list[Route]:
    """The console's routes; none (logged) when jinja2/itsdangerous are missing
    from an environment installed before they became dependencies."""
    try:
        from collector.console.pages import Console
    except ImportError as exc:
        log.error("the console at /console is off: %s (pip install -e .)", exc)
        return []
    return Console(runtime, principals).routes()
