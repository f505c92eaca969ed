"""Real Chromium: a shop page on another loopback origin loads our tag and
Segment's analytics-next (the npm build, vendored under tests/browser_assets)
and sends page/track/identify to `consentry serve`."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from consent import tcf
from tests.conftest import WRITE_KEY, ServerFactory, free_port, read_jsonl

T = TypeVar("T")
ASSETS = Path(__file__).resolve().parent.parent / "browser_assets"
ANALYTICS_NEXT = "analytics-next/analytics-next-1.84.3.umd.js"
EMAIL = "chromium.shopper@example.com"

CONFIG = """
[privacy]
default_jurisdiction = "CCPA"

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

# The page's CMP APIs, answering as IAB's TCF v2 (__tcfapi getTCData) and GPP
# (__gpp ping) do: tests/consent's TCF vector with purposes 1-10 consented
# (re-encoded by consent.tcf) and a usnat string without opt-outs.
TC_STRING = tcf.encode(
    dataclasses.replace(
        tcf.decode(
            "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"
        ),
        purpose_consents=frozenset(range(1, 11)),
    )
)
GPP_STRING = "DBABLA~BVVqAAEABCA.QA"
CMP = f"""<script>
  window.__tcfapi = (cmd, version, cb) => cb({{tcString: "{TC_STRING}", gdprApplies: true}}, true);
  window.__gpp = (cmd, cb) => cb({{gppString: "{GPP_STRING}"}}, true);
</script>"""
PAGE = """<!doctype html>
<html><head><title>Shop</title>
{cmp}
<script src="{collector}/v1/consentry.js" data-write-key="{key}"></script>
<script src="/{analytics_next}"></script>
</head><body><p>shop</p></body></html>
"""

CONSENT = {"categoryPreferences": {"analytics": True, "advertising": True}}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A static site on its own loopback port: the shop's origin."""
    root = tmp_path / "site"
    (root / "analytics-next").mkdir(parents=True)
    (root / ANALYTICS_NEXT).write_bytes((ASSETS / ANALYTICS_NEXT).read_bytes())
    port = free_port()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield port, root
    finally:
        httpd.shutdown()
        httpd.server_close()


def _page(browser: Any, url: str, *, gpc: bool = False) -> tuple[Any, Any, list[str]]:
    """A page that may reach only loopback; every other request is recorded."""
    context = browser.new_context(extra_http_headers={"Sec-GPC": "1"} if gpc else {})
    if gpc:
        context.add_init_script(
            "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"
        )
    outside: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith("http://127.0.0.1:") or route.request.url.startswith(
            "http://localhost:"
        ):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.goto(url)
    return context, page, outside


