"""Forwarding over real loopback HTTP: signatures, retries, dead letters, isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from collector.delivery.destinations.http import SIGNATURE_HEADER, verify_signature
from collector.delivery.retry import backoff, retry_delay
from tests.collector.receiver import Receiver
from tests.conftest import Server, ServerFactory, cli, read_jsonl, wait_for

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}
SECRET = "hook-secret-123"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def config(url: str) -> str:
    return f"""
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "{url}"
secret_env = "HOOK_SECRET"
backoff_base_seconds = 0.05
backoff_max_seconds = 0.3
"""


def send(server: Server, n: int, prefix: str) -> list[str]:
    batch: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": f"{prefix}-{i}",
            "event": "E",
            "messageId": f"{prefix}-{i}",
            "context": CONSENTED,
        }
        for i in range(n)
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200, r.text
    return [m["messageId"] for m in batch]


def outbox(server: Server) -> dict[str, dict[str, object]]:
    out = cli(server, "outbox", "status")
    assert out.returncode == 0, out.stderr
    status: dict[str, dict[str, object]] = json.loads(out.stdout)
    return status


def test_signed_webhook_delivery(server_factory: ServerFactory, receiver: Receiver) -> None:
    server = server_factory(config(receiver.url), env={"HOOK_SECRET": SECRET}).start()
    ids = send(server, 5, "sig")
    assert wait_for(lambda: len(receiver.messages()) >= 5)
    headers, body = receiver.requests[0]
    assert verify_signature(SECRET.encode(), body, headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature(b"wrong", body, headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature(SECRET.encode(), body + b" ", headers[SIGNATURE_HEADER.lower()])
    assert sorted(m["messageId"] for m in receiver.messages()) == sorted(ids)


def test_failing_destination_does_not_delay_another_and_recovers(
    server_factory, receiver: Receiver
) -> None:
    receiver.status = 503
    receiver.headers = {"Retry-After": "1"}
    # Retry-After is honoured up to the back-off cap (here above it).
    cfg = config(receiver.url).replace("backoff_max_seconds = 0.3", "backoff_max_seconds = 5")
    server = server_factory(cfg, env={"HOOK_SECRET": SECRET}).start()
    ids = send(server, 20, "iso")
    lake = wait_for(lambda: len(read_jsonl(server.data_dir / "out")) >= 20, timeout=10)
    assert lake
    assert wait_for(lambda: len(receiver.requests) >= 1)
    # The lake was delivered while every hook row still waits for a retry.
    status = outbox(server)
    assert status["hook"]["pending"] == 20 and "HTTP 503" in str(status["hook"]["last_error"])
    assert status["lake"]["pending"] == 0
    receiver.status = 200
    receiver.headers = {}
    delivered = wait_for(
        lambda: {m["messageId"] for m in receiver.messages()} >= set(ids), timeout=15
    )
    assert delivered
    # Retry-After: 1 was honoured: the second attempt came a second after the
    # first (less the first request's way to the receiver).
    assert receiver.times[1] - receiver.times[0] >= 0.9


def test_non_retryable_4xx_dead_letters_then_replay(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    receiver.status = 400
    server = server_factory(config(receiver.url), env={"HOOK_SECRET": SECRET}).start()
    ids = send(server, 3, "dead")
    assert wait_for(lambda: outbox(server)["hook"]["dead"] == 3, timeout=10)
    # Not retried: the batch of 3 and its parts (1, 2, then 1 + 1) are each sent
    # once while the refused messages are isolated (all 3 dead means all 5 were sent).
    assert len(receiver.requests) == 5
    status = outbox(server)
    assert "HTTP 400" in str(status["hook"]["last_error"])
    receiver.status = 200
    replayed = cli(server, "outbox", "replay", "hook")
    assert replayed.returncode == 0, replayed.stderr
    got = wait_for(lambda: {m["messageId"] for m in receiver.messages()} >= set(ids), timeout=15)
    assert got


def test_a_poison_message_is_isolated_and_alone_dead_lettered(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    """Issue 19 item 3: one message the destination refuses (4xx) no longer
    dead-letters its 19 valid neighbours: the batch is split until it is alone."""
    receiver.reject = b"POISON-42"
    server = server_factory(config(receiver.url), env={"HOOK_SECRET": SECRET}).start()
    batch = [
        {
            "type": "track",
            "userId": f"p-{i}",
            "event": "E",
            "messageId": f"p-{i}",
            "properties": {"note": "POISON-42" if i == 7 else "fine"},
            "context": CONSENTED,
        }
        for i in range(20)
    ]
    assert server.post("/v1/batch", {"batch": batch}).status_code == 200
    valid = {f"p-{i}" for i in range(20)} - {"p-7"}
    assert wait_for(lambda: {m["messageId"] for m in receiver.messages()} == valid, timeout=15)
    assert wait_for(lambda: outbox(server)["hook"]["dead"] == 1, timeout=10)
    status = outbox(server)["hook"]
    assert status["pending"] == 0 and "HTTP 400" in str(status["last_error"])
    # Bounded: about 2·log2(20) sends to isolate one message, not one per message.
    assert len(receiver.requests) <= 11


def metric_values(server: Server, name: str) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('destination="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def test_retry_after_holds_the_whole_destination_and_is_shown(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    """Issue 19 item 4: during a Retry-After, new batches do not hit the receiver
    either; `outbox status` and /metrics say when the next attempt is; an
    operator can retry now."""
    receiver.status = 503
    receiver.headers = {"Retry-After": "3600"}
    cfg = config(receiver.url).replace("backoff_max_seconds = 0.3", "backoff_max_seconds = 600")
    server = server_factory(cfg, env={"HOOK_SECRET": SECRET}).start()
    first = send(server, 5, "ra-a")
    assert wait_for(lambda: len(receiver.requests) == 1)
    later = send(server, 5, "ra-b")  # new rows while the destination backs off
    assert wait_for(lambda: len(read_jsonl(server.data_dir / "out")) == 10)
    status = outbox(server)["hook"]
    assert status["pending"] == 10 and len(receiver.requests) == 1
    # Capped at backoff_max_seconds (600), not the 3600 the receiver asked for.
    wait = float(status["next_attempt_in_s"])  # type: ignore[arg-type]
    assert 500 < wait <= 600, status
    assert status["backoff_until"] and "HTTP 503" in str(status["backoff_reason"])
    assert 500 < metric_values(server, "consentry_outbox_next_attempt_seconds")["hook"] <= 600
    assert len(receiver.requests) == 1  # nothing sent in the meantime
    receiver.status = 200
    receiver.headers = {}
    retried = cli(server, "outbox", "retry", "hook")
    assert retried.returncode == 0 and "10 waiting rows due now" in retried.stdout
    ids = set(first + later)
    assert wait_for(lambda: {m["messageId"] for m in receiver.messages()} >= ids, timeout=10)
    assert wait_for(lambda: outbox(server)["hook"]["pending"] == 0)
    after = outbox(server)["hook"]
    assert after["backoff_until"] is None and after["next_attempt_in_s"] is None
    assert cli(server, "outbox", "retry", "nope").returncode != 0


def test_dead_rows_are_in_metrics(server_factory: ServerFactory, receiver: Receiver) -> None:
    receiver.status = 400
    server = server_factory(config(receiver.url), env={"HOOK_SECRET": SECRET}).start()
    send(server, 2, "dm")
    assert wait_for(lambda: metric_values(server, "consentry_outbox_dead").get("hook") == 2)
    assert metric_values(server, "consentry_outbox_depth")["hook"] == 0


def test_retry_after_is_capped_by_backoff_max() -> None:
    assert retry_delay(0, base=1.0, cap=600, retry_after=3600, rng=lambda: 1.0) == 600
    assert retry_delay(0, base=1.0, cap=600, retry_after=30, rng=lambda: 1.0) == 30
    assert retry_delay(5, base=1.0, cap=600, retry_after=None, rng=lambda: 1.0) == 32


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    assert backoff(0, 1.0, 600, rng=lambda: 0.0) == 0.5
    assert backoff(0, 1.0, 600, rng=lambda: 1.0) == 1.0
    assert backoff(3, 1.0, 600, rng=lambda: 1.0) == 8.0
    assert backoff(40, 1.0, 600, rng=lambda: 1.0) == 600.0


def test_bounded_attempts_move_rows_to_dead_letter(
    server_factory: ServerFactory, receiver: Receiver
) -> None:
    receiver.status = 500
    cfg = config(receiver.url).replace(
        "backoff_max_seconds = 0.3", "backoff_max_seconds = 0.3\nmax_attempts = 3"
    )
    server = server_factory(cfg, env={"HOOK_SECRET": SECRET}).start()
    send(server, 4, "att")
    assert wait_for(lambda: outbox(server)["hook"]["dead"] == 4, timeout=15)
    assert len(receiver.requests) == 3  # exactly max_attempts tries, then dead
    status = outbox(server)["hook"]
    assert (
        status["pending"] == 0
        and status["in_flight"] == 0
        and "HTTP 500" in str(status["last_error"])
    )
