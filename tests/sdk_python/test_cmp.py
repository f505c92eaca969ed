"""The CMP cookie parsers (sdk_python.cmp): each vendor's "accept all", "reject
all" and a partial choice, under GDPR and CCPA, through the SDK middleware and
through the collector (real HTTP, real SQLite, jsonl destinations by purpose);
properties: never raise, fail closed."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from consent import tcf
from sdk_python import Client, ConsentMiddleware
from sdk_python.cmp import Reading, Unreadable, parse_consent_cookies
from tests.conftest import WRITE_KEY, Server, wait_for
from tests.consent.test_tcf import BITFIELD

ADS_AND_LAKE = """
[[destinations]]
name = "ads"
type = "jsonl"
purposes = ["advertising"]

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""
CHOICES = ("all", "none", "analytics")  # accept all, reject all, analytics only


def _tcf(purposes: set[int]) -> str:
    return tcf.encode(
        dataclasses.replace(tcf.decode(BITFIELD), purpose_consents=frozenset(purposes))
    )


def onetrust(choice: str) -> dict[str, str]:
    flags = {"all": "1,1,1", "none": "0,0,0", "analytics": "1,0,0"}[choice].split(",")
    groups = f"C0001:1,C0002:{flags[0]},C0003:{flags[1]},C0004:{flags[2]}"
    value = (
        "isGpcEnabled=0&datestamp=Mon+Jan+08+2024+10:00:00+GMT+0100&version=202310.2.0"
        f"&consentId=6c1f0e2a-9d1b-4c3e-8f00-5a2b7e3d4c11&interactionCount=1&groups={groups}"
        "&AwaitingReconsent=false&geolocation=DE;BY"
    )
    return {"OptanonConsent": quote(value, safe="")}


def cookiebot(choice: str) -> dict[str, str]:
    stats, ads = {"all": ("true", "true"), "none": ("false", "false")}.get(
        choice, ("true", "false")
    )
    value = (
        f"{{stamp:'-3LMbmNaIq2z8Nq6Xl8XYLX5xqgx6D5U1zZKpD0c0yQ==',necessary:true,"
        f"preferences:{stats},statistics:{stats},marketing:{ads},method:'explicit',ver:1,"
        "utc:1704704400000,region:'de'}"
    )
    return {"CookieConsent": quote(value, safe="")}


def didomi(choice: str) -> dict[str, str]:
    ads = ["select_basic_ads", "create_ads_profile", "select_personalized_ads"]
    stats = ["measure_content_performance", "improve_products"]
    enabled = {"all": ads + stats, "none": [], "analytics": stats}[choice]
    disabled = [p for p in ads + stats if p not in enabled]
    token = {
        "user_id": "18c7a6b2-6e1d-6d3c-9b8a-2f4e6a1c0d9e",
        "created": "2024-01-08T09:00:00.000Z",
        "updated": "2024-01-08T09:00:00.000Z",
        "vendors": {"enabled": [], "disabled": []},
        "purposes": {"enabled": enabled, "disabled": disabled},
        "version": 2,
    }
    return {"didomi_token": base64.b64encode(json.dumps(token).encode()).decode()}


def klaro(choice: str) -> dict[str, str]:
    stats, ads = {"all": (True, True), "none": (False, False)}.get(choice, (True, False))
    return {"klaro": quote(json.dumps({"matomo": stats, "facebook-pixel": ads}), safe="")}


def complianz(choice: str) -> dict[str, str]:
    stats, ads = {"all": ("allow", "allow"), "none": ("deny", "deny")}.get(
        choice, ("allow", "deny")
    )
    return {"cmplz_functional": "allow", "cmplz_statistics": stats, "cmplz_marketing": ads}


