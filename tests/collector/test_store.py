"""Decision rows share their bodies; rows written before that are still read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector import store


def _record(destination: str, outcome: str) -> store.DecisionRecord:
    return store.DecisionRecord(destination, outcome, "GDPR", "consent", ("because",), (1,))


def test_decision_bodies_are_shared_and_old_rows_still_read(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    # A database from before decision bodies were shared.
    conn.execute(
        "CREATE TABLE decisions (message_id TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL)"
    )
    old = store.decisions_encoder.encode([_record("lake", "allow")])
    conn.execute("INSERT INTO decisions VALUES ('m-old', 1.0, ?)", (old,))
    store.create(conn)

    body = store.decisions_encoder.encode([_record("lake", "deny")])
    first = store.decision_body_id(conn, body)
    assert store.decision_body_id(conn, bytes(body)) == first  # stored once
    store.insert_decisions(conn, [("m-1", 2.0, first), ("m-2", 3.0, first)])

    assert conn.execute("SELECT count(*) FROM decision_bodies").fetchone()[0] == 1
    assert [d.outcome for _, d in store.decisions_for(conn, "m-old")] == ["allow"]
    assert [(at, d.outcome) for at, d in store.decisions_for(conn, "m-2")] == [(3.0, "deny")]
    assert store.decisions_for(conn, "nope") == []
