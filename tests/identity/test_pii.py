"""The PII scanner: identifiers found by shape and by key, anywhere (issue 14 §1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from identity.pii import (
    Finding,
    Path,
    ScanOptions,
    cn_resident_id_ok,
    key_kind,
    luhn_ok,
    prefilter,
    redact_path,
    redact_text,
    scan,
    scan_text,
)

CN = ScanOptions(region="CN")
# Filler text that cannot hold an identifier: letters, spaces and punctuation.
filler = st.text(alphabet="abcdefghij KLMNOP,;:!?/=&", max_size=30)
# A separator glued to the planted value, so it is not part of a word.
gap = st.sampled_from([" ", ", ", " (", ": ", "\n", "="])


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9._+\-]{0,15}", fullmatch=True))
    assume(not local.endswith("."))
    domain = draw(st.from_regex(r"[a-z][a-z0-9\-]{0,10}", fullmatch=True))
    tld = draw(st.sampled_from(["com", "cn", "de", "co.uk", "shop"]))
    return f"{local}@{domain}.{tld}"


@st.composite
def cards(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[1-9][0-9]{11,17}", fullmatch=True))
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("one check digit always fits")


@st.composite
def cn_ids(draw: st.DrawFn) -> str:
    region = draw(st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
    year = draw(st.integers(1930, 2015))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    seq = draw(st.integers(0, 999))
    head = f"{region}{year}{month:02d}{day:02d}{seq:03d}"
    for check in "0123456789X":
        if cn_resident_id_ok(head + check):
            return head + check
    raise AssertionError("one check character always fits")


REGIONS = ["CN", "US", "GB", "DE", "FR", "JP", "BR", "IN"]


@st.composite
def e164_phones(draw: st.DrawFn) -> tuple[str, str]:
    """(as written, E.164): an example mobile number of a region, international format."""
    region = draw(st.sampled_from(REGIONS))
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    style = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
        )
    )
    return phonenumbers.format_number(number, style), e164


@given(emails(), filler, filler, gap, gap)
def test_an_email_embedded_in_text_is_found_exactly(
    email: str, before: str, after: str, g1: str, g2: str
) -> None:
    text = before + g1 + email + g2 + after
    spans = scan_text(text)
    assert [(s.kind, text[s.start : s.end], s.normalized) for s in spans] == [
        ("email", email, email.lower())
    ]


@given(emails(), filler)
def test_a_percent_encoded_email_in_a_query_string_is_found(email: str, path: str) -> None:
    url = f"https://shop.example/{quote(path)}?ref=x&email={quote(email, safe='')}&n=1"
    spans = scan_text(url)
    assert [s.normalized for s in spans] == [email.lower()]
    assert email not in url.replace(url[spans[0].start : spans[0].end], "")


@given(cards(), filler, gap, st.sampled_from(["", " ", "-"]))
def test_a_luhn_valid_card_number_is_found(card: str, before: str, g: str, sep: str) -> None:
    written = sep.join(card[i : i + 4] for i in range(0, len(card), 4))
    spans = scan_text(before + g + written + " ")
    assert [(s.kind, s.normalized) for s in spans] == [("card", card)]


@given(cards())
def test_a_card_number_with_a_wrong_check_digit_is_not_a_card(card: str) -> None:
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert all(s.kind != "card" for s in scan_text(f"order {wrong}"))


@given(cn_ids(), filler, gap)
def test_a_prc_resident_id_is_found(number: str, before: str, g: str) -> None:
    spans = scan_text(before + g + number)
    assert [(s.kind, s.normalized) for s in spans] == [("cn_resident_id", number)]


@given(cn_ids())
def test_a_resident_id_with_a_wrong_check_character_is_not_one(number: str) -> None:
    checks = "0123456789X"
    wrong = number[:-1] + checks[(checks.index(number[-1]) + 1) % 11]
    assert all(s.kind != "cn_resident_id" for s in scan_text(wrong))


@given(e164_phones(), filler, gap)
def test_an_international_phone_number_is_found_without_a_region(
    phone: tuple[str, str], before: str, g: str
) -> None:
    written, e164 = phone
    spans = scan_text(before + g + written + " ")
    assert [(s.kind, s.normalized) for s in spans] == [("phone", e164)]


@given(e164_phones())
def test_a_plus_percent_encoded_in_a_url_still_reads_as_a_phone(phone: tuple[str, str]) -> None:
    _, e164 = phone
    spans = scan_text(f"https://s.example/?tel={quote(e164, safe='')}")
    assert [s.normalized for s in spans] == [e164]


@pytest.mark.parametrize(
    ("region", "written", "e164"),
    [
        ("CN", "138 0013 8000", "+8613800138000"),
        ("CN", "13800138000", "+8613800138000"),
        ("US", "(202) 555-0143", "+12025550143"),
        ("DE", "030 901820", "+4930901820"),
    ],
)
def test_national_formats_need_the_region(region: str, written: str, e164: str) -> None:
    assert [s.normalized for s in scan_text(f"call {written}", ScanOptions(region=region))] == [
        e164
    ]
    assert scan_text(f"call {written}") == ()


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15 10:30:00",
        "Mozilla/5.0 (X11) Chrome/120.0.6099.109 Safari/537.36",
        "price 19.99, qty 3",
        "@brand on social",
        "sku ABC-123-XYZ",
    ],
)
def test_ordinary_values_are_not_identifiers(text: str) -> None:
    assert scan_text(text, CN) == ()


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"], blacklist_characters="@")))
def test_text_without_digits_or_at_passes_the_prefilter_untouched(text: str) -> None:
    assume("%40" not in text)
    assert not prefilter(text)
    assert scan_text(text, CN) == ()


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("email", "email"),
        ("Email", "email"),
        ("emailAddress", "email"),
        ("e_mail", "email"),
        ("E-Mail", "email"),
        ("phoneNumber", "phone"),
        ("mobile", "phone"),
        ("Phone_No", "phone"),
        ("advertisingId", "device_id"),
        ("IDFA", "device_id"),
        ("name", None),
        ("sku", None),
    ],
)
def test_identifier_keys_are_matched_by_their_common_spellings(key: str, kind: str | None) -> None:
    assert key_kind(key) == kind


keys = st.text(alphabet="abcdxyz", min_size=1, max_size=6)
leaves = st.one_of(st.integers(0, 99), filler, st.booleans(), st.none())
trees = st.recursive(
    st.dictionaries(keys, leaves, max_size=3),
    lambda inner: st.one_of(
        st.dictionaries(keys, inner, min_size=1, max_size=3),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=12,
)


def _paths(node: Any, path: Path) -> list[Path]:
    """Every place a value could be planted: existing leaves and new keys of dicts."""
    out: list[Path] = []
    if isinstance(node, dict):
        out.append((*path, "planted"))
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*path, i)))
    else:
        out.append(path)
    return out


def _plant(node: Any, path: Path, value: str) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@given(
    st.sampled_from(["properties", "traits", "context"]),
    trees,
    st.data(),
    st.one_of(emails(), cards(), cn_ids(), e164_phones().map(lambda p: p[0])),
    filler,
)
def test_a_value_planted_at_any_path_is_found_there(
    section: str, tree: dict[str, Any], data: st.DataObject, value: str, before: str
) -> None:
    message: dict[str, Any] = {section: tree}
    path = data.draw(st.sampled_from(_paths(tree, (section,))))
    _plant(message, path, f"{before} {value} ")
    found: list[Finding] = scan(message, CN)
    assert [f.path for f in found] == [path]
    (finding,) = found
    assert any(finding.text[s.start : s.end].strip() == value for s in finding.spans)


def test_values_under_identifier_keys_are_taken_whole_and_device_ids_by_path() -> None:
    found = scan(
        {
            "properties": {"Email": "Not An Address", "mobile": 13800138000, "note": "hi"},
            "traits": {"e_mail": "null"},
            "context": {"device": {"advertisingId": "6D92078A-8246", "id": "dev-1"}},
        },
        CN,
    )
    assert [(f.path, f.spans[0].kind, f.spans[0].normalized, f.whole) for f in found] == [
        (("properties", "Email"), "email", "not an address", True),
        (("properties", "mobile"), "phone", "+8613800138000", True),
        (("context", "device", "advertisingId"), "device_id", "6D92078A-8246", True),
        (("context", "device", "id"), "device_id", "dev-1", True),
    ]


def test_skipped_paths_are_not_scanned() -> None:
    message = {"context": {"consent": {"x": "a@b.co"}, "page": {"url": "a@b.co"}}}
    found = scan(message, ScanOptions(skip=frozenset({("context", "consent")})))
    assert [f.path for f in found] == [("context", "page", "url")]


@given(emails(), st.lists(keys, max_size=3))
def test_redacted_paths_and_reasons_never_quote_an_email_key(email: str, tail: list[str]) -> None:
    """Also when the address's local part has dots (jane.doe@...) and the key sits
    under other keys: the path is cut after the last structural key."""
    head = "$.context.consent.categoryPreferences"
    path = ".".join([head, *tail, email])
    assert redact_path(path) == head + ".<redacted>"
    assert (
        redact_text(f"{path} must be true or false") == f"{head}.<redacted> must be true or false"
    )


@given(cards())
def test_redacted_text_never_quotes_a_number(card: str) -> None:
    assert card not in redact_text(f"$.properties.{card} must be a string")
