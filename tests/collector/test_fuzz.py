"""Fuzzing the HTTP API (issue 13): no input gets a 5xx, and the server still
answers afterwards. Hypothesis drives a real `consentry serve` over loopback:
every POST operation in /openapi.json gets bodies built from its schema's
field names with arbitrary JSON values (and mutated valid messages), the ingest
endpoints get arbitrary bytes under every content coding, and the GET pixel
endpoints arbitrary query strings. The number of examples is bounded so the
run stays under a minute."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import WRITE_KEY, Server

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
GOOD: dict[str, Any] = {
    "type": "track",
    "userId": "fuzz-user",
    "event": "Fuzzed",
    "messageId": "fuzz-1",
    "properties": {"a": 1},
    "context": {"consent": {"categoryPreferences": {"analytics": True}}, "ip": "203.0.113.9"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("fuzz") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def operations(server: Server) -> list[tuple[str, list[str]]]:
    """(path, field names of its JSON body) for every POST in /openapi.json."""
    doc = httpx.get(server.url + "/openapi.json", timeout=10).json()
    schemas = doc.get("components", {}).get("schemas", {})
    out = []
    for path, item in doc["paths"].items():
        post = item.get("post")
        if post is None or "{" in path:
            continue
        content = (post.get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema") or {}
        ref = schema.get("$ref", "")
        fields = list(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
        out.append((path, fields or ["batch", "type", "userId", "event"]))
    assert len(out) >= 8, out
    return out


def _post(server: Server, path: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + path,
        content=body,
        auth=(WRITE_KEY, ""),
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])


@SETTINGS
@given(data=st.data())
def test_schema_shaped_bodies_never_5xx(
    server: Server, operations: list[tuple[str, list[str]]], data: st.DataObject
) -> None:
    path, fields = data.draw(st.sampled_from(operations))
    body: dict[str, Any] = data.draw(
        st.dictionaries(st.sampled_from(fields), JSON, max_size=len(fields))
    )
    if data.draw(st.booleans()):  # a valid message with some fields replaced
        body = {**GOOD, **body}
        if path.endswith("batch"):
            body = {"batch": [body, GOOD], "sentAt": data.draw(JSON)}
    _check(_post(server, path, json.dumps(body).encode()))


@SETTINGS
@given(
    path=st.sampled_from(["/v1/batch", "/v1/track", "/v1/identify", "/v1/consent", "/v1/alias"]),
    raw=st.binary(max_size=300),
    coding=st.sampled_from(["", "gzip", "x-gzip", "deflate", "br", "gzip, gzip"]),
    wrap=st.sampled_from(["none", "gzip", "deflate", "truncated"]),
)
def test_raw_bytes_never_5xx(server: Server, path: str, raw: bytes, coding: str, wrap: str) -> None:
    if wrap == "gzip":
        raw = gzip.compress(raw)
    elif wrap == "deflate":
        raw = zlib.compress(raw)
    elif wrap == "truncated":
        raw = gzip.compress(raw)[:-5]
    headers = {"Content-Encoding": coding} if coding else {}
    _check(_post(server, path, raw, **headers))


@SETTINGS
@given(
    prefix=st.sampled_from([b'{"batch": [', b'{"type": "track", "userId": "u", "event": "', b"["]),
    noise=st.binary(max_size=200),
    depth=st.integers(min_value=0, max_value=3000),
)
def test_truncated_deep_and_non_utf8_json_never_5xx(
    server: Server, prefix: bytes, noise: bytes, depth: int
) -> None:
    body = prefix + b"[" * depth + noise + b"]" * (depth // 2)
    _check(_post(server, "/v1/batch" if b"batch" in prefix else "/v1/track", body))


@SETTINGS
@given(noise=st.binary(min_size=1, max_size=100), batch=st.booleans())
def test_any_bytes_inside_a_json_string_never_5xx(
    server: Server, noise: bytes, batch: bool
) -> None:
    """Well-formed JSON around bytes that need not be UTF-8 (Latin-1, cut emoji)."""
    text = noise.translate(None, bytes(range(0x20)) + b'"\\')
    message = b'{"type": "track", "userId": "u", "event": "' + text + b'"}'
    if batch:
        _check(_post(server, "/v1/batch", b'{"batch": [' + message + b", " + message + b"]}"))
    else:
        _check(_post(server, "/v1/track", message))


@SETTINGS
@given(query=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=5))
def test_pixel_queries_never_5xx(server: Server, query: dict[str, Any]) -> None:
    for path in ("/v1/pixel/track", "/v1/pixel/page"):
        _check(httpx.get(server.url + path, params=query, timeout=30))


def test_server_still_answers(server: Server) -> None:
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    assert "Traceback" not in server.log.read_text()
