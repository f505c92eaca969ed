"""Cookiebot: the ``CookieConsent`` cookie.

Format (Cookiebot developer docs, "The CookieConsent cookie"): a JavaScript
object literal, URL-encoded, not JSON: ``{stamp:'-3LMbmN…==',necessary:true,
preferences:false,statistics:true,marketing:false,method:'explicit',ver:1,
utc:1700000000000,region:'de'}``: unquoted keys, single-quoted strings. The
value ``-1`` means the visitor is outside the regions where the site asks for
consent: no signal. Categories: necessary, preferences, statistics, marketing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sdk_python.cmp.base import ADS, CategoryMap, Reading, Unreadable, cookie_value

NAME = "cookiebot"
COOKIE = "CookieConsent"
CATEGORIES: CategoryMap = {
    "necessary": ("necessary",),
    "preferences": ("personalization",),
    "statistics": ("analytics",),
    "marketing": ADS,
}
_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*('(?:[^'\\]|\\.)*'|[^,{}']*)\s*(?:,|$)")


def object_literal(text: str) -> dict[str, str | bool]:
    """A flat JavaScript object literal with identifier keys and string, number
    or boolean values; raises ``Unreadable`` for anything else."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise Unreadable(f"{COOKIE} is not an object literal")
    body = text[1:-1].strip()
    out: dict[str, str | bool] = {}
    pos = 0
    while pos < len(body):
        match = _PAIR.match(body, pos)
        if match is None or match.end() == pos:
            raise Unreadable(f"{COOKIE} is not an object literal")
        key, raw = match.group(1), match.group(2).strip()
        out[key] = raw == "true" if raw in ("true", "false") else raw.strip("'")
        pos = match.end()
    return out


def read(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, COOKIE)
    if value is None or value.strip() == "-1":
        return None
    fields = object_literal(value)
    categories = {k: v for k, v in fields.items() if k in CATEGORIES and isinstance(v, bool)}
    if not categories:
        raise Unreadable(f"{COOKIE} holds no category")
    return Reading(NAME, categories=categories)
