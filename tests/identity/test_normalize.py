from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity import InvalidIdentifier, NormalizeOptions, normalize


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("email", "  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("phone", "+44 20 7946 0958", "+442079460958"),
        ("user_id", " 12345 ", "12345"),
        ("user_id", 12345, "12345"),
        ("wechat_openid", "oAbC123", "oAbC123"),
    ],
)
def test_normal_forms(kind: str, value: object, expected: str) -> None:
    assert normalize(kind, value) == expected


def test_phone_default_region() -> None:
    assert (
        normalize("phone", "138 0013 8000", NormalizeOptions(phone_region="CN")) == "+8613800138000"
    )
    assert (
        normalize("phone", "(415) 555-2671", NormalizeOptions(phone_region="US")) == "+14155552671"
    )
    with pytest.raises(InvalidIdentifier, match="phone_region"):
        normalize("phone", "(415) 555-2671")


def test_gmail_folding_is_a_switch() -> None:
    assert normalize("email", "J.Doe+shop@gmail.com") == "j.doe+shop@gmail.com"
    folded = NormalizeOptions(fold_gmail=True)
    assert normalize("email", "J.Doe+shop@googlemail.com", folded) == "jdoe@gmail.com"
    assert normalize("email", "j.doe+x@example.com", folded) == "j.doe+x@example.com"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        " ",
        "null",
        "NULL",
        "undefined",
        "None",
        "anonymous",
        "0",
        "-1",
        "00000000-0000-0000-0000-000000000000",
        "x" * 513,
    ],
)
@pytest.mark.parametrize("kind", ["user_id", "anonymous_id", "device_id", "email", "phone"])
def test_junk_is_rejected_for_every_kind(kind: str, junk: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize(kind, junk)


def test_custom_kinds_must_be_declared() -> None:
    with pytest.raises(InvalidIdentifier, match="unknown identifier kind"):
        normalize("loyalty_card", "LC-1")
    assert (
        normalize(
            "loyalty_card", "LC-1", NormalizeOptions(custom_kinds=frozenset({"loyalty_card"}))
        )
        == "LC-1"
    )


def test_reasons_never_repeat_the_value() -> None:
    with pytest.raises(InvalidIdentifier) as info:
        normalize("email", "secret-not-an-email")
    assert "secret" not in str(info.value)


@given(
    st.one_of(st.text(max_size=600), st.integers(), st.none(), st.binary(max_size=20), st.floats())
)
def test_normalize_only_raises_invalid_identifier(value: object) -> None:
    for kind in ("email", "phone", "user_id"):
        try:
            out = normalize(kind, value)
        except InvalidIdentifier:
            continue
        assert isinstance(out, str) and out
        assert normalize(kind, out) == out  # idempotent
