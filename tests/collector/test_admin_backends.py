"""The admin API and the console over a real `consentry serve`, on SQLite and
on PostgreSQL: person lookup, a data subject request to its export, the
"why" of an event, the access log, and the console's overview, request queue
and access log read through the unit of work's stores on either backend."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx

from collector.access.principals import hash_password
from tests.collector.backends import Backend, backend, pg_module_dsn
from tests.conftest import Server, wait_for

__all__ = ["backend", "pg_module_dsn"]

TOKEN = "auditor-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"
CONFIG = f"""
[[access.tokens]]
name = "dpo-bot"
role = "admin"
token_env = "DPO_TOKEN"

[[access.users]]
name = "maria"
role = "admin"
password_hash = "{hash_password(PASSWORD)}"
"""


def call(server: Server, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)


def test_admin_api_and_console(backend: Backend) -> None:
    server = Server(
        backend.data_dir, backend.toml + CONFIG, env={**backend.env, "DPO_TOKEN": TOKEN}
    ).start()
    consent = {
        "userId": "carol-1",
        "traits": {"email": "carol@example.com"},
        "purposes": {"analytics": "granted"},
        "noticeVersion": "7",
    }
    assert server.post("/v1/consent", consent).status_code == 200
    for n in range(3):
        track = {"userId": "carol-1", "event": f"Viewed {n}", "messageId": f"msg-{n}"}
        assert server.post("/v1/track", track).status_code == 200
    who = {"identifiers": {"email": "carol@example.com"}}

    def routed() -> dict[str, Any] | None:
        found: dict[str, Any] = call(server, "POST", "/v1/admin/subjects/lookup", who).json()
        lake = [d for d in found.get("destinations", []) if d["name"] == "lake"]
        return found if lake and lake[0]["events"] == 3 else None

    person = wait_for(routed)
    assert person is not None, call(server, "POST", "/v1/admin/subjects/lookup", who).text
    assert person["consent"]["state"] == {"analytics": True}
    assert person["destinations"][0]["last_message_id"] == "msg-2"
    rid = call(server, "POST", "/v1/admin/dsr", {"type": "access", **who}).json()["id"]
    assert call(server, "POST", f"/v1/admin/dsr/{rid}/verify", {"method": "email_link"}).is_success
    z = call(server, "GET", f"/v1/admin/dsr/{rid}/export")
    assert z.status_code == 200, z.text
    doc = json.loads(zipfile.ZipFile(io.BytesIO(z.content)).read("export.json"))
    assert doc["person"]["one_id"] == person["one_id"]
    why = call(server, "GET", "/v1/admin/why?message_id=msg-0&destination=lake")
    assert why.status_code == 200, why.text
    log = call(server, "GET", "/v1/admin/access-log").json()["entries"]
    actions = {e["action"] for e in log if e["principal"] == "dpo-bot"}
    assert {"lookup", "open request", "export"} <= actions

    signed_in = httpx.post(
        server.url + "/console/login", data={"name": "maria", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    cookies = signed_in.cookies
    for page, expected in (
        ("/console", "lake"),
        ("/console/dsr", rid),
        ("/console/access-log", "dpo-bot"),
        ("/console/consent", "7"),
    ):
        r = httpx.get(server.url + page, cookies=cookies, timeout=30)
        assert r.status_code == 200 and expected in r.text, (page, r.text[-2000:])
    server.stop()
