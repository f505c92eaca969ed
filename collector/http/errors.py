"""Errors become responses here, and only here (Starlette exception handlers).

Endpoints raise ``collector.errors.RequestError`` subclasses; the handler
answers with the error's status and ``{"error": message, "path": JSON path}``
(sdk_python.messages.ErrorBody). A browser request keeps its CORS headers and
a rate-limited one gets ``Retry-After`` (collector.sources.browser), so the
page can read why it was refused.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.errors import RequestError
from collector.sources.browser import Browser
from sdk_python.messages import ErrorBody

_encoder = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


def error_response(exc: RequestError) -> Response:
    """The response for a refused request: its status and ErrorBody."""
    return json_response(ErrorBody(error=exc.message, path=exc.path), exc.status)


def handlers(browser: Browser) -> dict[Any, Any]:
    """Exception handlers for the app: RequestError -> ErrorBody response,
    with the browser's headers when the endpoint recorded a visit
    (``request.state.visit``)."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        visit = getattr(request.state, "visit", None)
        return browser.error(visit, exc, error_response(exc))

    return {RequestError: refused}
