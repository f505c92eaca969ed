"""Browser-facing behaviour over real HTTP: CORS, beacons, pixels, GPC, client
address, the consent-gated cookie, rate limits, session_key removal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from collector.sources.browser import RequestFacts, apply_facts
from collector.sources.http import forwarded_client
from collector.sources.pixel import GIF, pixel_message
from collector.sources.wechat import strip_session_keys
from tests.conftest import WRITE_KEY, ServerFactory, read_jsonl, wait_for

SHOP = "http://shop.example"
CONFIG = """
[privacy]
default_jurisdiction = "CCPA"

[server]
trusted_proxies = ["127.0.0.1/32"]
workers = {workers}

[browser]
cookie = true
cookie_name = "cs_id"
cookie_domain = "shop.example"
rate_limit_per_ip = "{per_ip}"

[[sources]]
name = "web"
write_key_env = "CONSENTRY_WRITE_KEY"
allowed_origins = ["{shop}"]

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
path = "{data}/lake"

[[destinations]]
name = "ads"
type = "jsonl"
purposes = ["advertising"]
path = "{data}/ads"
"""


def start(server_factory, tmp_path: Path, per_ip: str = "", name: str = "data"):
    data = tmp_path / name
    # One worker: each worker process counts its own rate limits.
    workers = 1 if per_ip else 0
    config = CONFIG.format(per_ip=per_ip, shop=SHOP, data=data, workers=workers)
    return server_factory(config, name=name).start(), data


def beacon(url: str, message: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        url,
        content=json.dumps(message).encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8", **headers},
        timeout=30,
    )


def test_browser_requests(server_factory: ServerFactory, tmp_path: Path) -> None:
    server, data = start(server_factory, tmp_path)
    u = server.url

    # Preflight: allowed origin gets 204 and the headers; another gets none.
    ok = httpx.options(
        u + "/v1/batch",
        headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "Content-Type" in ok.headers["access-control-allow-headers"]
    assert "Authorization" in ok.headers["access-control-allow-headers"]
    no = httpx.options(u + "/v1/batch", headers={"Origin": "http://evil.example"}, timeout=30)
    assert no.status_code == 403 and "access-control-allow-origin" not in no.headers

    # analytics-next's text/plain single call (/v1/t), write key in the body.
    track = {
        "type": "track",
        "event": "Viewed",
        "anonymousId": "anon-browser-1",
        "writeKey": WRITE_KEY,
        "context": {"consent": {"categoryPreferences": {"analytics": True, "advertising": True}}},
    }
    r = beacon(u + "/v1/t", track, Origin=SHOP, **{"X-Forwarded-For": "198.51.100.23"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP and r.headers["vary"] == "Origin"
    lake = wait_for(lambda: read_jsonl(data / "lake"))
    assert lake and lake[0]["event"] == "Viewed"
    assert str(lake[0]["anonymousId"]).startswith("ps1.")
    assert lake[0]["context"]["ip"] == "198.51.100.0"  # via the trusted proxy
    # consent for analytics: the first-party cookie is set, with its attributes
    cookie = r.headers["set-cookie"]
    for part in ("cs_id=", "HttpOnly", "Secure", "SameSite=Lax", "Domain=shop.example", "Max-Age="):
        assert part in cookie

    # A disallowed origin: refused, no CORS headers, nothing stored.
    before = len(read_jsonl(data / "lake"))
    r = beacon(u + "/v1/t", {**track, "event": "Evil"}, Origin="http://evil.example")
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert r.json()["path"] == "$.headers.Origin"

    # RudderStack's beacon path with ?writeKey= and Sec-GPC: advertising denied.
    gpc = {**track, "event": "With GPC", "writeKey": None}
    r = beacon(
        u + f"/beacon/v1/batch?writeKey={WRITE_KEY}",
        {"batch": [gpc, {**gpc, "event": "No GPC"}]},
        Origin=SHOP,
        **{"Sec-GPC": "1"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 2
    r = beacon(u + f"/v1/track?writeKey={WRITE_KEY}", {**gpc, "event": "No GPC"}, Origin=SHOP)
    assert r.status_code == 200
    later = wait_for(lambda: got if len(got := read_jsonl(data / "lake")) >= before + 3 else None)
    assert later is not None
    ads = wait_for(lambda: [m for m in read_jsonl(data / "ads") if m["event"] == "No GPC"])
    assert ads and all(m["event"] != "With GPC" for m in read_jsonl(data / "ads"))
    assert "Evil" not in {m["event"] for m in later}

    # No consent for the cookie purpose: no cookie, yet the event is processed
    # under a one-off id; a denial expires an existing cookie.
    plain = {"type": "page", "name": "Home", "writeKey": WRITE_KEY}
    r = beacon(u + "/v1/p", plain, Origin=SHOP)
    assert r.status_code == 200 and r.json()["accepted"] == 1 and "set-cookie" not in r.headers
    denied = {**plain, "context": {"consent": {"categoryPreferences": {"analytics": False}}}}
    r = beacon(
        u + "/v1/p", denied, Origin=SHOP, Cookie="cs_id=0f8e2b4c-aaaa-bbbb-cccc-1234567890ab"
    )
    assert "Max-Age=0" in r.headers["set-cookie"]

    # The page's CMP cookie (OneTrust) is consent too: analytics granted there
    # sets our cookie; its advertising denial keeps the event from "ads".
    onetrust = "OptanonConsent=groups%3DC0001%3A1%2CC0002%3A1%2CC0004%3A0"
    r = beacon(
        u + "/v1/t", {**plain, "type": "track", "event": "CMP"}, Origin=SHOP, Cookie=onetrust
    )
    assert r.status_code == 200 and "cs_id=" in r.headers["set-cookie"]
    # a later event that "ads" may have: once it is there, so would "CMP" be (one queue)
    beacon(u + "/v1/t", {**plain, "type": "track", "event": "Sentinel"}, Origin=SHOP)
    assert wait_for(lambda: "Sentinel" in {m.get("event") for m in read_jsonl(data / "ads")})
    assert "CMP" in {m.get("event") for m in read_jsonl(data / "lake")}
    assert "CMP" not in {m.get("event") for m in read_jsonl(data / "ads")}

    # Pixels: always a GIF, never cached; rejected ones are counted.
    px = httpx.get(
        u + "/v1/pixel/track",
        params={
            "writeKey": WRITE_KEY,
            "anonymousId": "mail-1",
            "event": "Email Opened",
            "properties.campaign": "nov",
            "context.consent.categoryPreferences.analytics": "x",
        },
        timeout=30,
    )
    assert px.status_code == 200 and px.content == GIF
    assert px.headers["content-type"] == "image/gif" and "no-store" in px.headers["cache-control"]
    good = httpx.get(
        u + "/pixel/v1/page",
        params={"writeKey": WRITE_KEY, "anonymousId": "m2", "name": "Promo"},
        timeout=30,
    )
    assert good.content == GIF
    bad_key = httpx.get(
        u + "/v1/pixel/track", params={"writeKey": "nope", "event": "E"}, timeout=30
    )
    no_event = httpx.get(
        u + "/v1/pixel/track", params={"writeKey": WRITE_KEY, "anonymousId": "m3"}, timeout=30
    )
    assert bad_key.status_code == no_event.status_code == 200 and bad_key.content == GIF
    metrics = httpx.get(u + "/metrics", timeout=30).text
    assert (
        'consentry_browser_requests_total{outcome="pixel_rejected",source="unknown"} 1.0' in metrics
    )
    assert 'consentry_browser_requests_total{outcome="pixel_rejected",source="web"}' in metrics
    assert 'consentry_browser_requests_total{outcome="origin_refused",source="web"} 1.0' in metrics
    assert 'consentry_browser_requests_total{outcome="cookie_set",source="web"}' in metrics
    assert 'consentry_browser_requests_total{outcome="cookie_cleared",source="web"} 1.0' in metrics

    # session_key: removed, reported, never stored.
    r = httpx.post(
        u + "/v1/batch",
        json={
            "batch": [
                {
                    "type": "track",
                    "event": "Mini",
                    "anonymousId": "wx-1",
                    "properties": {"auth": {"session_key": "SECRET-SK-123"}},
                }
            ]
        },
        auth=(WRITE_KEY, ""),
        timeout=30,
    )
    assert r.status_code == 200
    assert r.json()["warnings"][0]["path"].startswith("$.batch[0].properties.auth.session_key")

    tag = httpx.get(u + "/v1/consentry.js", timeout=30)
    assert tag.status_code == 200 and "javascript" in tag.headers["content-type"]
    assert len(tag.content) < 8192 and b"sendBeacon" in tag.content
    server.stop()
    disk = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert b"SECRET-SK-123" not in disk and b"198.51.100.23" not in disk


def test_rate_limit_answers_429_with_retry_after(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server, _ = start(server_factory, tmp_path, per_ip="3/minute", name="limited")
    message = {"type": "track", "event": "E", "anonymousId": "a", "writeKey": WRITE_KEY}
    codes = [beacon(server.url + "/v1/t", message, Origin=SHOP) for _ in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["retry-after"]) >= 1
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    assert 'consentry_browser_requests_total{outcome="rate_limited",source="web"} 1.0' in metrics
    assert codes[-1].headers["access-control-allow-origin"] == SHOP
    # server clients (no Origin) are not browser traffic: not limited per address
    assert server.post("/v1/track", message).status_code == 200


# -- pure parts ----------------------------------------------------------------


def test_forwarded_for_is_believed_only_through_trusted_proxies() -> None:
    proxies = ["10.0.0.0/8"]
    assert forwarded_client("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"
    assert forwarded_client("10.1.2.3", "198.51.100.1", proxies) == "198.51.100.1"
    # a client-written first hop is skipped: the rightmost untrusted hop wins
    assert (
        forwarded_client("10.1.2.3", "1.2.3.4, 198.51.100.1, 10.9.9.9", proxies) == "198.51.100.1"
    )
    assert forwarded_client("10.1.2.3", "junk", proxies) == "10.1.2.3"
    assert forwarded_client("10.1.2.3", "198.51.100.1", []) == "10.1.2.3"


@given(st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=5))
def test_untrusted_peer_never_takes_the_header(hops: list[str]) -> None:
    assert forwarded_client("192.0.2.1", ", ".join(hops), ["10.0.0.0/8"]) == "192.0.2.1"


def test_apply_facts_keeps_what_the_message_says() -> None:
    facts = RequestFacts(client_ip="198.51.100.7", gpc=True, origin=None, cookie_id=None)
    m = apply_facts(
        {
            "type": "track",
            "userId": "u",
            "context": {"ip": "1.2.3.4", "consent": {"tcString": "x"}},
        },
        facts,
        "one-off",
    )
    assert m["context"]["ip"] == "1.2.3.4" and m["context"]["consent"] == {
        "tcString": "x",
        "gpc": True,
    }
    assert "anonymousId" not in m
    m = apply_facts({"type": "page"}, facts, "one-off")
    assert m["anonymousId"] == "one-off" and m["context"]["ip"] == "198.51.100.7"


def test_pixel_consent_flags_are_booleans() -> None:
    message = pixel_message(
        "page",
        [
            ("context.consent.categoryPreferences.analytics", "true"),
            ("context.consent.gpc", "false"),
            ("properties.flag", "true"),
        ],
    )
    assert message["context"]["consent"] == {
        "categoryPreferences": {"analytics": True},
        "gpc": False,
    }
    assert message["properties"] == {"flag": "true"}


@given(st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=6), max_size=6))
def test_pixel_message_never_carries_the_write_key(params: dict[str, str]) -> None:
    message = pixel_message("track", [*params.items(), ("writeKey", "k")])
    assert "writeKey" not in message and message["type"] == "track"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "session_key", "b"]), inner, max_size=3)
    ),
    max_leaves=15,
)


@given(json_values)
def test_session_key_is_gone_at_any_depth(value: object) -> None:
    raw = json.dumps({"type": "track", "x": value, "session_key": "s"}).encode()
    cleaned, removed = strip_session_keys(raw)
    assert b'"session_key"' not in cleaned and "$.session_key" in removed


def test_openapi_lists_the_browser_and_webhook_paths() -> None:
    from collector.http.openapi import document

    paths = document()["paths"]
    for path in (
        "/v1/pixel/track",
        "/pixel/v1/page",
        "/v1/b",
        "/beacon/v1/batch",
        "/v1/consentry.js",
        "/v1/webhooks/{source}",
    ):
        assert path in paths, path
    assert "401" in paths["/v1/webhooks/{source}"]["post"]["responses"]
