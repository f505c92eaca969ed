"""The SDK where production lives (issue 21 §1-5, issue 13 cases 2 and 11):
several processes, forks, event loops, exit, quarantine, poison messages.
Real processes, a real collector (``server_factory``) that is down and then
comes back, and a real loopback HTTP server that fails one message."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sdk_python import AsyncClient, Client
from tests.conftest import WRITE_KEY, Server, read_jsonl, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def delivered_ids(server: Server, n: int, timeout: float = 30) -> list[str]:
    lines = wait_for(
        lambda: r if len(r := read_jsonl(server.data_dir / "out")) >= n else None, timeout=timeout
    )
    return [str(m["messageId"]) for m in (lines or read_jsonl(server.data_dir / "out"))]


def test_two_processes_sharing_a_spool_path_deliver_everything_once(
    server_factory, tmp_path: Path
) -> None:
    """§1: the same (default-like) spool path in two processes, collector down."""
    server = server_factory()  # down
    spool = tmp_path / "shared.db"
    producer = f"""
        import sys
        from sdk_python import Client
        tag = sys.argv[1] if len(sys.argv) > 1 else "p"
        c = Client({WRITE_KEY!r}, host={server.url!r}, spool_path={str(spool)!r},
                   flush_interval=0.05, max_queue_size=50)
        for i in range(300):
            c.track("u", "E", message_id=f"{{tag}}-{{i:03d}}", context={CONSENTED!r})
            assert c.spooled >= 0
        c.shutdown(timeout=1)
        print("dropped", c.dropped)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(producer), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err[-2000:]
        assert "dropped 0" in out
    assert len(list((tmp_path / "shared.db.d").glob("*.db"))) == 2  # one file per process
    server.start()
    with Client(WRITE_KEY, host=server.url, spool_path=spool, flush_interval=0.05) as drainer:
        assert drainer.spooled == 600  # both adopted: their owners are gone
        assert drainer.flush(60)
    ids = delivered_ids(server, 600)
    counts = Counter(ids)
    assert len(counts) == 600 and max(counts.values()) == 1
    assert not list((tmp_path / "shared.db.d").glob("*.db"))  # drained spools removed


