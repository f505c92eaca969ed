"""Destination units: JSONL rotation, HTTP classification, Segment batch limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from collector.config import JsonlDestinationConfig, SegmentDestinationConfig
from collector.delivery.destinations.http import classify
from collector.delivery.destinations.jsonl import JsonlDestination
from collector.delivery.destinations.segment import SegmentDestination, split
from collector.delivery.retry import parse_retry_after
from collector.errors import ConfigError
from tests.conftest import ServerFactory


def test_jsonl_appends_then_rotates_by_size(tmp_path: Path) -> None:
    dest = JsonlDestination(
        JsonlDestinationConfig(name="lake", path=str(tmp_path), max_bytes=1024), data_dir=tmp_path
    )
    messages = [json.dumps({"messageId": f"m{i}", "pad": "x" * 100}).encode() for i in range(30)]

    async def run() -> None:
        for i in range(0, 30, 5):
            assert (await dest.send(messages[i : i + 5])).ok

    asyncio.run(run())
    files = sorted(tmp_path.glob("lake*.jsonl"))
    assert len(files) >= 2 and any(f.name != "lake.jsonl" for f in files)
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(m["messageId"] for m in lines) == sorted(f"m{i}" for i in range(30))
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in files)


def test_http_outcomes_are_classified() -> None:
    def response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, text="body")

    assert classify(response(200)).ok
    r = classify(response(503, {"Retry-After": "7"}))
    assert not r.ok and r.retryable and r.retry_after == 7.0
    assert classify(response(429)).retryable
    r = classify(response(422))
    assert not r.ok and not r.retryable and "HTTP 422" in str(r.error)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_segment_batches_stay_under_500kb() -> None:
    messages = [b"x" * 30_000 for _ in range(40)]
    chunks = split(messages)
    assert sum(len(c) for c in chunks) == 40
    assert all(sum(len(m) + 1 for m in c) < 500 * 1024 for c in chunks)


def test_segment_delete_hook_secret_must_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SegmentDestinationConfig(
        name="cdp",
        write_key="wk",
        delete_hook_url="http://127.0.0.1:1/hook",
        delete_hook_secret_env="CDP_HOOK_SECRET",
    )
    monkeypatch.delenv("CDP_HOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="CDP_HOOK_SECRET"):
        SegmentDestination(config, data_dir=tmp_path)
    monkeypatch.setenv("CDP_HOOK_SECRET", "")
    with pytest.raises(ConfigError, match="CDP_HOOK_SECRET"):
        SegmentDestination(config, data_dir=tmp_path)
    monkeypatch.setenv("CDP_HOOK_SECRET", "s3cret")
    dest = SegmentDestination(config, data_dir=tmp_path)
    asyncio.run(dest.close())


def test_serve_refuses_to_start_without_the_hook_secret(server_factory: ServerFactory) -> None:
    config = """
[[destinations]]
name = "cdp"
type = "segment"
purposes = ["analytics"]
write_key = "wk"
delete_hook_url = "http://127.0.0.1:1/hook"
delete_hook_secret_env = "CDP_HOOK_SECRET"
"""
    server = server_factory(config, env={"CDP_HOOK_SECRET": ""})
    with pytest.raises(RuntimeError, match="server exited") as info:
        server.start()
    assert "CDP_HOOK_SECRET" in str(info.value)
