"""The browser-only endpoints: GET pixels, the tag, CORS preflights.

Routes (besides the Segment API paths, which browsers share with servers):
- ``GET /v1/pixel/track``, ``/v1/pixel/page`` and RudderStack's
  ``/pixel/v1/track``, ``/pixel/v1/page``: always a 1x1 GIF with
  ``Cache-Control: no-store``; a rejected pixel is counted
  (``consentry_browser_requests{outcome="pixel_rejected"}``) and quarantined
  when its source is known, never shown as an error image;
- ``GET /v1/consentry.js``: the first-party tag;
- ``OPTIONS`` on every ingest path: the CORS preflight.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.errors import RequestError
from collector.runtime import Runtime
from collector.sources import feed
from collector.sources.browser import Browser
from collector.sources.pixel import GIF, pixel_message

_encoder = msgspec.json.Encoder()


class BrowserEndpoints:
    def __init__(self, rt: Runtime, browser: Browser) -> None:
        self.rt = rt
        self.browser = browser
        self._tag = resources.files("collector").joinpath("static/consentry.js").read_bytes()

    def _count(self, source: str, outcome: str) -> None:
        self.rt.metrics.browser.labels(source, outcome).inc()

    def pixel(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            await self._pixel(kind, request)
            return Response(
                GIF,
                media_type="image/gif",
                headers={"Cache-Control": "no-store, max-age=0"},
            )

        return endpoint

    async def _pixel(self, kind: str, request: Request) -> None:
        source = self.rt.sources.authenticate(request.query_params.get("writeKey"))
        if source is None:
            self._count("unknown", "pixel_rejected")
            return
        try:
            visit = self.browser.begin(request, source, always=True)
        except RequestError:
            return  # counted by the browser source (origin_refused, rate_limited)
        assert visit is not None
        raw = _encoder.encode(pixel_message(kind, request.query_params.multi_items()))
        (raw,) = self.browser.rewrite(visit, [raw])
        received = datetime.now(UTC)
        prepared, rejected = feed.prepare(self.rt, [raw], received_at=received)
        try:
            await feed.write(self.rt, source, prepared, rejected, received_at=received)
        except RequestError:
            self._count(source, "pixel_not_stored")
            return
        if rejected:
            self._count(source, "pixel_rejected")

    async def tag(self, request: Request) -> Response:
        return Response(
            self._tag,
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def preflight(self, request: Request) -> Response:
        key = request.query_params.get("writeKey")
        source = self.rt.sources.authenticate(key) if key else None
        if key and source is None:
            return Response(status_code=403)
        return self.browser.preflight(request, source)