def cookieyes(choice: str) -> dict[str, str]:
    stats, ads = {"all": ("yes", "yes"), "none": ("no", "no")}.get(choice, ("yes", "no"))
    value = (
        f"consentid:YWJjZGVmZ2hpams,consent:{'no' if choice == 'none' else 'yes'},action:yes,"
        f"necessary:yes,functional:{stats},analytics:{stats},performance:{stats},"
        f"advertisement:{ads},other:{ads}"
    )
    return {"cookieyes-consent": value}


def shopify(choice: str) -> dict[str, str]:
    a, m = {"all": ("1", "1"), "none": ("0", "0")}.get(choice, ("1", "0"))
    value = {
        "con": {"CMP": {"a": a, "m": m, "p": a, "s": m}},
        "v": "2.1",
        "region": "DEBY",
        "reg": "",
        "purposes": {"a": a == "1", "p": a == "1", "m": m == "1", "t": m == "1"},
        "display_banner": False,
        "sale_of_data_region": False,
        "consent_id": "0F6A1C3E-3B2D-4E7F-9A8B-1C2D3E4F5A6B",
    }
    return {"_tracking_consent": quote(json.dumps(value), safe="")}


def tcf_cookie(choice: str) -> dict[str, str]:
    purposes = {"all": set(range(1, 12)), "none": set(), "analytics": {1, 8, 9, 10}}[choice]
    return {"euconsent-v2": _tcf(purposes)}


VENDORS: dict[str, Callable[[str], dict[str, str]]] = {
    "onetrust": onetrust,
    "cookiebot": cookiebot,
    "didomi": didomi,
    "klaro": klaro,
    "complianz": complianz,
    "cookieyes": cookieyes,
    "shopify": shopify,
}


def header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def test_each_vendor_maps_accept_reject_and_partial_onto_our_purposes() -> None:
    for name, make in VENDORS.items():
        accept = parse_consent_cookies(make("all"))
        reject = parse_consent_cookies(make("none"))
        partial = parse_consent_cookies(make("analytics"))
        assert accept.sources == (name,) and not accept.warnings, name
        assert accept.purposes["analytics"] and accept.purposes["advertising"], name
        assert accept.purposes["marketing"], name  # "marketing" covers both (issue 21)
        assert not reject.purposes["analytics"] and not reject.purposes["advertising"], name
        assert not reject.purposes["marketing"], name
        assert partial.purposes["analytics"] and not partial.purposes["advertising"], name


def test_an_unreadable_cookie_warns_and_fails_closed() -> None:
    for name in ("OptanonConsent", "CookieConsent", "didomi_token", "klaro", "_tracking_consent"):
        for jurisdiction, opted_out in (("GDPR", False), ("US-CA", True), (None, True)):
            found = parse_consent_cookies({name: "%7Bnot-valid"}, jurisdiction=jurisdiction)
            assert len(found.warnings) == 1 and name in found.warnings[0]
            assert "not-valid" not in found.warnings[0]  # never quotes the value
            assert not any(found.purposes.values())
            assert (found.purposes.get("advertising") is False) is opted_out
    # one unreadable cookie beside a readable one: the readable one still counts
    both = parse_consent_cookies({**complianz("analytics"), "klaro": "{"}, jurisdiction="GDPR")
    assert both.purposes["analytics"] and len(both.warnings) == 1


def test_a_brand_adds_its_own_cmp_with_parse() -> None:
    def mine(cookies: Mapping[str, str]) -> Reading | None:
        if "brand_cmp" not in cookies:
            return None
        if cookies["brand_cmp"] not in ("in", "out"):
            raise Unreadable("brand_cmp is neither in nor out")
        granted = cookies["brand_cmp"] == "in"
        return Reading("brand", purposes={"analytics": granted, "advertising": granted})

    assert parse_consent_cookies({"brand_cmp": "in"}, parse=[mine]).purposes == {
        "analytics": True,
        "advertising": True,
    }
    odd = parse_consent_cookies({"brand_cmp": "??"}, parse=[mine], jurisdiction="CCPA")
    assert odd.warnings and odd.purposes == {"advertising": False, "marketing": False}