def test_a_flush_right_after_a_child_exits_counts_the_childs_spool(tmp_path: Path) -> None:
    """A flush does not wait for the sender's periodic look for orphaned spools:
    right after a forked child exits (collector down), the parent's flush must
    see the child's events waiting, not report everything sent."""
    script = f"""
        import os
        from sdk_python import Client
        c = Client({WRITE_KEY!r}, host="http://127.0.0.1:9", spool_path={str(tmp_path / "s.db")!r},
                   flush_interval=0.05, max_retries=1)
        pid = os.fork()
        if pid == 0:
            for i in range(20):
                c.track("child", "E", message_id=f"child-{{i:03d}}", context={CONSENTED!r})
            c.shutdown(timeout=0.5)
            os._exit(0)
        os.waitpid(pid, 0)
        print("flushed", c.flush(0.5), c.spooled, flush=True)
        c.shutdown(timeout=0.5)
    """
    result = run_python(script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flushed False 20" in result.stdout, result.stdout + result.stderr[-2000:]


def test_a_forked_child_that_exits_during_an_outage_is_drained_by_the_parent(
    server_factory, tmp_path: Path
) -> None:
    """§2: fork, 100 events from the child to a collector that is down, child exits."""
    server = server_factory()
    script = f"""
        import os, time
        from sdk_python import Client
        c = Client({WRITE_KEY!r}, host={server.url!r}, spool_path={str(tmp_path / "s.db")!r},
                   flush_interval=0.05, max_retries=1)
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                c.track("child", "E", message_id=f"child-{{i:03d}}", context={CONSENTED!r})
            c.shutdown(timeout=1)   # collector down: the child's spool keeps them
            os._exit(0)
        os.waitpid(pid, 0)
        print("ready", flush=True)
        import sys; sys.stdin.readline()   # the collector comes back
        ok = c.flush(60)
        print("flushed", ok, c.spooled, flush=True)
        c.shutdown()
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    server.start()
    out, err = proc.communicate("go\n", timeout=90)
    assert proc.returncode == 0, err[-2000:]
    assert "flushed True 0" in out, out + err[-2000:]
    ids = delivered_ids(server, 100)
    assert sorted(ids) == [f"child-{i:03d}" for i in range(100)]


def test_async_client_works_on_a_second_event_loop(server: Server) -> None:
    """§3: ``asyncio.run`` twice, as Django's and Flask's async views do."""
    client = AsyncClient(WRITE_KEY, host=server.url, flush_interval=0.05)

    async def once(tag: str) -> bool:
        for i in range(5):
            ok, _ = await client.track("u", "E", message_id=f"{tag}-{i}", context=CONSENTED)
            assert ok
        return await client.flush(10)

    assert asyncio.run(once("loop1"))
    assert asyncio.run(once("loop2"))
    asyncio.run(client.shutdown())
    assert client.delivered == 10 and client.dropped == 0
    assert sorted(delivered_ids(server, 10)) == sorted(
        [f"loop1-{i}" for i in range(5)] + [f"loop2-{i}" for i in range(5)]
    )


def test_async_client_queue_is_sent_at_exit_without_shutdown(server: Server) -> None:
    """§4: 50 events queued, ``shutdown()`` never awaited, the process exits."""
    out = run_python(f"""
        import asyncio
        from sdk_python import AsyncClient
        c = AsyncClient({WRITE_KEY!r}, host={server.url!r}, flush_interval=60, flush_at=1000)
        async def main():
            for i in range(50):
                await c.track("u", "E", message_id=f"exit-{{i:02d}}", context={CONSENTED!r})
        asyncio.run(main())
    """)
    assert out.returncode == 0, out.stderr
    assert sorted(delivered_ids(server, 50)) == [f"exit-{i:02d}" for i in range(50)]


def test_quarantined_and_unencodable_messages_are_drops_with_reasons(server: Server) -> None:
    """§5: the collector's 200 lists what it quarantined; count it, with the reason."""
    drops: list[tuple[str, int]] = []
    client = Client(
        WRITE_KEY, host=server.url, flush_interval=0.05, on_drop=lambda r, n: drops.append((r, n))
    )
    client.track("u", "Fine", message_id="fine", context=CONSENTED)
    client.track("u", "", message_id="no-event-name", context=CONSENTED)  # quarantined
    ok, _ = client.track("u", "E", {"when": object()})
    assert ok is False
    assert client.flush(15)
    client.shutdown()
    reasons = [r for r, _ in drops]
    assert any(r.startswith("unencodable: object") for r in reasons), reasons
    assert any(r.startswith("quarantined:") and "$.batch[" in r for r in reasons), reasons
    assert client.delivered == 1 and client.dropped == 2


class PoisonServer:
    """A real loopback collector stand-in that answers 500 to any batch holding
    the poison message, 400 to any holding a refused one, and 200 otherwise."""

    def __init__(self, poison: str, refused: str = "never") -> None:
        self.accepted: list[str] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import gzip

                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                ids = [m["messageId"] for m in json.loads(raw)["batch"]]
                outer.requests += 1
                status = 500 if poison in ids else 400 if refused in ids else 200
                if status == 200:
                    outer.accepted.extend(ids)
                body = json.dumps({"success": status == 200, "accepted": len(ids)}).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_poison_message_is_isolated_and_newer_events_keep_flowing(tmp_path: Path) -> None:
    """Issue 13 case 11: a batch the collector keeps answering 5xx is split; the
    poison message is reported via on_drop with its reason; a 4xx never blocks."""
    collector = PoisonServer(poison="m-3", refused="m-9")
    drops: list[tuple[str, int]] = []
    try:
        client = Client(
            WRITE_KEY,
            host=collector.url,
            spool_path=tmp_path / "s.db",
            flush_at=8,
            flush_interval=0.05,
            on_drop=lambda r, n: drops.append((r, n)),
        )
        for i in range(8):
            client.track("u", "E", message_id=f"m-{i}")
        assert client.flush(30)
        for i in range(8, 12):  # newer events, one of them refused with a 400
            client.track("u", "E", message_id=f"m-{i}")
        assert client.flush(30)
        client.shutdown()
    finally:
        collector.close()
    assert sorted(collector.accepted) == sorted(f"m-{i}" for i in range(12) if i not in (3, 9))
    assert ("poison: HTTP 500", 1) in drops
    assert ("delivery_failed", 1) in drops
    assert client.spooled == 0 and client.dropped == 2


def test_numeric_ids_are_sent_as_decimal_strings(server: Server) -> None:
    """Issue 13 case 2: ``track(12345, ...)`` is not quarantined, and pseudonymizes
    exactly like ``track("12345", ...)``."""
    drops: list[tuple[str, int]] = []
    with Client(
        WRITE_KEY, host=server.url, flush_interval=0.05, on_drop=lambda r, n: drops.append((r, n))
    ) as c:
        c.track(12345, "E", message_id="int-id", context=CONSENTED)
        c.group(12345, 678, message_id="int-group", context=CONSENTED)
        c.alias(99, 12345, message_id="int-alias", context=CONSENTED)
        c.track("12345", "E", message_id="str-id", context=CONSENTED)
        ok, sent = c.track(12345, "E", message_id="int-2", context=CONSENTED)
        assert ok and sent is not None and sent["userId"] == "12345" and sent["type"] == "track"
    assert not drops
    found = wait_for(lambda: r if len(r := read_jsonl(server.data_dir / "out")) >= 5 else None)
    assert found is not None
    lines = {m["messageId"]: m for m in found}
    assert lines["int-id"]["userId"] == lines["str-id"]["userId"]
    assert {"int-group", "int-alias"} <= set(lines)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    local = Client(WRITE_KEY, send=False, pseudonym_key=key)
    _, a = local.track(12345, "E")
    _, b = local.track("12345", "E")
    assert a is not None and b is not None and a["userId"] == b["userId"] != "12345"
    local.shutdown()


def test_a_sender_crash_is_caught_and_restarted_never_raised(server: Server) -> None:
    """§1: the sender thread died (``__len__() should return >= 0``) and reading
    ``client.spooled`` raised into Flask: both must stay inside the SDK."""
    client = Client(WRITE_KEY, host=server.url, flush_interval=0.05)
    real = client._take_batch
    calls = {"n": 0}

    def crash_once() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("sender bug")
        return real()

    client._take_batch = crash_once  # type: ignore[method-assign]
    client.track("u", "E", message_id="after-crash-1", context=CONSENTED)
    assert client.flush(15)
    # a sender thread that is gone is replaced at the next call
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    client._thread = dead
    client.track("u", "E", message_id="after-crash-2", context=CONSENTED)
    assert client._thread is not dead and client._thread.is_alive()
    assert client.flush(15)

    def broken() -> int:
        raise ValueError("__len__() should return >= 0")

    client._backlog = broken  # type: ignore[method-assign]
    assert client.spooled == 0  # the last known figure, not an exception
    del client._backlog
    client.shutdown()
    assert calls["n"] > 1
    assert sorted(delivered_ids(server, 2)) == ["after-crash-1", "after-crash-2"]


def test_collector_down_then_back_while_the_client_keeps_sending(
    server_factory, tmp_path: Path
) -> None:
    """A running client: the collector is killed mid-stream and restarted on the
    same port and data; everything arrives once, in a live process."""
    server = server_factory().start()
    client = Client(
        WRITE_KEY,
        host=server.url,
        spool_path=tmp_path / "s.db",
        flush_interval=0.05,
        max_retries=1,
    )
    for i in range(50):
        client.track("u", "E", message_id=f"up-{i:02d}", context=CONSENTED)
    assert client.flush(20)
    server.kill()
    for i in range(100):
        client.track("u", "E", message_id=f"down-{i:03d}", context=CONSENTED)
        assert client.spooled >= 0
    assert not client.flush(1.5)  # kept, not lost: the collector is down
    server.start()
    assert client.flush(60)
    client.shutdown()
    ids = delivered_ids(server, 150)
    assert sorted(ids) == sorted(
        [f"up-{i:02d}" for i in range(50)] + [f"down-{i:03d}" for i in range(100)]
    )
    assert client.dropped == 0
