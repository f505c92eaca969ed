"""Shopify: the ``_tracking_consent`` cookie (Customer Privacy API).

Format (Shopify, Customer Privacy API and cookie list; v2.1): URL-encoded JSON
``{"con":{"CMP":{"a":"1","m":"0","p":"1","s":""}},"v":"2.1","region":"DEBY",
"purposes":{"a":true,"p":true,"m":false,"t":false},...}``. ``con.CMP`` holds
the visitor's choices: ``a`` analytics, ``m`` marketing, ``p`` preferences,
``s`` sale of data; ``"1"`` given, ``"0"`` declined, ``""`` not asked.
``purposes`` holds the effective values after the region's defaults (``t``:
sale of data). An explicit choice wins; otherwise ``purposes`` is read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "shopify"
COOKIE = "_tracking_consent"
CATEGORIES: CategoryMap = {
    "analytics": ("analytics",),
    "preferences": ("personalization",),
    "marketing": ADS,
    "sale_of_data": ADS,
}
_CMP = {"a": "analytics", "m": "marketing", "p": "preferences", "s": "sale_of_data"}
_PURPOSES = {"a": "analytics", "m": "marketing", "p": "preferences", "t": "sale_of_data"}


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        raise Unreadable(f"{COOKIE} is not JSON") from None
    if not isinstance(data, dict):
        raise Unreadable(f"{COOKIE} is not a JSON object")
    categories: dict[str, bool] = {}
    purposes = data.get("purposes")
    if isinstance(purposes, dict):
        for key, name in _PURPOSES.items():
            if isinstance(purposes.get(key), bool):
                categories[name] = purposes[key]
    con = data.get("con")
    cmp = con.get("CMP") if isinstance(con, dict) else None
    if isinstance(cmp, dict):
        for key, name in _CMP.items():
            flag = cmp.get(key)
            if flag in ("1", "0"):
                categories[name] = flag == "1"
            elif flag not in (None, ""):
                raise Unreadable(f"{COOKIE} con.CMP.{key} is not '1', '0' or ''")
    if not categories:
        raise Unreadable(f"{COOKIE} holds neither con.CMP nor purposes")
    return Reading(NAME, categories=categories)
