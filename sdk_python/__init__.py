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
from sdk_python.cmp import CmpConsent, parse_consent_cookies
from sdk_python.consent import ConsentMiddleware, WSGIConsentMiddleware
from sdk_python.messages import (
    Alias,
    Batch,
    ConsentCall,
    Group,
    Identify,
    Message,
    Page,
    RecipientConsent,
    Screen,
    SensitiveConsent,
    SeparateConsents,
    Track,
)

__all__ = [
    "Alias",
    "AsyncClient",
    "Batch",
    "Client",
    "CmpConsent",
    "ConsentCall",
    "ConsentMiddleware",
    "Group",
    "Identify",
    "Message",
    "Page",
    "RecipientConsent",
    "Screen",
    "SensitiveConsent",
    "SeparateConsents",
    "Track",
    "WSGIConsentMiddleware",
    "alias",
    "consent",
    "flush",
    "group",
    "identify",
    "join",
    "page",
    "parse_consent_cookies",
    "screen",
    "shutdown",
    "track",
]

# Module-level settings, as in segment.analytics (read when the default client
# is created, i.e. at the first call).
write_key: str | None = None
host: str | None = None
on_error = None
debug = False
log_handler = None
send = True
sync_mode = False
gzip = True
max_queue_size = 10_000
timeout: float = 15
max_retries = 10
proxies = None
thread = 1
upload_size = 100
upload_interval = 0.5
oauth_client_id = None
oauth_client_key = None
oauth_key_id = None
_default: Client | None = None


def _client() -> Client:
    global _default
    if _default is None:
        _default = Client(
            write_key,
            host=host,
            on_error=on_error,
            debug=debug,
            log_handler=log_handler,
            send=send,
            sync_mode=sync_mode,
            gzip=gzip,
            max_queue_size=max_queue_size,
            timeout=timeout,
            max_retries=max_retries,
            proxies=proxies,
            thread=thread,
            upload_size=upload_size,
            upload_interval=upload_interval,
            oauth_client_id=oauth_client_id,
            oauth_client_key=oauth_client_key,
            oauth_key_id=oauth_key_id,
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


def join() -> None:
    """Segment's module-level ``join``: send what is queued, stop the client."""
    shutdown()


def shutdown() -> None:
    global _default
    if _default is not None:
        _default.shutdown()
        _default = None
