"""OneTrust: the ``OptanonConsent`` cookie.

Format (OneTrust, "OneTrust Cookies", my.onetrust.com knowledge article
UUID-2dc719a8-4be5-8d16-1dc8-c7b4147b88e0): a URL-encoded query string such as
``isGpcEnabled=0&datestamp=...&version=202401.1.0&consentId=...&
interactionCount=1&groups=C0001:1,C0002:0,C0003:1,C0004:0&geolocation=DE;BY``;
``groups`` lists category ids with ``1`` (consented) or ``0`` (declined). The
default categories are C0001 strictly necessary, C0002 performance, C0003
functional, C0004 targeting, C0005 social media; ``SPD_BG`` is the US "sale of
personal data" group. ``isGpcEnabled=1`` records a Global Privacy Control
signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "onetrust"
COOKIE = "OptanonConsent"
CATEGORIES: CategoryMap = {
    "c0001": ("necessary",),
    "c0002": ("analytics",),
    "c0003": ("personalization",),
    "c0004": ADS,
    "c0005": ADS,
    "spd_bg": ADS,
}


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None:
        return None
    fields = parse_qs(value, keep_blank_values=True)
    groups = fields.get("groups")
    if not groups or not groups[0]:
        raise Unreadable(f"{COOKIE} has no groups")
    categories: dict[str, bool] = {}
    for entry in groups[0].split(","):
        group, sep, flag = entry.partition(":")
        if not sep or not group or flag not in ("0", "1"):
            raise Unreadable(f"{COOKIE} groups entry is not <id>:<0|1>")
        categories[group.strip().lower()] = flag == "1"
    gpc = fields.get("isGpcEnabled", ["0"])[0] == "1"
    return Reading(NAME, categories=categories, gpc=gpc)
