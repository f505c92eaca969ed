"""collector.pipeline.limits: nesting depth, found without recursion."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.pipeline.limits import deep_path, element_spans, member_span, too_deep

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{}, é'),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(alphabet='ab"\\'), c, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(json_values, st.integers(min_value=1, max_value=8))
def test_too_deep_agrees_with_the_depth(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    assert too_deep(raw, limit) == (_depth(value) > limit)
    path = deep_path(raw, limit)
    if _depth(value) > limit:
        assert path.count(".") + path.count("[") == limit


def test_deep_path_names_keys_and_indexes() -> None:
    raw = b'{"p": {"a": [1, {"b": [[]]}]}}'
    assert deep_path(raw, 4) == ".p.a[1].b"
    assert deep_path(raw, 5) == ".p.a[1].b[0]"
    assert deep_path(raw, 6) == ""


@given(
    st.dictionaries(st.text(alphabet='ab"\\'), json_values, max_size=4),
    st.lists(json_values, max_size=4),
)
def test_spans_agree_with_the_decoder(envelope: dict[str, Any], batch: list[Any]) -> None:
    envelope = {**envelope, "batch": batch}
    raw = json.dumps(envelope).encode()
    span = member_span(raw, b"batch")
    assert span is not None
    assert json.loads(raw[span[0] : span[1]]) == batch
    spans = element_spans(raw, *span)
    assert spans is not None
    assert [json.loads(raw[s:e]) for s, e in spans] == batch


def test_spans_follow_any_depth() -> None:
    raw = b'{"batch": [' + b"[" * 100_000 + b"]" * 100_000 + b', {"a": 1}]}'
    span = member_span(raw, b"batch")
    assert span is not None
    spans = element_spans(raw, *span)
    assert spans is not None and raw[spans[1][0] : spans[1][1]] == b'{"a": 1}'
    assert too_deep(raw[spans[0][0] : spans[0][1]], 64)
