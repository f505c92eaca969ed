"""Klaro: the ``klaro`` cookie (``storageName`` in the Klaro config).

Format (klaro.org, "Annotated Config File": ``storageMethod: 'cookie'``,
``storageName: 'klaro'``): URL-encoded JSON mapping each *service* name to
``true``/``false``. Services, not purposes: the default map knows common
service names; a brand maps its own with ``category_map={"klaro": {...}}``
(service names of its Klaro config -> our purposes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "klaro"
COOKIE = "klaro"
CATEGORIES: CategoryMap = {
    "google-analytics": ("analytics",),
    "googleanalytics": ("analytics",),
    "matomo": ("analytics",),
    "plausible": ("analytics",),
    "analytics": ("analytics",),
    "statistics": ("analytics",),
    "google-ads": ADS,
    "googleads": ADS,
    "facebook-pixel": ADS,
    "meta-pixel": ADS,
    "tiktok-pixel": ADS,
    "marketing": ADS,
    "advertising": ADS,
    "functional": ("personalization",),
    "preferences": ("personalization",),
}


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None:
        return None
    try:
        services = json.loads(value)
    except ValueError:
        raise Unreadable(f"{COOKIE} is not JSON") from None
    if not isinstance(services, dict) or not all(isinstance(v, bool) for v in services.values()):
        raise Unreadable(f"{COOKIE} is not an object of true/false")
    return Reading(NAME, categories={str(k).lower(): v for k, v in services.items()})
