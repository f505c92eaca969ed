"""Finding personal identifiers anywhere in a message (pure).

Brands put identifiers where no schema expects them: an email in
``properties.contact``, a phone number in a free-text note, an address in a
page URL's query string (``?email=jane%40example.com``), a card number in an
order comment. This module finds them by shape and by key; the collector's
pipeline decides what to do with each finding (:mod:`collector.pipeline.scrub`).

Kinds found (``Kind``):

- ``email``: ``local@domain.tld``, also embedded in longer text and with the
  ``@`` percent-encoded (``%40``); normalized to the decoded, lowercased address.
- ``phone``: E.164 (``+86 138 0013 8000``, ``%2B`` for ``+`` in URLs) anywhere;
  national formats (``138 0013 8000``) only when a region is configured
  (``[identity] phone_region``). A candidate counts only if libphonenumber
  says it is a *valid* number; normalized to E.164.
- ``cn_resident_id``: PRC resident identity numbers, 18 characters with a
  valid ISO 7064 MOD 11-2 check digit (GB 11643-1999) and a plausible birth date.
- ``card``: payment card numbers, 13-19 digits (spaces or hyphens allowed
  between groups) that pass the Luhn check (ISO/IEC 7812-1).
- ``device_id``: values under ``context.device.advertisingId`` /
  ``context.device.id`` (IDFA, GAID) and keys such as ``idfa`` or ``deviceId``.

Keys name identifiers too: a value under ``Email``, ``emailAddress``,
``e_mail``, ``phoneNumber``, ``mobile``, ... (matched case-insensitively, with
``_``, ``-``, ``.`` and spaces ignored) is taken whole as that kind, whatever
its shape.

Cost: every string first passes a cheap pre-filter (an ``@``, a ``%40`` or a
run of digits); only strings that pass meet the regular expressions and
libphonenumber. A finding never carries the value into a message: reasons
and paths built here (:func:`redact_path`, :func:`redact_text`) mask whatever
looks like an identifier.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

import msgspec
import phonenumbers

Kind = Literal["email", "phone", "cn_resident_id", "card", "device_id"]
KINDS: tuple[Kind, ...] = ("email", "phone", "cn_resident_id", "card", "device_id")
PathKey = str | int
Path = tuple[PathKey, ...]

# Keys that name an identifier, after folding (lowercase; _ - . and spaces removed).
_KEY_KINDS: dict[str, Kind] = {
    **dict.fromkeys(
        (
            "email",
            "emailaddress",
            "emailaddr",
            "mail",
            "useremail",
            "customeremail",
            "contactemail",
            "billingemail",
            "shippingemail",
        ),
        "email",
    ),
    **dict.fromkeys(
        (
            "phone",
            "phonenumber",
            "phoneno",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "mobileno",
            "cellphone",
            "cell",
            "tel",
            "telephone",
            "msisdn",
            "contactphone",
            "billingphone",
            "shippingphone",
        ),
        "phone",
    ),
    **dict.fromkeys(
        ("idcard", "idcardnumber", "residentid", "shenfenzheng", "sfz"), "cn_resident_id"
    ),
    **dict.fromkeys(("cardnumber", "creditcard", "creditcardnumber", "pan", "ccnumber"), "card"),
    **dict.fromkeys(("advertisingid", "idfa", "idfv", "gaid", "adid", "deviceid"), "device_id"),
}
_FOLD = str.maketrans("", "", "_-. ")

_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9])"
)
# A digit run that may be a phone or card number: optional + (or %2B), then at
# least 7 characters of digits and separators, not glued to other word characters.
_DIGIT_RUN = re.compile(r"\d[\d \-()%]{5,}\d")
_NUMBER = re.compile(r"(?<![A-Za-z0-9])(?:\+|%2[Bb])?\(?\d(?:[\d \-()]|%20){5,}\d(?![A-Za-z0-9])")
_CN_ID = re.compile(
    r"(?<![A-Za-z0-9])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"\d{3}[\dXx](?![A-Za-z0-9])"
)
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}|^\d{1,2}-\d{1,2}-\d{4}")
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"
_MASKS: dict[Kind, str] = {
    "email": "<email>",
    "phone": "<phone>",
    "cn_resident_id": "<id-number>",
    "card": "<card-number>",
    "device_id": "<device-id>",
}


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What to look for. ``region``: ISO 3166-1 alpha-2 for national phone
    formats (None: E.164 only). ``kinds``: the kinds looked for. ``skip``: path
    prefixes not scanned (consent strings, fields the caller handles itself)."""

    region: str | None = None
    kinds: frozenset[Kind] = frozenset(KINDS)
    skip: frozenset[Path] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Span:
    """An identifier at ``text[start:end]``; ``normalized`` is its canonical
    form (what a pseudonym is derived from), never logged."""

    kind: Kind
    start: int
    end: int
    normalized: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A value holding identifiers: at ``path`` (keys and list indices from the
    message root), ``text`` as scanned (the value as sent, or ``str()`` of a
    number under an identifier key), the spans in order, not overlapping.
    ``whole``: the key names the identifier, so the whole value is one span."""

    path: Path
    text: str
    spans: tuple[Span, ...]
    whole: bool = False


def key_kind(key: str) -> Kind | None:
    """The identifier kind a key names (``Email``, ``e_mail``, ``phoneNumber``, ...)."""
    return _KEY_KINDS.get(key.translate(_FOLD).lower())


def luhn_ok(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812-1) over a string of ASCII digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def cn_resident_id_ok(text: str) -> bool:
    """18 characters whose last is the GB 11643-1999 (ISO 7064 MOD 11-2) check character."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(text[:17], _CN_WEIGHTS, strict=True))
    return _CN_CHECK[total % 11] == text[17].upper()


