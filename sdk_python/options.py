"""Segment's ``Client`` arguments: honoured, mapped, or refused loudly.

``SEGMENT_ARGUMENTS`` lists every argument of ``segment.analytics.Client``
(analytics-python 2.3, ``segment/analytics/client.py``) with what we do with
it; the README's table is checked against it (``tests/sdk_python``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping

import httpx

log = logging.getLogger("consentry.sdk")

SEGMENT_ARGUMENTS: dict[str, str] = {
    "write_key": "honoured: HTTP Basic user, as Segment",
    "host": "honoured (default http://127.0.0.1:8787)",
    "debug": "honoured: sets the `consentry.sdk` logger to DEBUG",
    "max_queue_size": "honoured: messages held in memory; past it the `overflow` policy applies",
    "send": "honoured: False builds and counts messages but sends nothing",
    "on_error": "honoured: called with (exception, batch) for a batch refused for good",
    "gzip": "honoured (default True here; Segment's default is False)",
    "max_retries": "honoured: retries per batch before it is spooled (`spool`) or dropped",
    "sync_mode": "honoured: each call posts its message before returning",
    "timeout": "honoured: seconds per HTTP request",
    "proxies": 'honoured: requests-style {"http": url, "https": url}, mapped to httpx proxies',
    "thread": "1 honoured; more is accepted with a warning (one sender thread batches faster)",
    "upload_size": "honoured: messages per batch (as Segment), also the queue length that wakes the sender",
    "upload_interval": "honoured: seconds a partial batch waits before it is sent",
    "log_handler": "honoured: added to the `consentry.sdk` logger",
    "oauth_client_id": "refused (ValueError): the collector authenticates write keys",
    "oauth_client_key": "refused (ValueError)",
    "oauth_key_id": "refused (ValueError)",
    "oauth_auth_server": "refused (ValueError) when set",
    "oauth_scope": "refused (ValueError) when set",
    "max_total_backoff_duration": "honoured: cap in seconds on one batch's retry waits",
    "max_rate_limit_duration": "honoured: cap in seconds on one batch's waits after HTTP 429",
}


def check_segment_options(
    *,
    thread: int,
    oauth: Mapping[str, object | None],
    upload_size: int,
    upload_interval: float,
    max_queue_size: int,
) -> None:
    """Raise ``ValueError`` naming the argument for what we cannot honour."""
    given = sorted(k for k, v in oauth.items() if v is not None)
    if given:
        raise ValueError(
            f"{', '.join(given)}: OAuth is not supported; Consentry authenticates the write key"
        )
    if not isinstance(thread, int) or thread < 1:
        raise ValueError("thread must be an integer >= 1")
    if thread > 1:
        warnings.warn(
            f"thread={thread}: Consentry's client uses one sender thread (it batches and "
            "gzips faster than several); the value is ignored",
            stacklevel=3,
        )
    if not isinstance(upload_size, int) or upload_size < 1:
        raise ValueError("upload_size must be a number of messages >= 1 (Segment's meaning)")
    if upload_interval <= 0:
        raise ValueError("upload_interval must be a number of seconds > 0")
    if max_queue_size < 1:
        raise ValueError("max_queue_size must be >= 1")


def proxy_mounts(proxies: Mapping[str, str] | str | None) -> dict[str, httpx.HTTPTransport] | None:
    """requests-style ``proxies`` (``{"http": url, "https": url}``, or
    ``{"http://": url}``, or one URL for both) as httpx transport mounts."""
    if proxies is None:
        return None
    if isinstance(proxies, str):
        proxies = {"http": proxies, "https": proxies}
    mounts: dict[str, httpx.HTTPTransport] = {}
    for scheme, url in proxies.items():
        key = scheme if scheme.endswith("://") else f"{scheme}://"
        if key not in ("http://", "https://", "all://"):
            raise ValueError(f"proxies: unknown scheme {scheme!r} (use 'http' and 'https')")
        mounts[key] = httpx.HTTPTransport(proxy=url)
    return mounts
