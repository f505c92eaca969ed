"""Several worker processes on one database: what one worker learns (a withdrawal,
a merge, a ledger head) the other must not contradict.

Every request below goes out on a new connection, and the kernel spreads new
connections over the workers' SO_REUSEPORT sockets, so each phase of 20+
requests reaches both workers (the first test shows that it does)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import WRITE_KEY, Server, ServerFactory, cli

CONFIG = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""
ARGS = ["--workers", "2", "--no-forward"]
GRANT = {"consent": {"categoryPreferences": {"analytics": True}}}


def track(server: Server, message_id: str, **fields: object) -> None:
    body = {"type": "track", "event": "E", "messageId": message_id, **fields}
    r = httpx.post(server.url + "/v1/track", json=body, auth=(WRITE_KEY, ""), timeout=30)
    assert r.status_code == 200, r.text


def db(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(server.data_dir / "consentry.db")


@pytest.fixture
def workers(server_factory: ServerFactory) -> Server:
    return server_factory(CONFIG, args=ARGS).start()


def test_connections_reach_both_workers(workers: Server) -> None:
    seen = {httpx.get(workers.url + "/healthz").json()["worker"] for _ in range(40)}
    assert seen == {0, 1}


def test_withdrawal_in_one_worker_holds_in_the_other(workers: Server) -> None:
    # Both workers cache this person's granted state...
    for i in range(20):
        track(workers, f"before-{i}", userId="w-person", context=GRANT)
    r = httpx.post(
        workers.url + "/v1/consent",
        json={"userId": "w-person", "purposes": {"analytics": "denied"}},
        auth=(WRITE_KEY, ""),
    )
    assert r.status_code == 200, r.text
    # ...and whichever worker takes these must see the withdrawal.
    for i in range(20):
        track(workers, f"after-{i}", userId="w-person")
    rows = {m for (m,) in db(workers).execute("SELECT message_id FROM outbox")}
    assert {f"before-{i}" for i in range(20)} <= rows
    assert not {m for m in rows if m.startswith("after-")}


def test_merge_in_one_worker_is_seen_by_the_other(workers: Server) -> None:
    for i in range(10):
        track(workers, f"a-{i}", anonymousId="anon-a", context=GRANT)
        track(workers, f"b-{i}", anonymousId="anon-b", context=GRANT)
    # Log in from both devices: the two anonymous clusters become one person.
    track(workers, "login-a", userId="merged-user", anonymousId="anon-a", context=GRANT)
    track(workers, "login-b", userId="merged-user", anonymousId="anon-b", context=GRANT)
    for i in range(20):
        track(workers, f"late-b-{i}", anonymousId="anon-b", context=GRANT)
    conn = db(workers)
    late = {
        o for (o,) in conn.execute("SELECT one_id FROM outbox WHERE message_id LIKE 'late-b-%'")
    }
    login = {o for (o,) in conn.execute("SELECT one_id FROM outbox WHERE message_id = 'login-a'")}
    assert len(late) == 1 and late == login
    (merges,) = conn.execute("SELECT count(*) FROM id_merges").fetchone()
    assert merges == 1


def test_ledger_chain_stays_whole_under_concurrent_workers(workers: Server) -> None:
    def flip(i: int) -> None:
        for j in range(6):
            state = "granted" if j % 2 == 0 else "denied"
            r = httpx.post(
                workers.url + "/v1/consent",
                json={"userId": f"chain-{i}", "purposes": {"analytics": state}},
                auth=(WRITE_KEY, ""),
                timeout=30,
            )
            assert r.status_code == 200, r.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(flip, range(16)))
    workers.stop()
    out = cli(workers, "audit", "verify")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK: 96 records"), out.stdout


def test_metrics_sum_over_workers(workers: Server) -> None:
    for i in range(30):
        track(workers, f"m-{i}", userId=f"m-{i}", context=GRANT)
    text = httpx.get(workers.url + "/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("consentry_messages_accepted_total"))
    assert float(line.split()[-1]) == 30.0


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_workers_die_with_a_killed_supervisor(workers: Server) -> None:
    assert workers.proc is not None
    kids = _children(workers.proc.pid)
    assert len(kids) == 2
    workers.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.05)
    assert not any(_alive(k) for k in kids)


def test_a_crashed_worker_is_replaced(workers: Server) -> None:
    assert workers.proc is not None
    first = _children(workers.proc.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        now = _children(workers.proc.pid)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.1)
    assert len(_children(workers.proc.pid)) == 2
    seen: set[int] = set()
    while time.monotonic() < deadline and seen != {0, 1}:
        seen.add(httpx.get(workers.url + "/healthz").json()["worker"])
    assert seen == {0, 1}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
