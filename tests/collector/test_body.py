"""collector.http.body: content codings (RFC 1952, RFC 9110 §8.4) and text repair."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.http.body import BodyError, inflate, repair_utf8


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_every_gzip_member_is_inflated(parts: list[bytes]) -> None:
    body = b"".join(gzip.compress(p) for p in parts)
    assert inflate(body, "gzip", limit=10_000) == b"".join(parts)
    assert inflate(body, "X-Gzip", limit=10_000) == b"".join(parts)


@given(st.binary(max_size=300), st.data())
def test_a_truncated_gzip_stream_is_400(data: bytes, draw: st.DataObject) -> None:
    whole = gzip.compress(data)
    cut = draw.draw(st.integers(min_value=1, max_value=len(whole) - 1))
    with pytest.raises(BodyError) as info:
        inflate(whole[:cut], "gzip", limit=10_000)
    assert info.value.status == 400


def test_limits_apply_after_inflation_and_deflate_is_checked() -> None:
    with pytest.raises(BodyError) as info:
        inflate(gzip.compress(b"x" * 5000), "gzip", limit=4999)
    assert info.value.status == 413
    assert inflate(gzip.compress(b"x" * 5000), "gzip", limit=5000) == b"x" * 5000
    assert inflate(zlib.compress(b"abc"), "deflate", limit=10) == b"abc"
    with pytest.raises(BodyError):
        inflate(zlib.compress(b"abc")[:-2], "deflate", limit=10)
    with pytest.raises(BodyError) as info:
        inflate(b"abc", "br", limit=10)
    assert info.value.status == 400 and "br" in info.value.message
    assert inflate(b"abc", "", limit=10) == b"abc"
    assert inflate(gzip.compress(b"abc") + b"\0\0", "gzip", limit=10) == b"abc"
    with pytest.raises(BodyError):
        inflate(gzip.compress(b"abc") + b"junk", "gzip", limit=10)


@given(st.text())
def test_valid_text_is_left_alone(text: str) -> None:
    data = json.dumps({"v": text}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if max(text, default="a") >= "\ud800" and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # a lone surrogate in Python text: not valid UTF-8 to begin with
    repaired = repair_utf8(data)
    assert repaired.data is data and repaired.offsets == ()


@given(st.binary(max_size=200))
def test_repaired_bytes_are_always_utf8(data: bytes) -> None:
    repaired = repair_utf8(data)
    repaired.data.decode("utf-8")
    assert all(0 <= o < len(repaired.data) for o in repaired.offsets)


@given(st.lists(st.sampled_from(["a", "\\ud83d", "\\ude00", "\\ud83d\\ude00", "\\\\ud83d", "é"])))
def test_repaired_json_strings_decode(pieces: list[str]) -> None:
    data = ('{"v": "' + "".join(pieces) + '"}').encode()
    repaired = repair_utf8(data)
    value = json.loads(repaired.data)["v"]
    value.encode("utf-8")  # no lone surrogate left
    assert ("\ufffd" in value) == bool(repaired.offsets)


def test_latin1_offset_and_lone_surrogate_positions() -> None:
    repaired = repair_utf8(b'{"city": "caf\xe9"}')
    assert repaired.data == '{"city": "caf\ufffd"}'.encode()
    assert repaired.offsets == (13,)
    repaired = repair_utf8(b'{"a": "\\ud83d", "b": "\\ud83d\\ude00"}')
    assert repaired.data == b'{"a": "\\ufffd", "b": "\\ud83d\\ude00"}'
    assert repaired.offsets == (7,)
