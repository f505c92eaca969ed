"""Two `consentry serve` replicas on one PostgreSQL (issue 18), end to end.

Each replica is its own process with its own data directory holding a copy
of the same keyring (and the same master key and write key); both forward to
one HTTP receiver. Under interleaved load for the same people across both,
one replica is killed (SIGKILL) and restarted. Then: every acknowledged
messageId was delivered at least once, each person has one OneID, the
ledger verifies (`consentry audit verify`), an erasure sent to one replica
and a withdrawal acknowledged by one stop both replicas' forwarding.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from identity.keyring import new_master_key
from tests.collector.pg import needs_pg, pg_dsn
from tests.collector.receiver import Receiver
from tests.conftest import Server, wait_for

__all__ = ["pg_dsn"]
pytestmark = needs_pg

ADMIN = {"Authorization": "Bearer replica-admin"}
CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}
USERS = [f"shared-{i}" for i in range(24)]


def _config(receiver: Receiver) -> str:
    return f"""
[server]
admin_token_env = "CONSENTRY_ADMIN_TOKEN"

[storage]
backend = "postgres"
dsn_env = "CONSENTRY_PG_UNDER_TEST"
lease_seconds = 2

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "{receiver.url}"
secret = "replica-secret"
batch_size = 200
max_attempts = 1000
backoff_base_seconds = 0.1
backoff_max_seconds = 0.5
"""


def _event(message_id: str, user: str, *, consent: bool = True) -> dict[str, object]:
    message: dict[str, object] = {
        "type": "track",
        "event": "Viewed",
        "userId": user,
        "anonymousId": f"anon-{user}",
        "messageId": message_id,
    }
    if consent:
        message["context"] = CONSENTED
    return message


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Replicas:
    """Two servers sharing a database, the keys copied from the first."""

    def __init__(self, tmp_path: Path, dsn: str, receiver: Receiver) -> None:
        env = {
            "CONSENTRY_PG_UNDER_TEST": dsn,
            "CONSENTRY_MASTER_KEY": new_master_key(),
            "CONSENTRY_ADMIN_TOKEN": "replica-admin",
        }
        config = _config(receiver)
        self.a = Server(tmp_path / "a", config, env=env, args=["--workers", "1"])
        self.b = Server(tmp_path / "b", config, env=env, args=["--workers", "1"])
        self.dsn = dsn

    def start(self) -> None:
        self.a.start()
        # The operator copies the keyring to every replica (README, "Scaling").
        self.b.data_dir.mkdir(mode=0o700)
        shutil.copy2(self.a.data_dir / "keyring.json", self.b.data_dir / "keyring.json")
        self.b.start()

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()


def _post(server: Server, path: str, body: object) -> int:
    try:
        return server.post(path, body).status_code
    except httpx.HTTPError:
        return 0  # refused or cut: the replica is down (never acknowledged)


def _delivered(receiver: Receiver) -> list[dict[str, Any]]:
    return receiver.messages()


def _outbox_left(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE dead = 0").fetchone()
    assert row is not None
    return int(row[0])


def test_two_replicas_share_one_database(pg_dsn: str, tmp_path: Path, receiver: Receiver) -> None:
    started = time.monotonic()
    replicas = Replicas(tmp_path, pg_dsn, receiver)
    try:
        replicas.start()
        a, b = replicas.a, replicas.b
        acked: list[str] = []
        lock = threading.Lock()

        # 1. The same new people reach both replicas at the same moment.
        barrier = threading.Barrier(2)

        def first_sight(server: Server, tag: str) -> None:
            batch = [_event(f"new-{tag}-{u}", f"fresh-{u}") for u in range(10)]
            barrier.wait(10)
            assert _post(server, "/v1/batch", {"batch": batch}) == 200
            with lock:
                acked.extend(str(m["messageId"]) for m in batch)

        both = [
            threading.Thread(target=first_sight, args=(a, "a")),
            threading.Thread(target=first_sight, args=(b, "b")),
        ]
        for t in both:
            t.start()
        for t in both:
            t.join(30)
        assert len(acked) == 20

        # 2. Interleaved load for the same people on both; B is killed mid-load.
        stop = threading.Event()

        def load(worker: int) -> None:
            rng = random.Random(worker)
            n = 0
            while not stop.is_set():
                server = a if n % 2 == worker % 2 else b
                batch = [_event(f"w{worker}-{n}-{k}", rng.choice(USERS)) for k in range(20)]
                if _post(server, "/v1/batch", {"batch": batch}) == 200:
                    with lock:
                        acked.extend(str(m["messageId"]) for m in batch)
                else:
                    time.sleep(0.05)
                n += 1

        workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in workers:
            t.start()
        time.sleep(3)
        b.kill()
        killed_at = len(acked)
        time.sleep(1)
        b.start()
        time.sleep(3)
        stop.set()
        for t in workers:
            t.join(60)
        assert len(acked) > killed_at > 200, (killed_at, len(acked))

        # 3. Every acknowledged message is delivered at least once (the killed
        #    replica's claimed rows come back when their lease ends).
        assert wait_for(lambda: _outbox_left(pg_dsn) == 0, timeout=30)
        delivered = {m["messageId"] for m in _delivered(receiver)}
        missing = set(acked) - delivered
        assert not missing, f"{len(missing)} acknowledged messages never delivered"

        # 4. One OneID per person: the receiver saw one oneId per userId, and
        #    the graph holds one live person per user with both identifiers.
        seen: dict[str, set[str]] = defaultdict(set)
        for m in _delivered(receiver):
            seen[m["userId"]].add(m["context"]["consentry"]["oneId"])
        assert len(seen) == len(USERS) + 10
        assert all(len(one_ids) == 1 for one_ids in seen.values())
        with psycopg.connect(pg_dsn) as conn:
            people = conn.execute(
                "SELECT count(*) FROM id_people WHERE merged_into IS NULL AND erased_at IS NULL"
            ).fetchone()
            shapes = conn.execute(
                "SELECT count(*) FILTER (WHERE kind = 'user_id'),"
                " count(*) FILTER (WHERE kind = 'anonymous_id')"
                " FROM id_links GROUP BY one_id"
            ).fetchall()
        assert people == (len(USERS) + 10,)
        assert set(shapes) == {(1, 1)}

        # 5. Erasure at A, withdrawal at A, while the destination is down: the
        #    queued rows of both people are never delivered by either replica,
        #    and the withdrawn person's later events at B are not queued.
        receiver.status = 503
        before = len(receiver.requests)
        for i, server in enumerate((a, b, a, b)):
            batch = [_event(f"erased-{i}-{k}", "to-erase") for k in range(5)]
            batch += [_event(f"withdrawn-{i}-{k}", "to-withdraw") for k in range(5)]
            assert _post(server, "/v1/batch", {"batch": batch}) == 200
        assert wait_for(lambda: len(receiver.requests) > before, timeout=10)  # they tried
        erased = httpx.post(
            a.url + "/v1/erase", json={"userId": "to-erase"}, headers=ADMIN, timeout=30
        )
        assert erased.status_code == 200, erased.text
        receipt = erased.json()
        assert receipt["erased"] is True
        # the http destination cannot delete: A says so, and lists what to delete by hand
        assert [d["status"] for d in receipt["destinations"]] == ["not_supported"]
        assert list(receipt["manual_deletion"]) == ["hook"]
        withdrawn = a.post(
            "/v1/consent",
            {"userId": "to-withdraw", "purposes": {"analytics": "denied"}, "method": "preferences"},
        )
        assert withdrawn.status_code == 200 and withdrawn.json()["action"] == "withdraw"
        late = [_event(f"withdrawn-late-{k}", "to-withdraw", consent=False) for k in range(5)]
        assert _post(b, "/v1/batch", {"batch": late}) == 200
        receiver.status = 200
        assert wait_for(lambda: _outbox_left(pg_dsn) == 0, timeout=30)
        after = [str(m["messageId"]) for m in _delivered(receiver)]
        assert not [m for m in after if m.startswith(("erased-", "withdrawn-"))]
        with psycopg.connect(pg_dsn) as conn:
            dropped = conn.execute(
                "SELECT count(DISTINCT message_id) FROM delivery_outcomes WHERE outcome = 'dropped'"
                " AND message_id LIKE 'withdrawn-%%'"
            ).fetchone()
            statuses = conn.execute(
                "SELECT destination, status FROM erasures ORDER BY id"
            ).fetchall()
        assert dropped == (20,)  # queued before the withdrawal, dropped at send time
        assert statuses == [("hook", "not_supported")]  # propagated once

        # 6. The ledger written by both replicas verifies, signatures included.
        def consentry(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "collector.cli",
                    *args,
                    "--config",
                    str(a.config_path),
                    "--data-dir",
                    str(a.data_dir),
                ],
                env=a.env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        pem = consentry("audit", "pubkey")
        assert pem.returncode == 0, pem.stderr
        (tmp_path / "ledger.pem").write_text(pem.stdout)
        verify = consentry("audit", "verify", "--pubkey", str(tmp_path / "ledger.pem"))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert verify.stdout.startswith("OK: ") and "1 records of erased people" in verify.stdout
    finally:
        replicas.stop()
    assert time.monotonic() - started < 90
