"""Consentry's Python SDK; a drop-in for ``segment.analytics``.

Porting is changing an import::

    import sdk_python as analytics
    analytics.write_key = "..."
    analytics.host = "http://127.0.0.1:8787"
    analytics.track(user_id="u1", event="Order Completed")
"""

from __future__ import annotations

from typing import Any

from sdk_python.aio import AsyncClient
from sdk_python.client import Client
from sdk_python.consent import ConsentMiddleware, WSGIConsentMiddleware
from sdk_python.messages import (
    Alias,
    Batch,
    ConsentCall,
    Group,
    Identify,
    Message,
    Page,
    Screen,
    Track,
)

__all__ = [
    "Alias",
    "AsyncClient",
    "Batch",
    "Client",
    "ConsentCall",
    "ConsentMiddleware",
    "Group",
    "Identify",
    "Message",
    "Page",
    "Screen",
    "Track",
    "WSGIConsentMiddleware",
    "alias",
    "consent",
    "flush",
    "group",
    "identify",
    "page",
    "screen",
    "shutdown",
    "track",
]

# Module-level settings, as in segment.analytics.
write_key: str | None = None
host: str | None = None
on_error = None
debug = False
send = True
sync_mode = False
gzip = True
_default: Client | None = None


def _client() -> Client:
    global _default
    if _default is None:
        _default = Client(
            write_key,
            host=host,
            on_error=on_error,
            debug=debug,
            send=send,
            sync_mode=sync_mode,
            gzip=gzip,
        )
    return _default


def track(*args: Any, **kwargs: Any) -> Any:
    return _client().track(*args, **kwargs)


def identify(*args: Any, **kwargs: Any) -> Any:
    return _client().identify(*args, **kwargs)


def group(*args: Any, **kwargs: Any) -> Any:
    return _client().group(*args, **kwargs)


def alias(*args: Any, **kwargs: Any) -> Any:
    return _client().alias(*args, **kwargs)


def page(*args: Any, **kwargs: Any) -> Any:
    return _client().page(*args, **kwargs)


def screen(*args: Any, **kwargs: Any) -> Any:
    return _client().screen(*args, **kwargs)


def consent(*args: Any, **kwargs: Any) -> Any:
    return _client().consent(*args, **kwargs)


def flush() -> None:
    _client().flush()


def shutdown() -> None:
    global _default
    if _default is not None:
        _default.shutdown()
        _default = None
