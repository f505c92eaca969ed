"""The admin API over real HTTP: the role x endpoint matrix, person lookup,
data subject requests end to end (export contents, erasure receipts), the
access log, records of processing."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.access.roles import MATRIX, ROLES, Permission
from tests.conftest import Server, ServerFactory, cli, wait_for

TOKENS = {role: f"{role}-token-0123456789abcdef" for role in ROLES}
CONFIG = "\n".join(
    f'[[access.tokens]]\nname = "{role}-bot"\nrole = "{role}"\ntoken_env = "TOK_{role.upper()}"\n'
    for role in ROLES
)
ENV = {f"TOK_{role.upper()}": token for role, token in TOKENS.items()}
CAROL = "Carol@Example.com"

# (method, path, body, permission)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, Permission]] = [
    (
        "POST",
        "/v1/admin/subjects/lookup",
        {"identifiers": {"email": "nobody@example.com"}},
        Permission.PERSON_LOOKUP,
    ),
    (
        "POST",
        "/v1/admin/dsr",
        {"type": "access", "identifiers": {"email": "nobody@example.com"}},
        Permission.DSR_MANAGE,
    ),
    ("GET", "/v1/admin/dsr", None, Permission.DSR_MANAGE),
    ("GET", "/v1/admin/dsr/dsr_0", None, Permission.DSR_MANAGE),
    ("POST", "/v1/admin/dsr/dsr_0/verify", {"method": "email_link"}, Permission.DSR_MANAGE),
    ("POST", "/v1/admin/dsr/dsr_0/start", None, Permission.DSR_MANAGE),
    ("POST", "/v1/admin/dsr/dsr_0/extend", {"reason": "complex"}, Permission.DSR_MANAGE),
    ("POST", "/v1/admin/dsr/dsr_0/complete", {}, Permission.DSR_MANAGE),
    ("GET", "/v1/admin/dsr/dsr_0/export", None, Permission.DSR_EXPORT),
    ("GET", "/v1/admin/ropa", None, Permission.ROPA),
    ("GET", "/v1/admin/access-log", None, Permission.ACCESS_LOG),
    ("GET", "/v1/admin/why?message_id=m-0&destination=lake", None, Permission.WHY),
    ("POST", "/v1/erase", {"userId": "nobody"}, Permission.ERASE),
]


def call(
    server: Server, method: str, path: str, body: object = None, token: str | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)


@pytest.fixture
def admin_server(server_factory: ServerFactory) -> Server:
    return server_factory(config=CONFIG, env=ENV).start()


def test_role_endpoint_matrix(admin_server: Server) -> None:
    for method, path, body, permission in ENDPOINTS:
        assert call(admin_server, method, path, body).status_code == 401, path
        bad = call(admin_server, method, path, body, token="not-a-token-0123456789")
        assert bad.status_code == 401, path
        for role in ROLES:
            r = call(admin_server, method, path, body, token=TOKENS[role])
            if permission in MATRIX[role]:
                assert r.status_code not in (401, 403), (role, path, r.text)
            else:
                assert r.status_code == 403, (role, path, r.text)
                reason = r.json()["error"]
                assert f"the {role} role may not do {permission.value}" in reason
                assert "admin" in reason  # names who may


def seed_carol(server: Server) -> None:
    consent = {
        "userId": "carol-1",
        "traits": {"email": CAROL},
        "purposes": {"analytics": "granted"},
        "noticeId": "privacy",
        "noticeVersion": "7",
    }
    assert server.post("/v1/consent", consent).status_code == 200
    for n in range(3):
        track = {
            "userId": "carol-1",
            "event": f"Viewed {n}",
            "traits": {"email": CAROL},
            "messageId": f"msg-{n}",
        }
        assert server.post("/v1/track", track).status_code == 200


def test_lookup_dsr_export_and_access_log(admin_server: Server) -> None:
    server = admin_server
    seed_carol(server)
    auditor, admin = TOKENS["auditor"], TOKENS["admin"]
    who = {"identifiers": {"email": "  carol@EXAMPLE.com "}}

    def routed() -> dict[str, Any] | None:
        r = call(server, "POST", "/v1/admin/subjects/lookup", who, auditor)
        found: dict[str, Any] = r.json()
        return found if r.status_code == 200 and found["destinations"][0]["events"] == 3 else None

    person = wait_for(routed)
    assert person, call(server, "POST", "/v1/admin/subjects/lookup", who, auditor).text
    kinds = {i["kind"] for i in person["identifiers"]}
    assert {"email", "user_id"} <= kinds
    assert person["consent"]["state"] == {"analytics": True}
    assert person["consent"]["history"][0]["notice_version"] == "7"
    assert person["destinations"][0]["name"] == "lake"

    unknown = call(
        server, "POST", "/v1/admin/subjects/lookup", {"identifiers": {"email": "x@y.org"}}, auditor
    )
    assert unknown.status_code == 404 and unknown.json()["path"] == "$.identifiers"
    bad = call(server, "POST", "/v1/admin/subjects/lookup", {"identifiers": {"ssn": "1"}}, auditor)
    assert bad.status_code == 400 and bad.json()["path"] == "$.identifiers.ssn"

    opened = call(server, "POST", "/v1/admin/dsr", {"type": "access", **who}, auditor)
    assert opened.status_code == 201, opened.text
    rid = opened.json()["id"]
    assert opened.json()["request"]["days_left"] > 27
    early = call(server, "GET", f"/v1/admin/dsr/{rid}/export", None, auditor)
    assert early.status_code == 409 and "verify" in early.json()["error"]
    not_yet = call(server, "POST", f"/v1/admin/dsr/{rid}/complete", {}, auditor)
    assert not_yet.status_code == 409, not_yet.text
    verified = call(
        server, "POST", f"/v1/admin/dsr/{rid}/verify", {"method": "email_link"}, auditor
    )
    assert verified.status_code == 200 and verified.json()["verified_by"] == "auditor-bot"
    done = call(server, "POST", f"/v1/admin/dsr/{rid}/complete", {}, auditor)
    assert done.status_code == 200 and done.json()["request"]["state"] == "completed"

    z = call(server, "GET", f"/v1/admin/dsr/{rid}/export", None, auditor)
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(z.content))
    assert set(archive.namelist()) == {
        "export.json",
        "consent_history.csv",
        "destinations.csv",
        "erasures.csv",
        "index.html",
    }
    doc = json.loads(archive.read("export.json"))
    assert doc["request"]["id"] == rid and doc["person"]["one_id"] == person["one_id"]
    assert sorted(doc["statements"])[0].startswith("a_") and len(doc["statements"]) == 8
    assert "Measuring how the service is used" in doc["statements"]["a_purposes"]
    dests = list(csv.DictReader(io.StringIO(archive.read("destinations.csv").decode())))
    assert dests[0]["name"] == "lake" and dests[0]["events"] == "3"
    history = list(csv.DictReader(io.StringIO(archive.read("consent_history.csv").decode())))
    assert history[0]["notice_version"] == "7" and history[0]["action"] == "grant"
    page = archive.read("index.html").decode()
    assert "Where your events went" in page and "<script" not in page
    for name in archive.namelist():
        assert b"carol" not in archive.read(name).lower(), name

    log = call(server, "GET", "/v1/admin/access-log", None, admin).json()["entries"]
    actions = [(e["principal"], e["action"]) for e in log]
    assert ("auditor-bot", "lookup") in actions and ("auditor-bot", "export") in actions
    lookups = [e for e in log if e["action"] == "lookup" and e["outcome"] == "ok"]
    assert lookups and lookups[0]["subject"] == str(person["one_id"])
    assert all("carol" not in json.dumps(e).lower() for e in log)
    server.stop()
    assert b"carol@example.com" not in (server.data_dir / "consentry.db").read_bytes().lower()


def test_erasure_request_needs_admin_and_returns_receipts(admin_server: Server) -> None:
    server = admin_server
    seed_carol(server)
    auditor, admin = TOKENS["auditor"], TOKENS["admin"]
    who = {"identifiers": {"userId": "carol-1"}}
    assert wait_for(
        lambda: call(server, "POST", "/v1/admin/subjects/lookup", who, auditor).status_code == 200
    )
    rid = call(server, "POST", "/v1/admin/dsr", {"type": "erasure", **who}, auditor).json()["id"]
    call(server, "POST", f"/v1/admin/dsr/{rid}/verify", {"method": "signed_in_account"}, auditor)
    refused = call(server, "POST", f"/v1/admin/dsr/{rid}/complete", {}, auditor)
    assert refused.status_code == 403 and "person.erase" in refused.json()["error"]
    done = call(server, "POST", f"/v1/admin/dsr/{rid}/complete", {"note": "ok"}, admin)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["request"]["state"] == "completed"
    assert body["erasure"]["erased"] is True
    assert [d["destination"] for d in body["erasure"]["destinations"]] == ["lake"]
    gone = call(server, "POST", "/v1/admin/subjects/lookup", who, auditor)
    assert gone.status_code == 404


def test_why_names_the_consent_that_allowed_a_delivery(admin_server: Server) -> None:
    server = admin_server
    seed_carol(server)
    auditor, admin = TOKENS["auditor"], TOKENS["admin"]
    path = "/v1/admin/why?message_id=msg-2&destination=lake"

    def delivered() -> dict[str, Any] | None:
        r = call(server, "GET", path, None, auditor)
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        delivery = body["decisions"][0]["delivery"]
        return body if delivery and delivery["status"] == "delivered" else None

    why = wait_for(delivered)
    assert why, call(server, "GET", path, None, auditor).text
    assert why["message_id"] == "msg-2" and why["destination"] == "lake"
    decision = why["decisions"][0]
    assert decision["outcome"] == "allow" and decision["legal_basis"] == "consent"
    assert any("analytics: granted by record" in r for r in decision["reasons"])
    (record,) = decision["records"]
    assert record["action"] == "grant" and record["purposes"] == {"analytics": True}
    assert record["notice_id"] == "privacy" and record["notice_version"] == "7"
    assert decision["delivery"]["attempts"] >= 1 and decision["delivery"]["batch"] is not None

    person = call(
        server, "POST", "/v1/admin/subjects/lookup", {"identifiers": {"userId": "carol-1"}}, auditor
    ).json()
    assert person["destinations"][0]["last_message_id"] == "msg-2"

    unknown = call(server, "GET", "/v1/admin/why?message_id=nope&destination=lake", None, auditor)
    assert unknown.status_code == 404 and unknown.json()["path"] == "message_id"
    missing = call(server, "GET", "/v1/admin/why?message_id=msg-2", None, auditor)
    assert missing.status_code == 400 and missing.json()["path"] == "destination"
    viewer = call(server, "GET", path, None, TOKENS["viewer"])
    assert viewer.status_code == 403 and "may not do person.why" in viewer.json()["error"]

    log = call(server, "GET", "/v1/admin/access-log", None, admin).json()["entries"]
    whys = [e for e in log if e["action"].startswith("why ")]
    assert {e["outcome"] for e in whys} == {"ok", "not found"}
    found = [e for e in whys if e["outcome"] == "ok"]
    assert found[0]["subject"] == str(person["one_id"])
    assert found[0]["action"] == "why msg-2 at lake"


def test_ropa_csv(admin_server: Server) -> None:
    r = call(admin_server, "GET", "/v1/admin/ropa?format=csv", None, TOKENS["auditor"])
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["destination"] == "lake" and rows[0]["purposes"] == "analytics"
    x = call(admin_server, "GET", "/v1/admin/ropa?format=xlsx", None, TOKENS["auditor"])
    assert x.status_code == 200 and x.headers["content-type"].startswith(
        "application/vnd.openxmlformats"
    )
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    table = [[c.value for c in row] for row in sheet.iter_rows()]
    assert table[0][0] == "destination" and table[1][0] == "lake"
    assert table[1][2] == rows[0]["purposes"]
    wrong = call(admin_server, "GET", "/v1/admin/ropa?format=pdf", None, TOKENS["auditor"])
    assert wrong.status_code == 400 and wrong.json()["path"] == "format"


def test_openapi_lists_admin_endpoints_with_401_and_403(admin_server: Server) -> None:
    from openapi_spec_validator import validate

    doc = httpx.get(admin_server.url + "/openapi.json").json()
    validate(doc)
    for method, path, _body, _perm in ENDPOINTS:
        template = path.split("?")[0].replace("dsr_0", "{id}")
        responses = doc["paths"][template][method.lower()]["responses"]
        assert {"401", "403"} <= set(responses), path


def test_cli_dsr_and_audit_export_by_raw_identifier(admin_server: Server, tmp_path: Path) -> None:
    server = admin_server
    seed_carol(server)
    assert wait_for(
        lambda: (
            call(
                server,
                "POST",
                "/v1/admin/subjects/lookup",
                {"identifiers": {"userId": "carol-1"}},
                TOKENS["auditor"],
            ).status_code
            == 200
        )
    )
    server.stop()
    unknown = cli(server, "audit", "export", "--subject", "nobody@example.com")
    assert unknown.returncode == 1 and "no person is known" in unknown.stderr
    known = cli(server, "audit", "export", "--subject", "carol@example.com", "--format", "json")
    assert known.returncode == 0, known.stderr
    assert json.loads(known.stdout)[0]["notice_version"] == "7"

    opened = cli(server, "dsr", "open", "--type", "access", "--email", "carol@example.com")
    assert opened.returncode == 0, opened.stderr
    rid = opened.stdout.strip()
    listed = cli(server, "dsr", "list")
    assert rid in listed.stdout and "days left" in listed.stdout
    assert cli(server, "dsr", "export", rid, "--out", str(tmp_path / "x.zip")).returncode == 1
    assert cli(server, "dsr", "verify", rid, "--method", "email_link").returncode == 0
    out = tmp_path / "carol.zip"
    assert cli(server, "dsr", "export", rid, "--out", str(out)).returncode == 0
    doc = json.loads(zipfile.ZipFile(out).read("export.json"))
    assert doc["person"]["destinations"][0]["events"] == 3
    done = cli(server, "dsr", "complete", rid)
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli(server, "dsr", "show", rid).stdout)
    assert shown["state"] == "completed" and shown["verification"] == "email_link"


def test_hash_password_command_output_signs_in() -> None:
    import subprocess
    import sys

    from collector.access.principals import AccessConfig, Principals, UserConfig

    out = subprocess.run(
        [sys.executable, "-m", "collector.cli", "access", "hash-password"],
        input="a long console password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    digest = out.stdout.strip()
    assert digest.startswith("$argon2id$") and "a long console password" not in out.stdout
    users = [UserConfig(name="maria", role="auditor", password_hash=digest)]
    principals = Principals.from_config(AccessConfig(users=users), admin_token_env=None)
    assert principals.login("maria", "a long console password") is not None
    assert principals.login("maria", "a long console passwore") is None
    short = subprocess.run(
        [sys.executable, "-m", "collector.cli", "access", "hash-password"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "12 characters" in short.stderr


DSR_CONFIG = (
    CONFIG
    + """
