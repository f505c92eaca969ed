"""CookieYes: the ``cookieyes-consent`` cookie.

Format (CookieYes help centre, "Cookies set by CookieYes"): comma-separated
``key:value`` pairs, e.g. ``consentid:ZTNm…,consent:yes,action:yes,
necessary:yes,functional:no,analytics:yes,performance:no,advertisement:no,
other:no``; each category ``yes`` or ``no``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "cookieyes"
COOKIE = "cookieyes-consent"
CATEGORIES: CategoryMap = {
    "necessary": ("necessary",),
    "functional": ("personalization",),
    "analytics": ("analytics",),
    "performance": ("analytics",),
    "advertisement": ADS,
}
_NOT_CATEGORIES = frozenset({"consentid", "consent", "action", "rejected", "lastrenewedtime"})


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None:
        return None
    categories: dict[str, bool] = {}
    for entry in value.split(","):
        key, sep, flag = entry.partition(":")
        key = key.strip().lower()
        if not sep or not key:
            raise Unreadable(f"{COOKIE} entry is not <key>:<value>")
        if key in _NOT_CATEGORIES:
            continue
        if flag.strip() not in ("yes", "no"):
            raise Unreadable(f"{COOKIE} category is neither yes nor no")
        categories[key] = flag.strip() == "yes"
    if not categories:
        raise Unreadable(f"{COOKIE} holds no category")
    return Reading(NAME, categories=categories)
