"""Plain SHA-256 of normalized email and phone, for recipients that demand it.

Meta's Conversions API and Google's enhanced conversions match on unsalted
SHA-256 hex of normalized values. That is *not* a pseudonym (anyone can
dictionary-attack it), so it exists only here, is applied per event at egress
for destinations that declare it, and only with the ``advertising`` purpose
consented; the collector never stores or links by it.
"""

from __future__ import annotations

import hashlib

from identity.normalize import NormalizeOptions, normalize


def meta_capi_hash(kind: str, value: str, options: NormalizeOptions | None = None) -> str:
    """Email: trimmed, lowercased. Phone: digits only, with country code, no '+'."""
    normalized = normalize(kind, value, options or NormalizeOptions())
    if kind == "phone":
        normalized = normalized.lstrip("+")
    return hashlib.sha256(normalized.encode()).hexdigest()


def google_enhanced_conversions_hash(
    kind: str, value: str, options: NormalizeOptions | None = None
) -> str:
    """Email: lowercased, gmail dots and +suffix removed. Phone: E.164 with '+'."""
    opts = options or NormalizeOptions()
    if kind == "email":
        opts = NormalizeOptions(fold_gmail=True, phone_region=opts.phone_region)
    return hashlib.sha256(normalize(kind, value, opts).encode()).hexdigest()
