"""Personal data anywhere in a message never leaves raw (issue 14 §1), for real:
HTTP over loopback, the SQLite files, the JSONL destination and the server log."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.collector.test_scrub import planted_values
from tests.conftest import Server, cli, read_jsonl, wait_for
from tests.identity.test_pii import _paths, _plant, trees

CONFIG = """
[identity]
phone_region = "CN"

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "keeper"
type = "jsonl"
purposes = ["analytics"]
fields = { "properties.contact" = "keep", "context.page.url" = "keep" }
"""
_ids = itertools.count()


@pytest.fixture(scope="module")
def pii_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pii")
    server = Server(root / "data", CONFIG).start()
    yield server
    server.stop()


def _forms(kind: str, value: str) -> set[str]:
    """The value as written and as a normalizer would write it."""
    forms = {value, value.lower()}
    digits = "".join(c for c in value if c.isdigit())
    if kind in ("card", "cn_resident_id", "phone") and len(digits) >= 7:
        forms.add(digits)
    return forms


def _disk(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # each example is a round trip: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["track", "page", "identify"]),
            st.sampled_from(["properties", "context", "traits"]),
            trees,
            st.data(),
            planted_values,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_planted_values_never_reach_a_destination_the_database_or_the_log(
    pii_server: Server, cases: list[tuple[str, str, Any, st.DataObject, tuple[str, str]]]
) -> None:
    batch = []
    planted: list[tuple[str, str]] = []
    for kind, section, tree, data, (what, value) in cases:
        n = next(_ids)
        if section != "context":  # the section this type carries
            section = "traits" if kind == "identify" else "properties"
        message: dict[str, Any] = {
            "type": kind,
            "userId": f"user-{n}",
            "messageId": f"pii-{n}",
            "event": "Order Completed",
            "context": {"consent": {"categoryPreferences": {"analytics": True}}},
        }
        message.setdefault(section, {})["a"] = tree
        path = data.draw(st.sampled_from(_paths(message[section]["a"], (section, "a"))))
        _plant(message, path, f"see {value}")
        message[section]["contact"] = value  # a kept path: still never raw
        batch.append(message)
        planted.append((what, value))
    response = pii_server.post("/v1/batch", {"batch": batch})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(batch)
    ids = {m["messageId"] for m in batch}
    out = pii_server.data_dir / "out"
    wait_for(
        lambda: sum(1 for line in read_jsonl(out) if line.get("messageId") in ids) == 2 * len(ids)
    )
    # The decisions say what was replaced, by kind and path.
    why = cli(pii_server, "audit", "why", batch[0]["messageId"], "lake")
    assert "pii: " in why.stdout, why.stdout + why.stderr
    files = _disk(pii_server.data_dir) + pii_server.log.read_bytes()
    for what, value in planted:
        for form in _forms(what, value):
            assert form.encode() not in files, f"raw {what} on disk"
            assert json.dumps(form)[1:-1].encode() not in files


def test_a_consent_key_that_is_an_email_stays_out_of_the_quarantine(pii_server: Server) -> None:
    email = "quarantined.person@example.org"
    message = {
        "type": "track",
        "userId": "q-1",
        "event": "E",
        "context": {"consent": {"categoryPreferences": {email: "yes"}}},
    }
    response = pii_server.post("/v1/batch", {"batch": [message]})
    assert response.status_code == 200
    (rejected,) = response.json()["rejected"]
    assert "@" not in rejected["reason"] + rejected["path"]
    conn = sqlite3.connect(pii_server.data_dir / "consentry.db")
    try:
        rows = conn.execute("SELECT reason, path FROM quarantine").fetchall()
    finally:
        conn.close()
    assert rows and all("quarantined" not in r + p and "@" not in r + p for r, p in rows)
