"""Consent in the request (issue 21 §6-8) and Segment compatibility of the SDK."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import segment.analytics as segment_analytics

import sdk_python
from sdk_python import Client, ConsentMiddleware, WSGIConsentMiddleware
from sdk_python.consent import current_consent
from sdk_python.options import SEGMENT_ARGUMENTS

ROOT = Path(__file__).resolve().parents[2]


def test_wsgi_streaming_body_keeps_the_requests_consent() -> None:
    """§6: a streaming route sends its event while the server iterates the body."""
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])

        def body() -> Iterator[bytes]:
            yield b"a"
            seen.append(current_consent())  # runs after the middleware returned
            yield b"b"

        return body()

    wrapped = WSGIConsentMiddleware(app)
    environ = {"HTTP_SEC_GPC": "1", "HTTP_COOKIE": "cmplz_marketing=allow"}
    body = wrapped(environ, lambda *a: None)
    assert current_consent() is None  # never leaks into the server's thread
    assert b"".join(body) == b"ab"
    assert seen == [{"gpc": True, "categoryPreferences": {"advertising": True, "marketing": True}}]
    assert current_consent() is None


def test_asgi_reads_every_cookie_header_and_keeps_consent_while_streaming() -> None:
    """§7: several ``Cookie`` headers (HTTP/2, proxies); §6 for ASGI bodies."""
    from starlette.responses import StreamingResponse

    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def chunks() -> Any:
            yield b"x"
            seen.append(current_consent())

        await StreamingResponse(chunks())(scope, receive, send)

    async def call() -> None:
        transport = httpx.ASGITransport(app=ConsentMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as shop:
            headers = [
                ("cookie", "cmplz_statistics=allow"),
                ("cookie", "cmplz_marketing=deny"),
                ("sec-gpc", "1"),
            ]
            response = await shop.get("/", headers=headers)
            assert response.content == b"x"

    asyncio.run(call())
    assert seen == [
        {
            "gpc": True,
            "categoryPreferences": {"analytics": True, "advertising": False, "marketing": False},
        }
    ]


def test_explicit_context_consent_combines_with_the_request_and_keeps_gpc() -> None:
    """§8: a caller's ``context.consent`` never drops the request's GPC or denials."""
    client = Client("k", send=False)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        _, sent = client.track(
            "u",
            "E",
            context={
                "consent": {
                    "categoryPreferences": {"analytics": True, "advertising": True},
                    "gpc": False,
                    "jurisdiction": "US-CA",
                }
            },
        )
        assert sent is not None
        out.append(sent["context"]["consent"])
        return [b""]

    out: list[dict[str, Any]] = []
    WSGIConsentMiddleware(app)(
        {"HTTP_SEC_GPC": "1", "HTTP_COOKIE": "cmplz_marketing=deny"}, lambda *a: None
    )
    assert out == [
        {
            "categoryPreferences": {"analytics": True, "advertising": False, "marketing": False},
            "gpc": True,
            "jurisdiction": "US-CA",
        }
    ]
    client.shutdown()


def test_readme_lists_every_segment_argument() -> None:
    import inspect

    params = inspect.signature(segment_analytics.Client.__init__).parameters
    segment_args = [p for p in params if p != "self"]
    assert sorted(segment_args) == sorted(SEGMENT_ARGUMENTS)
    readme = (ROOT / "README.md").read_text()
    for name in segment_args:
        assert re.search(rf"^\| `{name}` \|", readme, re.M), f"README table lacks {name}"
    # our positional order is Segment's
    ours = list(inspect.signature(Client.__init__).parameters)[1 : len(segment_args) + 1]
    assert ours == segment_args


def test_segment_arguments_are_honoured_or_refused_loudly() -> None:
    with pytest.raises(ValueError, match="oauth_client_id"):
        Client("k", oauth_client_id="id", oauth_client_key="key", oauth_key_id="kid")
    with pytest.raises(ValueError, match="upload_size"):
        Client("k", upload_size=0)
    with pytest.raises(TypeError):
        Client("k", no_such_argument=1)  # type: ignore[call-arg]
    with pytest.warns(UserWarning, match="thread=4"):
        Client("k", thread=4, send=False).shutdown()
    c = Client(
        "k",
        upload_size=7,
        upload_interval=0.2,
        send=False,
        proxies={"https": "http://127.0.0.1:3128"},
    )
    assert c.flush_at == 7 and c.max_batch == 7 and c.flush_interval == 0.2
    assert c._mounts is not None and set(c._mounts) == {"https://"}
    c.shutdown()


def test_module_level_settings_and_join(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "write_key": "k",
        "send": False,
        "upload_size": 3,
        "max_queue_size": 9,
        "timeout": 4,
        "max_retries": 2,
    }.items():
        monkeypatch.setattr(sdk_python, name, value)
    ok, msg = sdk_python.track(42, "Module Level", {"price": Decimal("19.90")})
    assert ok and msg is not None and msg["userId"] == "42"
    client = sdk_python._client()
    assert (client.flush_at, client.max_queue_size, client.timeout, client.max_retries) == (
        3,
        9,
        4,
        2,
    )
    sdk_python.join()
    assert sdk_python._default is None


def test_decimal_is_a_number_and_naive_datetimes_are_utc() -> None:
    client = Client("k", send=False)
    naive = datetime(2024, 5, 1, 12, 0, 0)
    ok, msg = client.track("u", "E", {"total": Decimal("129.95"), "at": naive}, timestamp=naive)
    assert ok and msg is not None
    assert msg["properties"]["total"] == 129.95  # a JSON number, not "129.95"
    assert msg["timestamp"].endswith(("Z", "+00:00"))
    assert msg["properties"]["at"].endswith(("Z", "+00:00"))
    raw = json.dumps(dict(msg))
    assert '"total": 129.95' in raw
    client.shutdown()


def test_async_middleware_round_trip_without_collector() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        from starlette.responses import JSONResponse

        await JSONResponse(current_consent())(scope, receive, send)

    async def call() -> Any:
        transport = httpx.ASGITransport(app=ConsentMiddleware(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as shop:
            return (await shop.get("/", headers={"Cookie": "klaro=%7Bnot"})).json()

    assert asyncio.run(call()) == {
        "categoryPreferences": {"advertising": False, "marketing": False}
    }
