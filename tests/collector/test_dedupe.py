"""Repeated messageIds (issue 13 case 9): stored once within the window, across
worker processes and restarts; the seen set's rotation with a passed clock."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.pipeline.dedupe import dedupe_key, repeats_within
from collector.storage.sqlite.dedupe import SeenSet
from tests.conftest import Server, ServerFactory, read_jsonl, wait_for

GRANT = {"consent": {"categoryPreferences": {"analytics": True}}}


def _track(message_id: str | None, marker: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "userId": "repeat-user",
        "event": "Viewed",
        "properties": {"marker": marker},
        "context": GRANT,
    }
    if message_id is not None:
        message["messageId"] = message_id
    return message


def _stored(server: Server, marker: str) -> int:
    return sum(
        1
        for e in read_jsonl(server.data_dir / "out")
        if isinstance(e.get("properties"), dict) and e["properties"].get("marker") == marker
    )


def test_a_repeat_is_acknowledged_and_stored_once(server_factory: ServerFactory) -> None:
    server = server_factory().start()  # several worker processes (one per core)
    r = server.post("/v1/batch", {"batch": [_track("m-1", "a"), _track("m-1", "a")]})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    assert [(w["index"], w["path"]) for w in r.json()["warnings"]] == [(1, "$.batch[1].messageId")]
    for _ in range(4):  # lands on any of the workers
        r = server.post("/v1/track", _track("m-1", "a"))
        assert r.status_code == 200 and r.json()["warnings"][0]["path"] == "$.messageId"
    # Ids the collector generates are never repeats; another id is new.
    assert (
        server.post("/v1/batch", {"batch": [_track(None, "b"), _track(None, "b")]}).json()[
            "warnings"
        ]
        == []
    )
    assert server.post("/v1/track", _track("m-2", "a")).json()["warnings"] == []
    assert wait_for(lambda: _stored(server, "a") == 2 and _stored(server, "b") == 2)
    server.stop()
    server.start()  # after a restart the window still holds
    r = server.post("/v1/track", _track("m-1", "a"))
    assert r.status_code == 200 and len(r.json()["warnings"]) == 1
    server.stop()
    assert _stored(server, "a") == 2


def test_the_window_can_be_turned_off(server_factory: ServerFactory) -> None:
    server = server_factory("[ingest]\ndedupe_window_hours = 0\n").start()
    r = server.post("/v1/batch", {"batch": [_track("m-1", "c"), _track("m-1", "c")]})
    assert r.status_code == 200 and r.json()["warnings"] == []
    assert wait_for(lambda: _stored(server, "c") == 2)


def test_seen_set_rotates_generations_with_the_clock(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    seen = SeenSet(window_s=10)
    assert seen.seen(conn, [1, 2], now=0) == set()
    assert seen.seen(conn, [1, 3], now=5) == {1}
    assert seen.seen(conn, [2], now=12) == {2}  # rotated once: still in the previous table
    assert seen.seen(conn, [1], now=19) == {1}
    assert seen.seen(conn, [3], now=25) == set()  # two rotations: older than two windows
    # A second process sharing the file rotates only once for both.
    other = SeenSet(window_s=10)
    assert other.seen(conn, [3], now=26) == {3}
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"dedupe_current", "dedupe_previous", "dedupe_state"} <= tables
    (count,) = conn.execute(
        "SELECT (SELECT count(*) FROM dedupe_current) + (SELECT count(*) FROM dedupe_previous)"
    ).fetchone()
    assert count <= 4  # bounded: only the last two generations are kept


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(st.integers(min_value=1, max_value=30), max_size=6)),
        max_size=25,
    )
)
def test_two_processes_see_every_earlier_key(steps: list[tuple[bool, list[int]]]) -> None:
    """Two processes' seen sets on one file, merging into the B-tree every few
    keys: within a window a key is a repeat exactly when it was recorded before."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "d.db", isolation_level=None)
        sets = (SeenSet(window_s=100, merge_at=4), SeenSet(window_s=100, merge_at=4))
        recorded: set[int] = set()
        for which, keys in steps:
            distinct = list(dict.fromkeys(keys))
            assert sets[which].seen(conn, distinct, now=1.0) == recorded & set(distinct)
            recorded |= set(distinct)


def test_a_rolled_back_batch_leaves_no_key(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    seen = SeenSet(window_s=100, merge_at=2)
    conn.execute("BEGIN")
    assert seen.seen(conn, [1, 2, 3], now=0) == set()
    conn.execute("ROLLBACK")
    seen.discard()
    assert seen.seen(conn, [1, 2, 3], now=1) == set()
    assert seen.seen(conn, [3, 4], now=2) == {3}


@given(st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=5)), max_size=20))
def test_repeats_within_a_batch(keys: list[int | None]) -> None:
    repeats, distinct = repeats_within(keys)
    assert sorted(distinct) == sorted({k for k in keys if k is not None})
    for i in repeats:
        assert keys[i] is not None and keys[i] in keys[:i]


@given(st.text(), st.text(), st.text())
def test_keys_are_per_source(source: str, other: str, message_id: str) -> None:
    assert dedupe_key(source, message_id) == dedupe_key(source, message_id)
    assert -(2**63) <= dedupe_key(source, message_id) < 2**63
    if source != other:
        assert dedupe_key(source, message_id) != dedupe_key(other, message_id)
