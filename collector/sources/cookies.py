"""Consent from the cookies a browser sent with a request to the collector.

The CMP cookie parsers live in ``sdk_python.cmp`` (one module per vendor, shared
with the SDK's consent middleware); this module applies them to a request:
every ``Cookie`` header is read (RFC 6265 §5.4; HTTP/2 sends one per cookie),
the result is combined with each message's own ``context.consent`` by
``combine_consent`` (a purpose is granted only if neither denies it; GPC is
never dropped), and a cookie that cannot be read is a warning that fails closed
(grants nothing, and counts as an opt-out of sale/sharing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sdk_python.cmp import combine_consent, parse_consent_cookies, parse_cookie_header

COOKIE_PATH = "$.cookie"


def request_consent(
    cookie_headers: Iterable[str], *, jurisdiction: str | None = None
) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """``(context.consent from the cookies or None, [(warning, "$.cookie")])``."""
    headers = [h for h in cookie_headers if h]
    if not headers:
        return None, []
    found = parse_consent_cookies(parse_cookie_header(*headers), jurisdiction=jurisdiction)
    return found.context(), [(w, COOKIE_PATH) for w in found.warnings]


def with_request_consent(
    context: Mapping[str, Any] | None, consent: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """A message's context with the request's consent combined into it."""
    if not consent:
        return dict(context) if context is not None else None
    out = dict(context or {})
    explicit = out.get("consent")
    out["consent"] = (
        combine_consent(explicit, consent) if isinstance(explicit, Mapping) else dict(consent)
    )
    return out