def prefilter(text: str) -> bool:
    """Cheap test run before any expensive pattern: could ``text`` hold an
    identifier at all (an ``@``, a ``%40``, or a run of at least seven digits
    and separators)?"""
    return "@" in text or "%40" in text or _DIGIT_RUN.search(text) is not None


def scan_text(text: str, options: ScanOptions = ScanOptions()) -> tuple[Span, ...]:
    """Identifiers found by shape in one string, in order, not overlapping."""
    if not prefilter(text):
        return ()
    kinds = options.kinds
    spans: list[Span] = []
    if "email" in kinds and ("@" in text or "%40" in text):
        for m in _EMAIL.finditer(text):
            spans.append(Span("email", m.start(), m.end(), unquote(m.group()).lower()))
    if "cn_resident_id" in kinds:
        for m in _CN_ID.finditer(text):
            if cn_resident_id_ok(m.group()) and not _overlaps(spans, m.start(), m.end()):
                spans.append(Span("cn_resident_id", m.start(), m.end(), m.group().upper()))
    if "phone" in kinds or "card" in kinds:
        for m in _NUMBER.finditer(text):
            if _overlaps(spans, m.start(), m.end()):
                continue
            span = _number(m.group(), m.start(), options)
            if span is not None:
                spans.append(span)
    spans.sort(key=lambda s: s.start)
    return tuple(spans)


def _overlaps(spans: Sequence[Span], start: int, end: int) -> bool:
    return any(s.start < end and start < s.end for s in spans)


