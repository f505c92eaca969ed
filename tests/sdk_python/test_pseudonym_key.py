"""`pseudonym_key` errors name the expected form (issue 13 case 12)."""

from __future__ import annotations

import base64
import os

import pytest

from sdk_python.encoding import pseudonymizer


@pytest.mark.parametrize(
    "key",
    [
        "plain-string",
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),  # too short
    ],
)
def test_a_key_that_is_not_32_bytes_names_the_form(key: str) -> None:
    with pytest.raises(ValueError, match="urlsafe base64 of 32 random bytes"):
        pseudonymizer(key)


def test_a_32_byte_key_works() -> None:
    assert pseudonymizer(base64.urlsafe_b64encode(os.urandom(32)).decode()) is not None
