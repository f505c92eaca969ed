"""The seam every way in plugs into.

A source turns a request into messages and request facts and calls
``collector.pipeline.pipeline.Pipeline.ingest``:

    request --source--> [RawMessage, ...] + RequestFacts --Pipeline.ingest--> BatchResult

It authenticates the request (step 1 of the flow), reads what the request
itself says (batch context, browser cookies and headers, a webhook's
signature and delivery id), and encodes the result; errors are raised
(``collector.errors``) and turned into responses by ``collector.http.errors``.
``segment_http.py`` (the Segment-compatible ``/v1`` API) is the first; the
browser (``browser_http.py``, ``pixel.py``) and order-system webhooks
(``webhooks/``) follow the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute


class Source(Protocol):
    """A way in, as the HTTP app mounts it."""

    def routes(self) -> Sequence[BaseRoute]:
        """The routes this source answers (tried in order)."""
        ...
