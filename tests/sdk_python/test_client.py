"""The SDK against the real collector over loopback."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest
import segment.analytics as segment_analytics

from sdk_python import Client
from tests.conftest import WRITE_KEY, Server, ServerFactory, free_port, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


def comparable(m: dict[str, Any]) -> dict[str, Any]:
    ctx = {k: v for k, v in m.get("context", {}).items() if k not in ("library", "consentry")}
    keep = (
        "type",
        "userId",
        "anonymousId",
        "event",
        "name",
        "category",
        "properties",
        "traits",
        "groupId",
        "previousId",
    )
    return {**{k: m[k] for k in keep if m.get(k) not in (None, {})}, "context": ctx}


def drive(client: Any) -> None:
    client.identify(
        "drop-in-user", {"email": "Drop.In@Example.com", "plan": "pro"}, context=CONSENTED
    )
    client.track("drop-in-user", "Product Viewed", {"sku": "A-1", "price": 9.5}, context=CONSENTED)
    client.page("drop-in-user", "Shop", "Home", {"path": "/"}, context=CONSENTED)
    client.screen("drop-in-user", "App", "Cart", {"items": 2}, context=CONSENTED)
    client.group("drop-in-user", "acme", {"name": "Acme"}, context=CONSENTED)
    client.alias("anon-drop-in", "drop-in-user", context=CONSENTED)


def test_drop_in_for_segment_analytics(server_factory: ServerFactory) -> None:
    ours = server_factory(name="ours").start()
    theirs = server_factory(
        name="theirs", env={"CONSENTRY_MASTER_KEY": ours.env["CONSENTRY_MASTER_KEY"]}
    )
    # the same keyring, so pseudonyms are comparable across the two collectors
    theirs.data_dir.mkdir(parents=True)
    (theirs.data_dir / "keyring.json").write_bytes((ours.data_dir / "keyring.json").read_bytes())
    theirs.start()
    seg = segment_analytics.Client(WRITE_KEY, host=theirs.url, sync_mode=True)
    drive(seg)
    seg.flush()
    with Client(WRITE_KEY, host=ours.url) as client:
        drive(client)
    a = wait_for(lambda: got if len(got := read_jsonl(ours.data_dir / "out")) >= 6 else None)
    b = wait_for(lambda: got if len(got := read_jsonl(theirs.data_dir / "out")) >= 6 else None)
    assert a and b
    key = lambda m: m["type"]  # noqa: E731
    assert [comparable(m) for m in sorted(a, key=key)] == [
        comparable(m) for m in sorted(b, key=key)
    ]


def test_unmodified_rudderstack_client_works(server: Server) -> None:
    from rudderstack.analytics.client import Client as RudderClient

    rudder = RudderClient(WRITE_KEY, host=server.url, sync_mode=True)
    rudder.identify("rudder-user", {"email": "r@example.com"}, context=CONSENTED)
    rudder.track("rudder-user", "Rudder Event", {"n": 1}, context=CONSENTED)
    rudder.page("rudder-user", "Docs", "Home", context=CONSENTED)
    rudder.flush()
    lines = wait_for(lambda: got if len(got := read_jsonl(server.data_dir / "out")) >= 3 else None)
    assert lines is not None
    assert {m["type"] for m in lines} == {"identify", "track", "page"}
    assert all(str(m["userId"]).startswith("ps1.") for m in lines)
    identify = next(m for m in lines if m["type"] == "identify")
    # RudderStack's SDK sends identify traits under context.traits
    traits = identify.get("traits") or identify["context"]["traits"]
    assert traits["email"].startswith("ps1.")
    server.stop()
    disk = b"".join(p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file())
    assert b"r@example.com" not in disk and b"rudder-user" not in disk


def test_never_raises_and_delivers_after_collector_comes_back(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    drops: list[tuple[str, int]] = []
    client = Client(
        WRITE_KEY,
        host=server.url,
        flush_interval=0.05,
        max_retries=30,
        on_drop=lambda reason, n: drops.append((reason, n)),
    )
    for i in range(10):
        ok, _ = client.track(f"late-{i}", "Queued While Down", context=CONSENTED)
        assert ok
    server.start()  # collector appears after the events were queued
    assert client.flush(30)
    client.shutdown()
    assert not drops
    assert wait_for(lambda: len(read_jsonl(server.data_dir / "out")) >= 10)


def test_bad_input_is_reported_not_raised() -> None:
    client = Client(WRITE_KEY, host=f"http://127.0.0.1:{free_port()}", send=False)
    ok, _ = client.track("u", "E", properties={"x": "y" * 40_000})
    assert ok is False and client.dropped == 1
    ok, _ = client.track("u", "E", properties={"bad": object()})  # not encodable
    assert ok is False
    client.shutdown()


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_overflow_policies_count_every_drop(policy: str) -> None:
    drops: list[int] = []
    client = Client(
        WRITE_KEY,
        host=f"http://127.0.0.1:{free_port()}",
        max_queue_size=5,
        overflow=policy,  # type: ignore[arg-type]
        flush_at=1000,
        flush_interval=60,
        on_drop=lambda r, n: drops.append(n),
        max_retries=0,
    )
    for i in range(12):
        client.track("u", f"E{i}")
    assert sum(drops) == 7
    queued = [data for _, data in client._queue]
    expected = [f"E{i}" for i in (range(5) if policy == "drop_newest" else range(7, 12))]
    assert [q.split(b'"event":"')[1].split(b'"')[0].decode() for q in queued] == expected
    client._queue.clear()
    client.shutdown(1)


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_fork_child_gets_its_own_sender_and_nothing_twice(server: Server) -> None:
    client = Client(WRITE_KEY, host=server.url, flush_interval=0.05)
    client.track("parent", "Before Fork", context=CONSENTED, message_id="before-fork")
    pid = os.fork()
    if pid == 0:
        try:
            client.track("child", "In Child", context=CONSENTED, message_id="in-child")
            ok = client.flush(10)
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(10)
    client.shutdown()
    ids = wait_for(
        lambda: (
            r
            if len(r := [m["messageId"] for m in read_jsonl(server.data_dir / "out")]) >= 2
            else None
        )
    )
    assert ids and sorted(ids) == ["before-fork", "in-child"]


def test_consent_call_records_and_unlocks_forwarding(server: Server) -> None:
    client = Client(WRITE_KEY, host=server.url, flush_interval=0.05)
    client.track("c-user", "Before Consent", message_id="before")
    assert client.flush(10)
    result = client.consent(
        "c-user",
        {"analytics": True},
        notice_id="banner",
        notice_version="3",
        method="banner_accept",
    )
    assert result is not None and result["action"] == "grant"
    client.track("c-user", "After Consent", message_id="after")
    assert client.flush(10)
    # delivered before the withdrawal (a withdrawal first would stop it in the outbox)
    assert wait_for(lambda: read_jsonl(server.data_dir / "out"))
    result = client.consent("c-user", {"analytics": False}, method="preferences")
    assert result is not None and result["action"] == "withdraw"
    client.track("c-user", "After Withdrawal", message_id="withdrawn")
    assert client.flush(10)
    client.shutdown()
    server.stop()
    assert [m["messageId"] for m in read_jsonl(server.data_dir / "out")] == ["after"]
