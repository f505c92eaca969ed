"""Didomi: the ``didomi_token`` cookie.

Format (Didomi developer docs, "Didomi Consent String"; the ``didomi_token``
that the binary ``didomi_dcs`` replaces): base64 of a JSON object whose
``purposes`` (and ``purposes_li``) hold ``{"enabled": [...], "disabled": [...]}``
lists of purpose ids: IAB TCF purposes by Didomi name (``cookies``,
``select_basic_ads``, ``create_ads_profile``, ``select_personalized_ads``,
``measure_ad_performance``, ``create_content_profile``,
``select_personalized_content``, ``measure_content_performance``,
``market_research``, ``improve_products``) and the site's custom purposes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "didomi"
COOKIE = "didomi_token"
CATEGORIES: CategoryMap = {
    "select_basic_ads": ADS,
    "create_ads_profile": ADS,
    "select_personalized_ads": ADS,
    "measure_ad_performance": ("advertising",),
    "marketing": ADS,
    "advertising": ADS,
    "create_content_profile": ("personalization",),
    "select_personalized_content": ("personalization",),
    "measure_content_performance": ("analytics",),
    "market_research": ("analytics",),
    "improve_products": ("analytics",),
    "analytics": ("analytics",),
    "audience_measurement": ("analytics",),
}


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(
            value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
        )
        token = json.loads(raw)
    except (binascii.Error, ValueError):
        raise Unreadable(f"{COOKIE} is not base64 JSON") from None
    purposes = token.get("purposes") if isinstance(token, dict) else None
    if not isinstance(purposes, dict):
        raise Unreadable(f"{COOKIE} has no purposes")
    categories: dict[str, bool] = {}
    for key, granted in (("enabled", True), ("disabled", False)):
        ids = purposes.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise Unreadable(f"{COOKIE} purposes.{key} is not a list of ids")
        for purpose in ids:
            name = purpose.lower()
            categories[name] = categories.get(name, True) and granted
    return Reading(NAME, categories=categories)