NAMES = st.sampled_from(
    [
        "OptanonConsent",
        "CookieConsent",
        "didomi_token",
        "klaro",
        "cmplz_marketing",
        "cookieyes-consent",
        "_tracking_consent",
        "euconsent-v2",
        "__gpp",
        "consent",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(NAMES, st.text(max_size=80), max_size=4),
    st.sampled_from(["GDPR", "CCPA", None]),
)
def test_parsers_never_raise_and_garbage_grants_nothing(
    cookies: dict[str, str], j: str | None
) -> None:
    found = parse_consent_cookies(cookies, jurisdiction=j)
    assert set(found.purposes) <= {
        "necessary",
        "analytics",
        "personalization",
        "advertising",
        "marketing",
    }
    if found.warnings and j != "GDPR":
        assert (
            found.purposes.get("advertising") is False and found.purposes.get("marketing") is False
        )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="xyz{}[]:,'\"%=&;~ ", max_size=60))
def test_text_without_any_grant_word_never_grants(value: str) -> None:
    cookies = {n: value for n in ("OptanonConsent", "CookieConsent", "klaro", "cookieyes-consent")}
    found = parse_consent_cookies(cookies, jurisdiction="GDPR")
    assert not any(found.purposes.values())


def _serve(server_factory) -> Server:
    return server_factory(ADS_AND_LAKE).start()


def _expected(choice: str) -> tuple[bool, bool]:
    """(reaches ads, reaches lake), the same under GDPR and CCPA: every choice
    states both purposes explicitly."""
    return {"all": (True, True), "none": (False, False), "analytics": (False, True)}[choice]


def test_every_cmp_round_trips_through_the_middleware_and_the_collector(server_factory) -> None:
    server = _serve(server_factory)
    client = Client(WRITE_KEY, host=server.url, flush_interval=0.05, send=True, overflow="block")

    async def shop(request: Request) -> PlainTextResponse:
        mid = request.query_params["id"]
        j = request.query_params["j"]
        client.track(
            f"user-{mid}", "Viewed", message_id=mid, context={"consent": {"jurisdiction": j}}
        )
        return PlainTextResponse("ok")

    app = ConsentMiddleware(Starlette(routes=[Route("/p", shop)]))
    vendors = {**VENDORS, "tcf": tcf_cookie}
    cases = [(v, c, j) for v in vendors for c in CHOICES for j in ("GDPR", "CCPA")]

    async def browse() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://shop",
        ) as http:
            for v, c, j in cases:
                await http.get(
                    f"/p?id=mw-{v}-{c}-{j}&j={j}", headers={"Cookie": header(vendors[v](c))}
                )

    asyncio.run(browse())
    # the same cookies sent by a browser straight to the collector
    for v, c, j in cases:
        body = {
            "type": "track",
            "event": "Viewed",
            "anonymousId": f"anon-{v}-{c}-{j}",
            "messageId": f"direct-{v}-{c}-{j}",
            "context": {"consent": {"jurisdiction": j}},
        }
        response = server.post("/v1/track", body, headers={"Cookie": header(vendors[v](c))})
        assert response.status_code == 200, response.text
    assert client.flush(20)
    client.shutdown()
    n_lake = sum(_expected(c)[1] for _, c, _ in cases) * 2
    assert wait_for(lambda: len(_ids(server, "lake")) >= n_lake, timeout=20)
    server.stop()
    ads, lake = set(_ids(server, "ads")), set(_ids(server, "lake"))
    for v, c, j in cases:
        to_ads, to_lake = _expected(c)
        for prefix in ("mw", "direct"):
            mid = f"{prefix}-{v}-{c}-{j}"
            assert (mid in ads) is to_ads, mid
            assert (mid in lake) is to_lake, mid


def _ids(server: Server, name: str) -> list[str]:
    path = server.data_dir / "out" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["messageId"] for line in path.read_text().splitlines() if line]
