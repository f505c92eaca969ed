"""IAB strings and the plain JSON cookie, passed on for the collector to decode.

- TCF v2: the ``euconsent-v2`` cookie (IAB Europe, "TCF v2.2 Consent string
  and vendor list formats": base64url segments joined by ``.``, core segment
  first; the version field is the first 6 bits, so a v2 string starts ``C``).
- GPP: the ``__gpp`` cookie (IAB Tech Lab, "Global Privacy Platform",
  Consent String Specification: header ``D…`` then ``~``-joined sections).
- The site's own ``consent`` cookie (name configurable): a TCF string, or a
  JSON object of category -> true/false, passed as ``categoryPreferences``.

The SDK only checks the shape; the collector decodes the strings
(``consent.tcf``, ``consent.gpp``) and treats an undecodable one as no grant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from sdk_python.cmp.base import Reading, Unreadable, cookie_value

TCF_COOKIE = "euconsent-v2"
GPP_COOKIE = "__gpp"
TCF = re.compile(r"^C[A-Za-z0-9_-]{20,}(\.[A-Za-z0-9_-]+)*$")
GPP = re.compile(r"^D[A-Za-z0-9_.-]+(~[A-Za-z0-9_.-]*)*$")


def read_tcf(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, TCF_COOKIE)
    if value is None:
        return None
    if not TCF.match(value):
        raise Unreadable(f"{TCF_COOKIE} is not a TCF v2 string")
    return Reading("tcf", tc_string=value)


def read_gpp(cookies: Mapping[str, str]) -> Reading | None:
    value = cookie_value(cookies, GPP_COOKIE)
    if value is None:
        return None
    if not GPP.match(value):
        raise Unreadable(f"{GPP_COOKIE} is not a GPP string")
    return Reading("gpp", gpp_string=value)


def read_plain(cookies: Mapping[str, str], name: str) -> Reading | None:
    value = cookie_value(cookies, name)
    if value is None:
        return None
    if TCF.match(value):
        return Reading("tcf", tc_string=value)
    try:
        categories = json.loads(value)
    except ValueError:
        raise Unreadable(f"{name} is neither a TCF string nor JSON") from None
    if not isinstance(categories, dict) or not all(
        isinstance(v, bool) for v in categories.values()
    ):
        raise Unreadable(f"{name} is not an object of true/false")
    return Reading("json", raw_categories=categories)