[dsr.controller]
name = "Shop Example GmbH"
contact = "privacy@shop.example"

[dsr.deadlines.GDPR]
unit = "days"
amount = 20
extension = 10
"""
)
UNIONID = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
OPENID = "oKvIh5L9y2nS-openid"


def test_deadlines_and_controller_from_config_start_and_extend(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(config=DSR_CONFIG, env=ENV).start()
    seed_carol(server)
    auditor = TOKENS["auditor"]
    who = {"identifiers": {"userId": "carol-1"}}
    assert wait_for(
        lambda: call(server, "POST", "/v1/admin/subjects/lookup", who, auditor).status_code == 200
    )
    opened = call(server, "POST", "/v1/admin/dsr", {"type": "access", **who}, auditor).json()
    rid = opened["id"]
    assert 19.9 < opened["request"]["days_left"] <= 20  # [dsr.deadlines.GDPR], not a month
    early = call(server, "POST", f"/v1/admin/dsr/{rid}/start", None, auditor)
    assert (
        early.status_code == 409
        and "received request cannot become in_progress" in (early.json()["error"])
    )
    call(server, "POST", f"/v1/admin/dsr/{rid}/verify", {"method": "email_link"}, auditor)
    started = call(server, "POST", f"/v1/admin/dsr/{rid}/start", None, auditor)
    assert started.status_code == 200 and started.json()["state"] == "in_progress"
    blank = call(server, "POST", f"/v1/admin/dsr/{rid}/extend", {"reason": "  "}, auditor)
    assert blank.status_code == 400 and blank.json()["path"] == "$.reason"
    longer = call(
        server, "POST", f"/v1/admin/dsr/{rid}/extend", {"reason": "many systems"}, auditor
    )
    assert longer.status_code == 200, longer.text
    body = longer.json()
    assert body["extended"] is True and 29.9 < body["days_left"] <= 30
    assert body["history"][-1]["note"] == "extended: many systems"
    again = call(server, "POST", f"/v1/admin/dsr/{rid}/extend", {"reason": "more"}, auditor)
    assert again.status_code == 409 and "no (further) extension" in again.json()["error"]

    z = call(server, "GET", f"/v1/admin/dsr/{rid}/export", None, auditor)
    archive = zipfile.ZipFile(io.BytesIO(z.content))
    doc = json.loads(archive.read("export.json"))
    assert doc["controller"] == {"name": "Shop Example GmbH", "contact": "privacy@shop.example"}
    assert "collected by Shop Example GmbH" in doc["statements"]["g_source"]
    assert "writing to privacy@shop.example" in doc["statements"]["e_rights"]
    assert (
        "From Shop Example GmbH (contact: privacy@shop.example)"
        in archive.read("index.html").decode()
    )
    ropa = list(
        csv.DictReader(io.StringIO(call(server, "GET", "/v1/admin/ropa", None, auditor).text))
    )
    assert ropa[0]["controller"] == "Shop Example GmbH"
    assert ropa[0]["controller_contact"] == "privacy@shop.example"

    # Refusing needs a reason the person is told.
    other = call(server, "POST", "/v1/admin/dsr", {"type": "erasure", **who}, auditor).json()
    blank = call(server, "POST", f"/v1/admin/dsr/{other['id']}/refuse", {"reason": ""}, auditor)
    assert blank.status_code == 400 and blank.json()["path"] == "$.reason"
    refused = call(
        server, "POST", f"/v1/admin/dsr/{other['id']}/refuse", {"reason": "not you"}, auditor
    )
    assert refused.json()["state"] == "refused" and refused.json()["refusal_reason"] == "not you"

    # The CLI: the same module, the same deadlines.
    server.stop()
    opened_cli = cli(server, "dsr", "open", "--type", "access", "--user-id", "carol-1")
    assert opened_cli.returncode == 0, opened_cli.stderr
    cid = opened_cli.stdout.strip()
    assert cli(server, "dsr", "start", cid).returncode == 2  # not verified yet
    assert cli(server, "dsr", "verify", cid, "--method", "email_link").returncode == 0
    assert cli(server, "dsr", "start", cid).returncode == 0
    extended = cli(server, "dsr", "extend", cid, "--reason", "backups")
    assert extended.returncode == 0 and "30 days left" in extended.stdout, extended.stderr
    shown = json.loads(cli(server, "dsr", "show", cid).stdout)
    assert shown["state"] == "in_progress" and shown["extended"] is True
    assert cli(server, "dsr", "refuse", cid, "--reason", " ").returncode == 2
    assert cli(server, "dsr", "refuse", cid, "--reason", "duplicate").returncode == 0
    out = cli(server, "dsr", "export", rid, "--out", str(server.data_dir.parent / "x.zip"))
    assert out.returncode == 0, out.stderr
    doc = json.loads(zipfile.ZipFile(server.data_dir.parent / "x.zip").read("export.json"))
    assert doc["controller"]["name"] == "Shop Example GmbH"


def test_wechat_ids_find_the_person(admin_server: Server) -> None:
    server = admin_server
    track = {
        "userId": "wx-user-1",
        "event": "Opened mini program",
        "context": {
            "app": {"id": "wxshop01"},
            "traits": {"wechat_unionid": UNIONID, "wechat_openid": OPENID},
        },
    }
    assert server.post("/v1/track", track).status_code == 200
    auditor = TOKENS["auditor"]

    def lookup(identifiers: dict[str, str]) -> httpx.Response:
        return call(
            server, "POST", "/v1/admin/subjects/lookup", {"identifiers": identifiers}, auditor
        )

    by_user = wait_for(lambda: lookup({"userId": "wx-user-1"}).status_code == 200)
    assert by_user
    one_id = lookup({"userId": "wx-user-1"}).json()["one_id"]
    union = lookup({"wechat_unionid": UNIONID})
    assert union.status_code == 200 and union.json()["one_id"] == one_id
    kinds = {i["kind"] for i in union.json()["identifiers"]}
    assert {"wechat_unionid", "wechat_openid", "user_id"} <= kinds
    opened = lookup({"wechat_openid": OPENID, "wechat_app_id": "wxshop01"})
    assert opened.status_code == 200 and opened.json()["one_id"] == one_id
    # An openid is per app: another app's same openid is someone else.
    assert lookup({"wechat_openid": OPENID, "wechat_app_id": "wxother"}).status_code == 404
    no_app = lookup({"wechat_openid": OPENID})
    assert no_app.status_code == 400
    assert no_app.json()["path"] == "$.identifiers.wechat_app_id"
    assert "one WeChat app" in no_app.json()["error"]
    req = call(
        server,
        "POST",
        "/v1/admin/dsr",
        {"type": "access", "identifiers": {"wechat_unionid": UNIONID}},
        auditor,
    ).json()
    assert req["request"]["subject"] == str(one_id)
    assert req["request"]["identifier_kinds"] == ["wechat_unionid"]

    server.stop()
    found = cli(server, "dsr", "lookup", "--wechat-unionid", UNIONID)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["one_id"] == one_id
    found = cli(server, "dsr", "lookup", "--wechat-openid", OPENID, "--wechat-app-id", "wxshop01")
    assert found.returncode == 0 and json.loads(found.stdout)["one_id"] == one_id
    no_app_cli = cli(server, "dsr", "lookup", "--wechat-openid", OPENID)
    assert no_app_cli.returncode == 2 and "--wechat-app-id" in no_app_cli.stderr
    nobody = cli(server, "dsr", "lookup", "--wechat-unionid", "o6_nobody")
    assert nobody.returncode == 1 and "no person is known" in nobody.stderr
    log = (server.data_dir / "consentry.db").read_bytes()
    assert UNIONID.encode() not in log and OPENID.encode() not in log
