"""Shared shapes of the CMP cookie parsers (pure: no I/O, no clock).

A vendor parser reads the cookies of one consent management platform and
returns a ``Reading``: the vendor's own category ids with granted (True) or
denied (False), or ``None`` when its cookie is absent. A cookie that is present
but cannot be read raises ``Unreadable`` with a reason (never the raw value).
``parse_consent_cookies`` (``sdk_python.cmp``) maps categories onto our purposes
through the vendor's ``CategoryMap`` and fails closed on ``Unreadable``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

PURPOSES = ("necessary", "analytics", "personalization", "advertising", "marketing")
CategoryMap = Mapping[str, tuple[str, ...]]
ADS = ("advertising", "marketing")
"""A "marketing", "targeting", "advertisement" or "sale of data" category of a
CMP covers both our ``advertising`` and ``marketing`` purposes: declining it is
an opt-out of sale/sharing under the US laws, and accepting it is what "accept
all" means for ads under GDPR."""


class Unreadable(ValueError):
    """A CMP cookie is present but cannot be read; ``args[0]`` says why."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What one CMP's cookies say. ``categories``: vendor category id (lower
    case) -> granted. ``gpc``: the CMP recorded a Global Privacy Control signal.
    ``purposes``: already in our purposes (a brand's own ``parse=`` hook)."""

    cmp: str
    categories: Mapping[str, bool] = field(default_factory=dict)
    purposes: Mapping[str, bool] = field(default_factory=dict)
    gpc: bool = False
    tc_string: str | None = None
    gpp_string: str | None = None
    raw_categories: Mapping[str, bool] = field(default_factory=dict)


Parser = Callable[[Mapping[str, str]], "Reading | None"]


def cookie_value(cookies: Mapping[str, str], name: str) -> str | None:
    """The cookie's value, percent-decoded once (CMPs store it URL-encoded)."""
    value = cookies.get(name)
    if value is None:
        return None
    return unquote(value.strip().strip('"'))


def to_purposes(categories: Mapping[str, bool], table: CategoryMap) -> dict[str, bool]:
    """Vendor categories onto our purposes; several categories may map to one
    purpose: a purpose is granted only if none of them is denied."""
    out: dict[str, bool] = {}
    for name, granted in categories.items():
        for purpose in table.get(name.lower(), ()):
            out[purpose] = out.get(purpose, True) and granted
    return out


def parse_cookie_header(*headers: str) -> dict[str, str]:
    """``Cookie`` header(s) as a dict (RFC 6265 §5.4: ``name=value; ...``). Every
    header counts (HTTP/2 sends one per cookie, proxies may add their own); for a
    name sent twice the first one wins, as browsers send the most specific path
    first. Values are not decoded (``cookie_value`` does that)."""
    out: dict[str, str] = {}
    for header in headers:
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key and key not in out:
                out[key] = value.strip()
    return out
