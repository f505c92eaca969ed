"""Console sessions over real HTTP: one idle past `[access]
session_idle_minutes` is signed out; one in use stays signed in (the idle
timeout slides). A short configured timeout (3 seconds) keeps the test short;
the waits are real because the server's clock is."""

from __future__ import annotations

import time

import httpx

from collector.access.principals import hash_password
from tests.conftest import Server, ServerFactory

PASSWORD = "correct horse battery staple"
CONFIG = f"""
[access]
session_idle_minutes = 0.05

[[access.users]]
name = "maria"
role = "auditor"
password_hash = "{hash_password(PASSWORD)}"
"""
COOKIE = "consentry_console"


def _sign_in(server: Server) -> str:
    r = httpx.post(server.url + "/console/login", data={"name": "maria", "password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/console"
    value = r.cookies.get(COOKIE)
    assert value
    assert "Max-Age=3" in r.headers["set-cookie"]  # the browser forgets it too
    return value


def _overview(server: Server, cookie: str) -> httpx.Response:
    return httpx.get(server.url + "/console", cookies={COOKIE: cookie}, timeout=30)


def test_an_idle_session_is_signed_out_and_a_busy_one_is_not(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(config=CONFIG).start()
    cookie = _sign_in(server)
    # In use: every page re-issues the cookie, so 4.5 seconds of clicks a
    # second and a half apart outlast the 3-second idle limit.
    for _ in range(3):
        page = _overview(server, cookie)
        assert page.status_code == 200 and "Signed in as maria" in page.text
        cookie = page.cookies.get(COOKIE) or ""
        assert cookie
        time.sleep(1.5)
    assert _overview(server, cookie).status_code == 200

    # Idle: 4.5 seconds without a request, and the same cookie no longer works.
    cookie = _sign_in(server)
    time.sleep(4.5)
    gone = _overview(server, cookie)
    assert gone.status_code == 303 and gone.headers["location"] == "/console/login"
    posted = httpx.post(
        server.url + "/console/person",
        data={"kind": "email", "value": "x@example.com"},
        cookies={COOKIE: cookie},
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/console/login"
