from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.sqlite.connection import open_database
from collector.storage.sqlite.ledger import SqliteLedgerStore
from consent.ledger import Ledger, VerifyResult, chain
from consent.ledger import verify as verify_store


def verify(
    conn: sqlite3.Connection,
    public_key: object = None,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyResult:
    """consent.ledger.verify over the SQLite store on ``conn``."""
    return verify_store(SqliteLedgerStore(conn), public_key, anchor=anchor)  # type: ignore[arg-type]


T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def build(n: int = 6, *, every: int = 3) -> tuple[sqlite3.Connection, Ledger]:
    conn = open_database(":memory:")
    ledger = Ledger(conn.ledger_store, signer=KEY, checkpoint_every=every, checkpoint_seconds=3600)
    for i in range(n):
        at = T0 + timedelta(minutes=i)
        ledger.append(
            one_id=i % 3 + 1,
            subject=f"ps1.k1.subject{i}",
            purposes={"analytics": i % 2 == 0},
            jurisdiction="GDPR",
            method="banner_accept",
            given_at=at,
            received_at=at,
            notice_id="banner",
            notice_version="4",
        )
        if ledger.due(at):
            ledger.checkpoint(at)
    return conn, ledger


def test_clean_ledger_verifies_with_checkpoints() -> None:
    conn, _ = build(8)  # checkpoints at 1 (first record), 4 and 7
    result = verify(conn, KEY.public_key())
    assert result.ok, result.problem
    assert result.records == 8 and result.last_checkpoint is not None
    assert result.last_checkpoint.seq == 7 and result.unsealed == 1
    assert [r[0] for r in conn.execute("SELECT seq FROM consent_checkpoints ORDER BY seq")] == [
        1,
        4,
        7,
    ]


def test_state_is_latest_record_per_purpose_and_actions() -> None:
    conn = open_database(":memory:")
    ledger = Ledger(conn.ledger_store)
    r1 = ledger.append(
        one_id=1,
        subject="s",
        purposes={"analytics": True, "marketing": True},
        jurisdiction="GDPR",
        method="banner_accept",
        given_at=T0,
        received_at=T0,
    )
    r2 = ledger.append(
        one_id=1,
        subject="s",
        purposes={"marketing": False},
        jurisdiction="GDPR",
        method="preferences",
        given_at=T0,
        received_at=T0,
    )
    r3 = ledger.append(
        one_id=1,
        subject="s",
        purposes={"advertising": False},
        jurisdiction="GDPR",
        method="banner_reject",
        given_at=T0,
        received_at=T0,
    )
    assert (r1.action, r2.action, r3.action) == ("grant", "withdraw", "deny")
    s = ledger.state(1)
    assert s.get("analytics").granted and s.get("analytics").record_id == 1  # type: ignore[union-attr]
    assert not s.get("marketing").granted and s.get("marketing").record_id == 2  # type: ignore[union-attr]


def test_merges_never_widen_consent() -> None:
    conn = open_database(":memory:")
    ledger = Ledger(conn.ledger_store)
    ledger.append(
        one_id=1,
        subject="a",
        purposes={"analytics": True, "marketing": True},
        jurisdiction="GDPR",
        method="api",
        given_at=T0,
        received_at=T0,
    )
    ledger.append(
        one_id=2,
        subject="b",
        purposes={"marketing": False, "advertising": True},
        jurisdiction="GDPR",
        method="api",
        given_at=T0,
        received_at=T0,
    )
    record = ledger.merge(1, [2], subject="a", jurisdiction="GDPR", now=T0)
    assert record is not None and record.action == "merge" and record.merged_from == (2,)
    # a denial on either side wins; a grant with no record on the other side stays
    # granted: no record is not a denial (issue 14 §2)
    assert record.purposes == {"advertising": True, "analytics": True, "marketing": False}
    assert ledger.state(2).purposes == {}
    sides = record.contributions["marketing"]
    assert [(s.one_id, s.record, s.granted) for s in sides] == [(1, 1, True), (2, 2, False)]
    assert [(s.one_id, s.record) for s in record.contributions["analytics"]] == [(1, 1), (2, None)]
    # the merged state cites the records that gave each answer
    state = ledger.state(1)
    assert state.get("advertising") is not None and state.get("advertising").record_id == 2  # type: ignore[union-attr]
    assert not state.purposes["marketing"].granted


def test_deleted_reordered_and_resigned_records_are_detected() -> None:
    conn, _ = build(6)
    conn.execute("DELETE FROM consent_ledger WHERE seq = 2")
    r = verify(conn, KEY.public_key())
    assert not r.ok and r.first_bad_seq == 2 and "missing" in str(r.problem)

    conn, _ = build(6)
    b2, b3 = (
        conn.execute("SELECT body, hash FROM consent_ledger WHERE seq = ?", (s,)).fetchone()
        for s in (2, 3)
    )
    conn.execute("UPDATE consent_ledger SET body = ?, hash = ? WHERE seq = 2", b3)
    conn.execute("UPDATE consent_ledger SET body = ?, hash = ? WHERE seq = 3", b2)
    r = verify(conn, KEY.public_key())
    assert not r.ok and r.first_bad_seq == 2

    # an attacker who rewrites a record, recomputes the chain and re-signs with their own key
    conn, _ = build(6)
    body = conn.execute("SELECT body FROM consent_ledger WHERE seq = 1").fetchone()[0]
    forged = bytes(body).replace(b'"analytics":true', b'"analytics":false')
    rows = conn.execute("SELECT seq, body FROM consent_ledger ORDER BY seq").fetchall()
    prev = bytes(32)
    evil = Ed25519PrivateKey.generate()
    from consent.ledger import checkpoint_message

    for seq, b in rows:
        b = forged if seq == 1 else bytes(b)
        prev = chain(prev, b)
        conn.execute("UPDATE consent_ledger SET body = ?, hash = ? WHERE seq = ?", (b, prev, seq))
        cp = conn.execute("SELECT 1 FROM consent_checkpoints WHERE seq = ?", (seq,)).fetchone()
        if cp:
            conn.execute(
                "UPDATE consent_checkpoints SET hash = ?, signature = ?, public_key = ? WHERE seq = ?",
                (
                    prev,
                    evil.sign(checkpoint_message(seq, prev)),
                    evil.public_key().public_bytes_raw(),
                    seq,
                ),
            )
    r = verify(conn, KEY.public_key())
    assert not r.ok and "not signed by the expected key" in str(r.problem)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_detected(data: st.DataObject) -> None:
    conn, _ = build(6)
    seq = data.draw(st.integers(1, 6))
    column = data.draw(st.sampled_from(["body", "hash"]))
    value = bytes(
        conn.execute(f"SELECT {column} FROM consent_ledger WHERE seq = ?", (seq,)).fetchone()[0]
    )
    pos = data.draw(st.integers(0, len(value) - 1))
    delta = data.draw(st.integers(1, 255))
    changed = value[:pos] + bytes([(value[pos] + delta) % 256]) + value[pos + 1 :]
    conn.execute(f"UPDATE consent_ledger SET {column} = ? WHERE seq = ?", (changed, seq))
    result = verify(conn, KEY.public_key())
    assert not result.ok
    assert result.first_bad_seq == seq


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7))
def test_any_deletion_or_swap_is_detected(a: int, b: int) -> None:
    conn, _ = build(7)  # sealed up to the last record
    if a == b:
        conn.execute("DELETE FROM consent_ledger WHERE seq = ?", (a,))
    else:
        ra = conn.execute("SELECT body, hash FROM consent_ledger WHERE seq = ?", (a,)).fetchone()
        rb = conn.execute("SELECT body, hash FROM consent_ledger WHERE seq = ?", (b,)).fetchone()
        conn.execute("UPDATE consent_ledger SET body = ?, hash = ? WHERE seq = ?", (*rb, a))
        conn.execute("UPDATE consent_ledger SET body = ?, hash = ? WHERE seq = ?", (*ra, b))
    assert not verify(conn, KEY.public_key()).ok


