"""Decision rows share their bodies; rows written before that are still read;
outbox rows are stored exactly as given, whatever their number."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collector import store

_outbox_row = st.tuples(
    st.sampled_from(["lake", "ads"]),
    st.text(min_size=1, max_size=40),
    st.integers(min_value=1, max_value=2**62),
    st.sampled_from(["GDPR", "PIPL", "CCPA", "none"]),
    st.booleans(),
    st.text(max_size=20),
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.binary(max_size=300),
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(_outbox_row, max_size=700))
def test_outbox_rows_are_stored_as_given_in_order(rows: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "o.db", isolation_level=None)
        store.create(conn)
        conn.execute("BEGIN")
        store.insert_outbox(conn, rows)
        conn.execute("COMMIT")
        stored = conn.execute(
            "SELECT destination, message_id, one_id, jurisdiction, gpc, pi, created_at,"
            " payload, next_attempt_at FROM outbox ORDER BY id"
        ).fetchall()
        conn.close()
    assert [r[:8] for r in stored] == [(*r[:4], int(bool(r[4])), *r[5:]) for r in rows]
    assert all(r[8] == r[6] for r in stored)  # first attempt: right away


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