def _number(raw: str, start: int, options: ScanOptions) -> Span | None:
    """A phone or card number in a candidate digit run, or None."""
    if _DATE.match(raw):
        return None
    end = start + len(raw)
    if raw.startswith("(") and raw.count("(") != raw.count(")"):
        raw, start = raw[1:], start + 1  # an opening parenthesis of the text around it
    clean = raw.replace("%20", " ").replace("%2B", "+").replace("%2b", "+")
    digits = "".join(c for c in clean if c.isdigit())
    international = clean.startswith("+")
    if (
        "card" in options.kinds
        and not international
        and 13 <= len(digits) <= 19
        and not any(c in clean for c in "()")
        and luhn_ok(digits)
    ):
        return Span("card", start, end, digits)
    if "phone" not in options.kinds or (not international and options.region is None):
        return None
    if len(digits) < 7 or len(digits) > 15:
        return None
    try:
        number = phonenumbers.parse(clean, None if international else options.region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Span("phone", start, end, e164)


def normalize_whole(kind: Kind, text: str, options: ScanOptions = ScanOptions()) -> str:
    """The canonical form of a value taken whole (its key names the kind):
    what a span found by shape would give when the value has that shape,
    otherwise the NFC, trimmed, lowercased text (still never sent raw)."""
    folded = unicodedata.normalize("NFC", text).strip()
    if kind == "email":
        return unquote(folded).lower()
    if kind == "phone":
        try:
            number = phonenumbers.parse(folded, None if folded.startswith("+") else options.region)
        except phonenumbers.NumberParseException:
            return folded.lower()
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return folded.lower()
    if kind in ("card", "cn_resident_id"):
        return "".join(c for c in folded if c.isalnum()).upper()
    return folded


def _placeholder_value(value: object) -> bool:
    if value is None or value == "":
        return True
    return isinstance(value, str) and value.strip().lower() in (
        "null",
        "undefined",
        "none",
        "nil",
        "",
    )


def scan(
    message: Mapping[str, Any],
    options: ScanOptions = ScanOptions(),
    *,
    sections: Sequence[str] = ("properties", "traits", "context"),
) -> list[Finding]:
    """Every value under ``sections`` of a decoded message that holds an
    identifier, found by key or by shape, depth first in document order."""
    found: list[Finding] = []
    roots = [(s, v) for s in sections if isinstance(v := message.get(s), dict | list)]
    if not roots or _nothing_to_find([v for _, v in roots]):
        return found
    for section, value in roots:
        if (section,) not in options.skip:
            _walk(value, (section,), None, options, found)
    return found


def _nothing_to_find(values: list[Any]) -> bool:
    """The whole-message pre-filter: one encode, two substring searches, one
    digit-run search and the object keys read out of the bytes. True when no
    value can hold an identifier (no ``@``, ``%40`` or digit run) and no key
    names one (``device`` too: ``context.device.id``): the walk is skipped,
    which is the common case."""
    try:
        blob = _blob_encoder.encode(values)
    except (TypeError, ValueError, OverflowError):
        return False
    if b"@" in blob or b"%40" in blob or b"\\" in blob:  # escapes: not read here
        return False
    if b"0000000" in blob.translate(_RUN_TABLE):  # seven digits or separators in a row
        return False
    for key in _JSON_KEY.findall(blob):
        named = _KEY_BYTES_MEMO.get(key)
        if named is None:
            named = key == b"device" or key_kind(key.decode()) is not None
            if len(_KEY_BYTES_MEMO) < 4096:
                _KEY_BYTES_MEMO[key] = named
        if named:
            return False
    return True


def _walk(
    node: dict[Any, Any] | list[Any],
    path: Path,
    hint: Kind | None,
    options: ScanOptions,
    found: list[Finding],
) -> None:
    """Append the findings under ``node``. Runs on every event: a plain
    recursive function (no generators), child paths built only for containers
    and findings, key spellings looked up in a cache."""
    device = path == _DEVICE_PARENT
    items = node.items() if type(node) is dict else enumerate(node)
    for k, v in items:
        if type(k) is str:
            child_hint = _KEY_MEMO.get(k, _MISS)
            if child_hint is _MISS:
                child_hint = key_kind(k)
                if len(_KEY_MEMO) < 4096:  # bounded: keys repeat, junk keys do not grow it
                    _KEY_MEMO[k] = child_hint
            if device and k in _DEVICE_KEYS:
                child_hint = "device_id"
            if child_hint is not None and child_hint not in options.kinds:
                child_hint = None
        else:
            child_hint = hint  # a list's elements: named by the list's key
        tv = type(v)
        if tv is str:
            if child_hint is not None:
                if not _placeholder_value(v) and (*path, k) not in options.skip:
                    span = Span(child_hint, 0, len(v), normalize_whole(child_hint, v, options))
                    found.append(Finding((*path, k), v, (span,), True))
            elif len(v) >= 6 and ("@" in v or "%40" in v or _DIGIT_RUN.search(v) is not None):
                spans = scan_text(v, options)
                if spans and (*path, k) not in options.skip:
                    found.append(Finding((*path, k), v, spans))
        elif tv is dict or tv is list:
            child = (*path, k)
            if child not in options.skip:
                _walk(v, child, child_hint, options, found)
        elif child_hint is not None and tv is int:
            text = str(v)
            span = Span(child_hint, 0, len(text), normalize_whole(child_hint, text, options))
            found.append(Finding((*path, k), text, (span,), True))


_blob_encoder = msgspec.json.Encoder()
# Digits and the separators a number may have -> "0", anything else -> "x".
_RUN_TABLE = bytes(
    48 if (chr(i).isdigit() and i < 128) or chr(i) in " -()%" else 120 for i in range(256)
)
# A JSON object key: a string directly followed by a colon (values never are).
_JSON_KEY = re.compile(rb'"([^"\\]*)":')
# Key bytes -> whether it may name an identifier (bounded like _KEY_MEMO).
_KEY_BYTES_MEMO: dict[bytes, bool] = {}
_DEVICE_PARENT: Path = ("context", "device")
_DEVICE_KEYS = frozenset({"advertisingId", "id"})
# Key spelling -> kind, filled as keys are seen (a pure function's memo).
_KEY_MEMO: dict[str, Any] = {}
_MISS: Any = object()


def replace_spans(
    text: str, spans: Sequence[Span], replace: Mapping[Kind, str] | None = None
) -> str:
    """``text`` with each span replaced by ``replace[kind]`` (default: a mask such as ``<email>``)."""
    masks = replace or _MASKS
    out: list[str] = []
    at = 0
    for s in spans:
        out.append(text[at : s.start])
        out.append(masks.get(s.kind, "<redacted>"))
        at = s.end
    out.append(text[at:])
    return "".join(out)


_REDACT_OPTIONS = ScanOptions(kinds=frozenset({"email", "phone", "cn_resident_id", "card"}))
_LONG_DIGITS = re.compile(r"\d{7,}")


def redact_text(text: str) -> str:
    """A reason or log line safe to store: identifier-shaped parts masked, and
    any other run of seven or more digits too (it may be a national phone
    number); words starting with ``$`` are JSON paths (:func:`redact_path`)."""
    if not prefilter(text):
        return text
    if "$" in text:  # JSON paths inside the text: their keys are masked as paths
        text = " ".join(redact_path(w) if w.startswith("$") else w for w in text.split(" "))
    masked = replace_spans(text, scan_text(text, _REDACT_OPTIONS))
    return _LONG_DIGITS.sub("<digits>", masked)


# Keys of the message's own structure: a path is cut after the last of these
# that comes before an ``@`` (the address's own dots split it over segments).
_STRUCTURE = frozenset(
    {
        "$",
        "batch",
        "properties",
        "traits",
        "context",
        "consent",
        "categoryPreferences",
        "consentManagement",
        "allowedConsentIds",
        "deniedConsentIds",
        "page",
        "device",
        "integrations",
    }
)
_INDEX = re.compile(r"\[\d+\]$")


def redact_path(path: str) -> str:
    """A JSON path whose keys may be personal data (a consent category named by
    an email, a property keyed by a phone number), with such keys masked: when
    an ``@`` appears, everything after the last structural key before it (an
    address's dots would otherwise split it over several segments); long digit
    runs anywhere."""
    if not prefilter(path):
        return path
    at = min((i for i in (path.find("@"), path.find("%40")) if i >= 0), default=-1)
    if at >= 0:
        segments = path[:at].split(".")[:-1]
        keep = 1
        for i, segment in enumerate(segments):
            if _INDEX.sub("", segment) in _STRUCTURE:
                keep = i + 1
        path = ".".join([*segments[:keep], "<redacted>"])
    return _LONG_DIGITS.sub("<digits>", path)
