"""Decision rows share their bodies; rows written before that are still read;
outbox rows are stored exactly as given, whatever their number."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.ports import DecisionRecord, OutboxInsert, encode_decisions
from collector.storage.sqlite.decisions import decision_body_id, decisions_for, insert_decisions
from collector.storage.sqlite.migrate import migrate
from collector.storage.sqlite.outbox import insert_outbox

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
def test_outbox_rows_are_stored_as_given_in_order(rows: list[OutboxInsert]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "o.db", isolation_level=None)
        migrate(conn)
        conn.execute("BEGIN")
        insert_outbox(conn, rows)
        conn.execute("COMMIT")
        stored = conn.execute(
            "SELECT destination, message_id, one_id, jurisdiction, gpc, pi, created_at,"
            " payload, next_attempt_at FROM outbox ORDER BY id"
        ).fetchall()
        conn.close()
    assert [r[:8] for r in stored] == [(*r[:4], int(bool(r[4])), *r[5:]) for r in rows]
    assert all(r[8] == r[6] for r in stored)  # first attempt: right away


def _record(destination: str, outcome: str) -> DecisionRecord:
    return DecisionRecord(destination, outcome, "GDPR", "consent", ("because",), (1,))


def test_decision_bodies_are_shared_and_old_rows_still_read(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    # A database from before decision bodies were shared.
    conn.execute(
        "CREATE TABLE decisions (message_id TEXT NOT NULL, at REAL NOT NULL, body BLOB NOT NULL)"
    )
    old = encode_decisions([_record("lake", "allow")])
    conn.execute("INSERT INTO decisions VALUES ('m-old', 1.0, ?)", (old,))
    migrate(conn)

    body = encode_decisions([_record("lake", "deny")])
    first = decision_body_id(conn, body)
    assert decision_body_id(conn, bytes(body)) == first  # stored once
    insert_decisions(conn, [("m-1", 2.0, first), ("m-2", 3.0, first)])

    assert conn.execute("SELECT count(*) FROM decision_bodies").fetchone()[0] == 1
    assert [d.outcome for _, d in decisions_for(conn, "m-old")] == ["allow"]
    assert [(at, d.outcome) for at, d in decisions_for(conn, "m-2")] == [(3.0, "deny")]
    assert decisions_for(conn, "nope") == []
