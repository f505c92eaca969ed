"""Complianz (WordPress): one ``cmplz_<category>`` cookie per category.

Format (Complianz, "Cookie names and what they do", complianz.io): cookies
``cmplz_functional``, ``cmplz_preferences``, ``cmplz_statistics``,
``cmplz_statistics-anonymous`` and ``cmplz_marketing``, each ``allow`` or
``deny``. Anonymous statistics need no consent and are not read.
"""

from __future__ import annotations

from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "complianz"
PREFIX = "cmplz_"
CATEGORIES: CategoryMap = {
    "functional": ("necessary",),
    "preferences": ("personalization",),
    "statistics": ("analytics",),
    "marketing": ADS,
}


def read(cookies: Mapping[str, str]) -> Reading | None:
    categories: dict[str, bool] = {}
    for category in CATEGORIES:
        value = cookie_value(cookies, PREFIX + category)
        if value is None:
            continue
        if value not in ("allow", "deny"):
            raise Unreadable(f"{PREFIX}{category} is neither allow nor deny")
        categories[category] = value == "allow"
    return Reading(NAME, categories=categories) if categories else None
