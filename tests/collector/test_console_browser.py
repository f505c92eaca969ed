"""The compliance console in headless Chromium: sign in per role, look a person
up, handle an access request end to end (download and read the export),
erase as admin and see the receipts; an operator sees no person data.
Screenshots of the main pages go to docs/console-*.png."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx

from collector.access.principals import hash_password
from tests.conftest import Server, ServerFactory, wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs"
USERS = {"maria": "auditor", "root": "admin", "olga": "operator", "vera": "viewer"}
PASSWORD = "correct horse battery staple"
CONFIG = "\n".join(
    f'[[access.users]]\nname = "{n}"\nrole = "{r}"\npassword_hash = "{hash_password(PASSWORD)}"\n'
    for n, r in USERS.items()
)


def _seed(server: Server) -> None:
    consent = {
        "userId": "carol-1",
        "traits": {"email": "carol@example.com"},
        "purposes": {"analytics": "granted"},
        "noticeVersion": "7",
    }
    assert server.post("/v1/consent", consent).status_code == 200
    # Two more people who said no, for the overview's opt-in charts.
    for user, law, purposes in (
        ("dave-2", "GDPR", {"analytics": "denied", "advertising": "denied"}),
        ("erin-3", "CCPA", {"analytics": "denied"}),
    ):
        body = {"userId": user, "purposes": purposes, "jurisdiction": law, "noticeVersion": "7"}
        assert server.post("/v1/consent", body).status_code == 200
    for n in range(2):
        body = {
            "userId": "carol-1",
            "event": f"Order {n}",
            "traits": {"email": "carol@example.com"},
            "messageId": f"order-{n}",
            "context": {
                "app": {"id": "wxshop01"},
                "traits": {"wechat_unionid": "o6_union-carol", "wechat_openid": "oK-open-carol"},
            },
        }
        assert server.post("/v1/track", body).status_code == 200


def _login(chromium: Any, server: Server, name: str) -> tuple[Any, Any]:
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(server.url + "/console")
    assert page.url.endswith("/console/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/console")
    return context, page


def _shot(page: Any, name: str) -> None:
    """Refresh docs/console-<name>.png when CONSENTRY_SCREENSHOTS=1 (kept out of
    ordinary runs so the suite leaves the checkout clean)."""
    if os.environ.get("CONSENTRY_SCREENSHOTS") != "1":
        return
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=True)


def test_console_end_to_end(chromium: Any, server_factory: ServerFactory) -> None:
    server = server_factory(config=CONFIG).start()
    _seed(server)

    # Wrong password: refused, no session.
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/console/login")
    page.get_by_label("Name").fill("maria")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong name or password" in page.content()
    context.close()

    context, page = _login(chromium, server, "maria")
    cookie = next(c for c in context.cookies() if c["name"] == "consentry_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "Verified: the consent log has not been altered" in page.content()
    # Opt-in rates per purpose and law, drawn on the server with a table alternative.
    gdpr = page.locator("#chart-gdpr")
    assert (
        "Opt-in rate per purpose under EU/UK GDPR" in gdpr.locator("svg title").first.inner_html()
    )
    assert gdpr.locator("svg circle").count() == 2  # analytics and advertising, one day
    gdpr.locator("summary").click()
    table = gdpr.locator("table").inner_text()
    assert "50% of 2" in table and "0% of 1" in table
    assert "0% of 1" in (page.locator("#chart-ccpa table").text_content() or "")
    _shot(page, "overview")

    def looked_up() -> bool:
        page.goto(server.url + "/console/person")
        page.get_by_label("Identifier type").select_option("email")
        page.get_by_label("Identifier", exact=True).fill("Carol@Example.com")
        page.get_by_role("button", name="Look up").click()
        return page.locator("#person").count() == 1 and "lake" in page.content()

    assert wait_for(looked_up)
    person_id = page.locator("#person").inner_text()
    # The same person by a WeChat id: a unionid alone, an openid with its app.
    page.get_by_label("Identifier type").select_option("wechat_unionid")
    page.get_by_label("Identifier", exact=True).fill("o6_union-carol")
    page.get_by_role("button", name="Look up").click()
    assert page.locator("#person").inner_text() == person_id
    page.get_by_label("Identifier type").select_option("wechat_openid")
    page.get_by_label("Identifier", exact=True).fill("oK-open-carol")
    page.get_by_label("WeChat app ID", exact=False).fill("wxshop01")
    page.get_by_role("button", name="Look up").click()
    assert page.locator("#person").inner_text() == person_id
    assert "WeChat OpenID (one app)" in page.locator("table").first.inner_text()
    page.get_by_label("Identifier type").select_option("email")
    page.get_by_label("Identifier", exact=True).fill("Carol@Example.com")
    page.get_by_label("WeChat app ID", exact=False).fill("")
    page.get_by_role("button", name="Look up").click()
    text = page.content()
    assert "carol@example.com" not in text.lower().replace('value="carol@example.com"', "")
    _shot(page, "person")

    # From the person's deliveries to the "why" of the latest one: the consent
    # record that allowed it, in words.
    page.locator("a.why").first.click()
    page.wait_for_url("**/console/why?*")
    assert "order-1" in page.url

    def delivered() -> bool:
        page.reload()
        return "Delivered on" in page.locator("#delivery").inner_text()

    assert wait_for(delivered)
    assert page.locator("#outcome").inner_text().startswith("Allowed")
    assert "the person's consent" in page.locator("#basis").inner_text()
    justified = page.locator("#justified").inner_text()
    assert "Gave consent" in justified and "version 7" in justified
    assert "Measuring how the service is used (analytics): yes" in justified
    for jargon in ("no_decision", "NO_DECISION", "-@-", "legitimate_interests", "ALLOW"):
        assert jargon not in page.content()
    _shot(page, "why")
    page.goto(server.url + "/console/why")
    page.get_by_label("Message ID").fill("order-0")
    page.get_by_role("button", name="Explain").click()
    assert "Event order-0 and destination “lake”" in page.content()
    page.get_by_label("Message ID").fill("no-such-event")
    page.get_by_role("button", name="Explain").click()
    assert page.locator("#not-found").count() == 1

    page.goto(server.url + "/console/dsr")
    page.get_by_label("What the person asks for").select_option("access")
    page.get_by_label("Identifier type").select_option("email")
    page.get_by_label("Identifier (never stored)").fill("carol@example.com")
    page.get_by_role("button", name="Record request").click()
    page.wait_for_url("**/console/dsr/dsr_*")
    assert "Received, identity not yet checked" in page.locator("#state").inner_text()
    page.get_by_role("button", name="Identity checked").click()
    assert page.locator("#state").inner_text() == "Identity checked"
    page.get_by_role("button", name="Start work on it").click()
    assert page.locator("#state").inner_text() == "In progress"
    _shot(page, "request")
    due = page.locator("#due").inner_text()
    page.get_by_label("Why more time is needed").fill("the request covers five systems")
    page.get_by_role("button", name="Extend the deadline by 2 months").click()
    assert "extended once" in page.locator("#due").inner_text()
    assert page.locator("#due").inner_text() != due
    history = page.locator("#history").inner_text()
    assert "Deadline extended by maria (reason: the request covers five systems)" in history
    assert page.get_by_role("button", name="Extend the deadline by 2 months").count() == 0
    page.get_by_role("button", name="Mark as completed").click()
    assert page.locator("#state").inner_text() == "Completed"
    with page.expect_download() as info:
        page.locator("#download").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    doc = json.loads(archive.read("export.json"))
    assert doc["person"]["destinations"][0]["events"] == 2
    assert doc["person"]["consent"]["history"][0]["notice_version"] == "7"
    assert "Where your events went" in archive.read("index.html").decode()
    page.goto(server.url + "/console/dsr")
    row = page.locator("tr", has_text="Access (a copy of their data)").inner_text()
    assert "closed" in row and "(extended)" in row and "EU/UK GDPR" in row
    _shot(page, "queue")

    page.goto(server.url + "/console/consent")
    page.get_by_label("Choice").select_option("grant")
    page.get_by_role("button", name="Filter").click()
    assert "1 records match" in page.content() and "Gave consent" in page.content()
    with page.expect_download() as info:
        page.locator("#csv").click()
    rows = Path(info.value.path()).read_text().splitlines()
    assert len(rows) == 2 and rows[0].startswith("seq,action") and ",grant," in rows[1]
    _shot(page, "consent")
    page.goto(server.url + "/console/ropa")
    assert "lake" in page.locator("table").inner_text()
    with page.expect_download() as info:
        page.locator("#ropa-xlsx").click()
    assert Path(info.value.path()).read_bytes()[:2] == b"PK"  # an XLSX is a zip
    response = page.goto(server.url + "/console/access-log")
    assert response.status == 403  # the access log is the admin's
    context.close()

    # The operator: no person pages, no person data.
    context, page = _login(chromium, server, "olga")
    assert "Look a person up" not in page.content()
    response = page.goto(server.url + "/console/person")
    assert response.status == 403 and "may not do person.lookup" in page.content()
    response = page.goto(server.url + "/console/dsr")
    assert response.status == 403
    response = page.goto(server.url + "/console/why?message_id=order-1&destination=lake")
    assert response.status == 403 and "may not do person.why" in page.content()
    assert "order-1" not in page.locator("main").inner_text()
    context.close()

    # The viewer: the aggregate charts, nothing about anyone.
    context, page = _login(chromium, server, "vera")
    assert page.locator("#chart-gdpr svg[role=img]").count() == 1
    assert "Look a person up" not in page.content() and "ledger-status" not in page.content()
    response = page.goto(server.url + "/console/why?message_id=order-1&destination=lake")
    assert response.status == 403
    context.close()

    # The admin erases, and sees the per-destination receipts.
    context, page = _login(chromium, server, "root")
    page.goto(server.url + "/console/dsr")
    page.get_by_label("What the person asks for").select_option("erasure")
    page.get_by_label("Identifier type").select_option("userId")
    page.get_by_label("Identifier (never stored)").fill("carol-1")
    page.get_by_role("button", name="Record request").click()
    page.wait_for_url("**/console/dsr/dsr_*")
    erasure_url = page.url
    # Refusing needs a reason (the browser asks for one; the server checks too).
    page.locator("#refuse-reason").evaluate("e => e.removeAttribute('required')")
    page.locator("#refuse-reason").fill("   ")
    page.get_by_role("button", name="Refuse the request").click()
    assert "refusing a request needs a reason" in page.content()
    page.goto(erasure_url)
    page.get_by_role("button", name="Identity checked").click()
    page.get_by_role("button", name="Erase and complete").click()
    receipts = page.locator("#receipts").inner_text()
    assert "lake" in receipts
    _shot(page, "erasure")
    page.goto(server.url + "/console/access-log")
    log = page.locator("#access-log").inner_text()
    assert "maria" in log and "lookup" in log and "export" in log and "erase" in log
    assert "why order-1 at lake" in log
    assert "carol" not in log.lower()
    _shot(page, "access-log")
    context.close()

    # A form posted without the session's CSRF token is refused.
    r = httpx.post(server.url + "/console/login", data={"name": "maria", "password": PASSWORD})
    assert r.status_code == 303
    session = r.cookies.get("consentry_console")
    forged = httpx.post(
        server.url + "/console/person",
        data={"kind": "email", "value": "carol@example.com"},
        cookies={"consentry_console": session or ""},
    )
    assert forged.status_code == 403 and "form expired" in forged.text

    # Sign-in attempts are limited per name (10 per 15 minutes in each worker
    # process; the test server runs one per core).
    statuses = [
        httpx.post(
            server.url + "/console/login", data={"name": "mallory", "password": "x"}
        ).status_code
        for _ in range(10 * (os.cpu_count() or 1) + 5)
    ]
    # Earlier sign-ins from this address count too: at most 10 per worker get through.
    assert 429 in statuses and statuses.count(401) <= 10 * (os.cpu_count() or 1)
    assert set(statuses[: statuses.index(429)]) == {401}
