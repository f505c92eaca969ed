"""Pipeline.ingest, the entry every source calls, driven directly over a real
Runtime (real SQLite files, the group-commit writer): bad messages in a batch
are quarantined with their JSON path, a bad single message fails the call,
and nothing reaches the outbox without consent."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from collector import config as config_mod
from collector.errors import InvalidMessage
from collector.pipeline.pipeline import RawMessage, RequestFacts
from collector.runtime import Runtime
from identity.keyring import new_master_key

CONFIG = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("CONSENTRY_MASTER_KEY", new_master_key())
    monkeypatch.setenv("CONSENTRY_WRITE_KEY", "k")
    (tmp_path / "c.toml").write_text(CONFIG)
    rt = Runtime(config_mod.load(tmp_path / "c.toml", data_dir=str(tmp_path / "data")))
    yield rt
    rt.close()


def _raw(message: dict[str, object]) -> bytes:
    return msgspec.json.encode(message)


def _outbox(rt: Runtime) -> list[str]:
    assert rt.db_path is not None
    conn = sqlite3.connect(rt.db_path)
    try:
        return [r[0] for r in conn.execute("SELECT message_id FROM outbox ORDER BY id")]
    finally:
        conn.close()


def test_a_batch_is_stored_with_its_bad_message_quarantined(runtime: Runtime) -> None:
    granted = {"consent": {"categoryPreferences": {"analytics": True}}}
    messages = [
        RawMessage(0, _raw({"type": "track", "event": "A", "userId": "u1", "messageId": "m0"})),
        RawMessage(1, _raw({"type": "track", "event": ["B"], "userId": "u9"})),
        RawMessage(2, _raw({"type": "track", "event": "C", "userId": "u2", "messageId": "m2"})),
    ]
    result = asyncio.run(
        runtime.pipeline.ingest(
            "default",
            messages,
            received_at=datetime.now(UTC),
            request_facts=RequestFacts(context=granted),
        )
    )
    assert result.accepted == 2
    assert [(r.index, r.path) for r in result.rejected] == [(1, "$.batch[1].event")]
    # The batch context granted analytics: both valid messages are queued for lake.
    assert _outbox(runtime) == ["m0", "m2"]


def test_without_consent_nothing_is_queued(runtime: Runtime) -> None:
    message = RawMessage(0, _raw({"type": "track", "event": "A", "userId": "u3"}))
    result = asyncio.run(
        runtime.pipeline.ingest("default", [message], received_at=datetime.now(UTC))
    )
    assert result.accepted == 1 and not result.rejected
    assert _outbox(runtime) == []


def test_a_bad_single_message_fails_the_call_with_its_path(runtime: Runtime) -> None:
    message = RawMessage(0, _raw({"event": ["A"], "userId": "u4"}), kind="track")
    with pytest.raises(InvalidMessage) as caught:
        asyncio.run(runtime.pipeline.ingest("default", [message], received_at=datetime.now(UTC)))
    assert caught.value.status == 400 and caught.value.path == "$.event"