def until(page: Any, predicate: Callable[[], T | None], timeout: float = 20.0) -> T | None:
    """Poll while letting Playwright run: the sync API services route handlers
    (our loopback guard) only inside its own calls, so a plain sleep would hold
    the page's beacons in interception."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(100)


def test_tag_and_analytics_next_in_chromium(
    chromium: Any, server_factory: ServerFactory, shop: tuple[int, Path], tmp_path: Path
) -> None:
    port, root = shop
    shop_origin = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    server = server_factory(CONFIG.format(shop=shop_origin, data=data)).start()
    for name, cmp in (("index.html", ""), ("cmp.html", CMP)):
        (root / name).write_text(
            PAGE.format(collector=server.url, key=WRITE_KEY, analytics_next=ANALYTICS_NEXT, cmp=cmp)
        )
    host = server.url.removeprefix("http://") + "/v1"

    # 1. Our tag and analytics-next, with consent for analytics and advertising.
    context, page, outside = _page(chromium, shop_origin + "/index.html")
    page.evaluate(
        """(c) => { consentry.consent(c.categoryPreferences);
                   consentry.page('Home');
                   consentry.track('Tag Added to Cart', {sku: 'S-1', price: 9.5});
                   consentry.identify('tag-user-1', {email: c.email}); }""",
        {**CONSENT, "email": EMAIL},
    )
    page.evaluate(
        """async ([key, host, consent, email]) => {
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
              {writeKey: key, cdnSettings: {integrations: {'Segment.io':
                 {apiKey: key, apiHost: host, protocol: 'http'}}}},
              {disableClientPersistence: true});
            const opts = {context: {consent}};
            await analytics.page('Shop', 'Landing', {}, opts);
            await analytics.track('Ajs Product Viewed', {product_id: 'P-9'}, opts);
            await analytics.identify('ajs-user-1', {email}, opts);
        }""",
        [WRITE_KEY, host, CONSENT, EMAIL],
    )
    lake = data / "lake"
    names = {"Home", "Tag Added to Cart", "Landing", "Ajs Product Viewed"}

    def arrived() -> list[dict[str, object]] | None:
        rows = read_jsonl(lake)
        seen = {m.get("event") or m.get("name") for m in rows}
        identified = sum(m["type"] == "identify" for m in rows)
        return rows if names <= seen and identified >= 2 else None

    got = until(page, arrived)
    assert got, [(m["type"], m.get("event"), m.get("name")) for m in read_jsonl(lake)]
    libraries = {m["context"]["library"]["name"] for m in got}  # type: ignore[index]
    assert "consentry.js" in libraries and "analytics.js" in libraries
    for m in got:
        for key in ("userId", "anonymousId"):
            if key in m:
                assert str(m[key]).startswith("ps1."), m
    identifies = [m for m in got if m["type"] == "identify"]
    assert all(str(m["traits"]["email"]).startswith("ps1.") for m in identifies)  # type: ignore[index]
    ads = until(page, lambda: read_jsonl(data / "ads"))
    assert ads and "Tag Added to Cart" in {m.get("event") for m in ads}
    assert outside == [], outside  # nothing left the machine
    context.close()

    # 2. With Global Privacy Control (header and navigator): advertising denied.
    context, page, outside = _page(chromium, shop_origin + "/index.html", gpc=True)
    assert page.evaluate("navigator.globalPrivacyControl") is True
    page.evaluate(
        "(c) => { consentry.consent(c.categoryPreferences); consentry.track('GPC Tag Event'); }",
        CONSENT,
    )
    page.evaluate(
        """async ([key, host, consent]) => {
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
              {writeKey: key, cdnSettings: {integrations: {'Segment.io':
                 {apiKey: key, apiHost: host, protocol: 'http'}}}},
              {disableClientPersistence: true});
            await analytics.track('GPC Ajs Event', {}, {context: {consent}});
        }""",
        [WRITE_KEY, host, CONSENT],
    )
    gpc_events = {"GPC Tag Event", "GPC Ajs Event"}
    in_lake = until(page, lambda: gpc_events <= {m.get("event") for m in read_jsonl(lake)})
    assert in_lake
    gpc_lake = [m for m in read_jsonl(lake) if m.get("event") in gpc_events]
    assert all(m["context"]["consent"]["gpc"] is True for m in gpc_lake)
    assert not gpc_events & {m.get("event") for m in read_jsonl(data / "ads")}
    assert outside == []
    context.close()

    # 3. The page's CMP: the tag reads __tcfapi and __gpp and sends both strings.
    context, page, outside = _page(chromium, shop_origin + "/cmp.html")
    page.evaluate("consentry.track('TCF Event')")
    tcf_events = until(page, lambda: [m for m in read_jsonl(lake) if m.get("event") == "TCF Event"])
    assert tcf_events, "the tag's event with the CMP's strings did not arrive"
    consent = tcf_events[0]["context"]["consent"]
    assert consent["tcString"] == TC_STRING and consent["gppString"] == GPP_STRING
    assert outside == []
    context.close()

    # 4. An origin not in allowed_origins: the browser refuses the response.
    context, page, _ = _page(chromium, f"http://localhost:{port}/index.html")
    answered: list[int] = []
    page.on(
        "response",
        lambda r: answered.append(r.status) if r.url.startswith(server.url + "/v1/") else None,
    )
    result = page.evaluate(
        """async ([url, key]) => {
            try {
              await fetch(url + '/v1/track', {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({type: 'track', event: 'Refused', anonymousId: 'x', writeKey: key})});
              return 'allowed';
            } catch (e) { return 'refused: ' + e.name; }
        }""",
        [server.url, WRITE_KEY],
    )
    assert result == "refused: TypeError"
    beacon = page.evaluate(
        """([url, key]) => navigator.sendBeacon(url + '/v1/track',
              new Blob([JSON.stringify({type: 'track', event: 'Refused Beacon',
                        anonymousId: 'x', writeKey: key})], {type: 'text/plain'}))""",
        [server.url, WRITE_KEY],
    )
    assert beacon is True  # queued by the browser; the collector refuses it
    page.evaluate("consentry.track('Refused Tag Event')")
    # both beacons reach the collector and are answered 403 (the fetch was stopped
    # by its preflight, which the browser keeps to itself)
    assert until(page, lambda: answered.count(403) >= 2), answered
    context.close()
    # A later allowed event from the allowed origin arrives; the refused never do.
    context, page, _ = _page(chromium, shop_origin + "/index.html")
    page.evaluate("consentry.track('After Refusal')")
    assert until(page, lambda: "After Refusal" in {m.get("event") for m in read_jsonl(lake)})
    context.close()
    refused = {"Refused", "Refused Beacon", "Refused Tag Event"}
    assert not refused & {m.get("event") for m in read_jsonl(lake)}
