"""WeChat ids reach the identity graph: openids namespaced by app, unionids
linking across apps and the web; raw ids never on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from collector.sources.wechat import app_id_of, namespaced_openid
from tests.conftest import ServerFactory, read_jsonl, wait_for

CONFIG = """
[identity]
wechat_openid_keys = ["openid", "wx_open_id"]

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
path = "{data}/lake"
"""
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}


def event(name: str, *, app: str | None = None, **ids: Any) -> dict[str, Any]:
    context: dict[str, Any] = {**CONSENT, "traits": {}}
    if app:
        context["app"] = {"id": app, "name": "mini-program"}
    for key in ("openid", "unionid", "wx_open_id"):
        if key in ids:
            context["traits"][key] = ids.pop(key)
    return {"type": "track", "event": name, "context": context, **ids}


def test_openids_are_per_app_and_unionids_link(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = server_factory(CONFIG.format(data=data)).start()
    batch = [
        event("A1", app="wxAAAA", anonymousId="mp-a-1", openid="oSAME-openid-123"),
        event("B1", app="wxBBBB", anonymousId="mp-b-1", openid="oSAME-openid-123"),
        event(
            "A2",
            app="wxAAAA",
            anonymousId="mp-a-2",
            wx_open_id="oSAME-openid-123",
            unionid="uUNION-456",
        ),
        event("WEB", userId="web-user-9", unionid="uUNION-456"),
        event("NOAPP", anonymousId="mp-x", openid="oLONELY-789"),
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 5, r.text
    rows = wait_for(lambda: got if len(got := read_jsonl(data / "lake")) >= 5 else None)
    assert rows is not None
    one = {m["event"]: m["context"]["consentry"]["oneId"] for m in rows}
    assert one["A1"] == one["A2"] == one["WEB"]  # same app's openid, then the unionid
    assert one["B1"] != one["A1"]  # the same openid string in another app is another person
    lonely = next(m for m in rows if m["event"] == "NOAPP")
    assert str(lonely["context"]["traits"]["openid"]).startswith("ps1.")
    server.stop()
    disk = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    for raw in (b"oSAME-openid-123", b"uUNION-456", b"oLONELY-789"):
        assert raw not in disk


@given(
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=10),
    st.text(min_size=1, max_size=10),
)
def test_two_apps_never_share_an_openid(openid: str, app_a: str, app_b: str) -> None:
    a, b = namespaced_openid(openid, app_a), namespaced_openid(openid, app_b)
    assert a is not None and b is not None
    assert (a == b) == (app_a == app_b)


def test_app_id_from_context_or_config() -> None:
    assert app_id_of({"app": {"id": "wx1"}}, "wxCONF") == "wx1"
    assert app_id_of({"app": {"name": "x"}}, "wxCONF") == "wxCONF"
    assert app_id_of(None, None) is None
    assert namespaced_openid("o", None) is None
