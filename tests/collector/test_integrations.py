"""Segment's `integrations` flags as restrictions only (issue 13 case 10), over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from collector.pipeline.integrations import blocked
from tests.conftest import Server, ServerFactory, wait_for

TWO_LAKES = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "archive"
type = "jsonl"
purposes = ["analytics"]
"""
GRANT = {"consent": {"categoryPreferences": {"analytics": True}}}


def _ids(server: Server, name: str) -> list[str]:
    path = server.data_dir / "out" / f"{name}.jsonl"
    if not path.exists():
        return []
    return sorted(json.loads(line)["messageId"] for line in path.read_text().splitlines() if line)


def _track(message_id: str, integrations: dict[str, Any] | None, context: Any = None) -> Any:
    message: dict[str, Any] = {
        "type": "track",
        "userId": f"user-{message_id}",
        "event": "Viewed",
        "messageId": message_id,
        "context": GRANT if context is None else context,
    }
    if integrations is not None:
        message["integrations"] = integrations
    return message


def test_flags_restrict_and_never_widen(server_factory: ServerFactory) -> None:
    server = server_factory(TWO_LAKES).start()
    batch = [
        _track("plain", None),
        _track("all-off", {"All": False}),
        _track("all-off-archive-on", {"All": False, "archive": True}),
        _track("lake-off", {"lake": False}),
        _track("options-object", {"All": False, "Lake": {"some": "option"}}),
        _track("no-consent-lake-on", {"lake": True, "All": True}, context={}),
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 6, r.text
    r = server.post(
        "/v1/batch", {"integrations": {"archive": False}, "batch": [_track("batch-flag", None)]}
    )
    assert r.status_code == 200, r.text
    assert wait_for(lambda: len(_ids(server, "lake")) == 3 and len(_ids(server, "archive")) == 3)
    server.stop()
    assert _ids(server, "lake") == sorted(["plain", "options-object", "batch-flag"])
    assert _ids(server, "archive") == sorted(["plain", "all-off-archive-on", "lake-off"])
    cmd = [sys.executable, "-m", "collector.cli", "audit", "why", "lake-off", "lake"]
    cmd += ["--data-dir", str(server.data_dir), "--config", str(server.config_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=server.env, timeout=60)
    assert "integrations.lake or integrations.All is false" in done.stdout, done.stdout


def test_blocked_is_a_restriction_of_the_names_given() -> None:
    names = ("lake", "archive")
    assert blocked(None, names) == frozenset()
    assert blocked({"All": True, "lake": True}, names) == frozenset()
    assert blocked({"all": False}, names) == frozenset(names)
    assert blocked({"All": False, "ARCHIVE": True}, names) == {"lake"}
    assert blocked({"Segment.io": False, "unknown": False}, names) == frozenset()