def test_tail_truncation_is_caught_by_an_auditor_anchor() -> None:
    conn, ledger = build(7)
    seq, digest = ledger.head
    conn.execute("DELETE FROM consent_ledger WHERE seq >= 6")
    conn.execute("DELETE FROM consent_checkpoints WHERE seq >= 6")
    assert verify(conn, KEY.public_key()).ok  # internally consistent, shorter
    r = verify(conn, KEY.public_key(), anchor=(seq, digest))
    assert not r.ok and "truncated" in str(r.problem)


def test_a_rolled_back_checkpoint_is_forgotten_with_the_head() -> None:
    """Issue 19 item 2: a checkpoint sealed in a transaction that failed to
    commit (a full disk) must not count: after the rollback the records are
    sealed again by the next checkpoint, not left outside any."""
    conn, ledger = build(3, every=3)  # records 1-3, a checkpoint at 1
    conn.execute("BEGIN")
    at = T0 + timedelta(minutes=10)
    for i in range(3):
        ledger.append(
            one_id=1,
            subject="ps1.k1.s",
            purposes={"analytics": i % 2 == 0},
            jurisdiction="GDPR",
            method="banner_accept",
            given_at=at,
            received_at=at,
        )
    assert ledger.due(at) and ledger.checkpoint(at) is not None  # seals seq 6 ...
    conn.execute("ROLLBACK")  # ... but the COMMIT failed
    ledger.reload_head()
    assert ledger.head[0] == 3 and not ledger.due(at)
    for i in range(3):
        ledger.append(
            one_id=2,
            subject="ps1.k1.t",
            purposes={"analytics": i % 2 == 1},
            jurisdiction="GDPR",
            method="banner_accept",
            given_at=at,
            received_at=at,
        )
    assert ledger.due(at)
    sealed = ledger.checkpoint(at)
    assert sealed is not None and sealed.seq == 6
    rows = conn.execute("SELECT seq FROM consent_checkpoints ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [1, 6]
