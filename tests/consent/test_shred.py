"""Crypto-shredded ledger subjects (issue 14 §4): after erasure the chain still
verifies, counts the erased records, and nothing in the ledger opens to the person."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.sqlite.connection import open_database
from collector.storage.sqlite.ledger import SqliteLedgerStore, SqliteSubjectKeys, read_records
from consent import shred
from consent.ledger import Ledger, VerifyResult, opened
from consent.ledger import verify as verify_store


def verify(
    conn: sqlite3.Connection,
    public_key: Ed25519PublicKey | None = None,
    *,
    anchor: tuple[int, bytes] | None = None,
) -> VerifyResult:
    """consent.ledger.verify over the SQLite store on ``conn``."""
    return verify_store(SqliteLedgerStore(conn), public_key, anchor=anchor)


T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def _ledger() -> tuple[sqlite3.Connection, Ledger, SqliteSubjectKeys]:
    conn = open_database(":memory:")
    keys = SqliteSubjectKeys(conn)
    return conn, Ledger(conn.ledger_store, signer=KEY, checkpoint_every=4, subject_keys=keys), keys


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=25),
    st.sets(st.integers(1, 5)),
)
def test_erasure_shreds_subjects_and_signals_and_the_chain_still_verifies(
    appends: list[tuple[int, bool]], erased: set[int]
) -> None:
    conn, ledger, keys = _ledger()
    people = set()
    for i, (one_id, granted) in enumerate(appends):
        at = T0 + timedelta(seconds=i)
        ledger.append(
            one_id=one_id,
            subject=f"ps1.k1.person-{one_id}",
            purposes={"analytics": granted},
            jurisdiction="GDPR",
            method="banner",
            given_at=at,
            received_at=at,
            signal=f"free text naming person-{one_id}",
        )
        people.add(one_id)
        if ledger.due(at):
            ledger.checkpoint(at)
    erased &= people
    for one_id in sorted(erased):
        ledger.erase(one_id, subject="", jurisdiction="GDPR", now=T0 + timedelta(hours=1))
    result = verify(conn, KEY.public_key())
    assert result.ok, result.problem
    assert result.erased == sum(1 for o, _ in appends if o in erased)
    body = b"".join(r[0] for r in conn.execute("SELECT body FROM consent_ledger"))
    assert b"person-" not in body  # sealed even before erasure
    for record in read_records(conn):
        shown = opened(record, keys)
        if record.action == "erase":
            assert record.subject == ""
        elif record.one_id in erased:
            assert shown.subject == shown.signal == shred.ERASED
        else:
            assert shown.subject == f"ps1.k1.person-{record.one_id}"
            assert shown.signal == f"free text naming person-{record.one_id}"


def test_a_merged_persons_absorbed_keys_go_with_the_erasure() -> None:
    conn, ledger, keys = _ledger()
    for one_id in (1, 2):
        ledger.append(
            one_id=one_id,
            subject=f"ps1.k1.p{one_id}",
            purposes={"analytics": True},
            jurisdiction="GDPR",
            method="banner",
            given_at=T0,
            received_at=T0,
        )
    ledger.merge(1, [2], subject="ps1.k1.p1", jurisdiction="GDPR", now=T0)
    ledger.erase(1, subject="", jurisdiction="GDPR", now=T0, lineage=[1, 2])
    assert keys.get(1) is None and keys.get(2) is None
    assert verify(conn).erased == 3


def test_a_sealed_value_does_not_open_in_another_record() -> None:
    key = shred.new_key()
    sealed = shred.seal(key, "ps1.k1.x", seq=3, one_id=1, name="subject")
    assert shred.unseal(key, sealed, seq=3, one_id=1, name="subject") == "ps1.k1.x"
    for seq, one_id, name in ((4, 1, "subject"), (3, 2, "subject"), (3, 1, "signal")):
        assert shred.unseal(key, sealed, seq=seq, one_id=one_id, name=name) == shred.ERASED
    assert shred.unseal(None, sealed, seq=3, one_id=1, name="subject") == shred.ERASED


@pytest.mark.parametrize("value", ["", "plain"])
def test_values_that_are_not_sealed_read_as_they_are(value: str) -> None:
    assert shred.unseal(None, value, seq=1, one_id=1, name="subject") == value


def test_an_erasure_by_another_process_leaves_no_subject_key_in_this_ones_cache(
    tmp_path: Path,
) -> None:
    """Replicas (or worker processes) share the ledger: when one erases a
    person, the others must not keep encrypting with the destroyed key."""
    path = tmp_path / "l.db"
    ledgers = []
    for _ in range(2):
        conn = open_database(str(path))
        keys = SqliteSubjectKeys(conn)
        ledgers.append((conn, Ledger(conn.ledger_store, signer=KEY, subject_keys=keys), keys))
    (conn_a, a, keys_a), (_, b, _) = ledgers

    def grant(ledger: Ledger, at: datetime) -> None:
        ledger.append(
            one_id=1,
            subject="ps1.k1.person-1",
            purposes={"analytics": True},
            jurisdiction="GDPR",
            method="banner",
            given_at=at,
            received_at=at,
        )

    grant(a, T0)  # A holds person 1's key in memory
    b.sync(b._store.head())
    b.erase(1, subject="", jurisdiction="GDPR", now=T0 + timedelta(minutes=1))
    a.sync(a._store.head())
    grant(a, T0 + timedelta(minutes=2))
    last = list(read_records(conn_a))[-1]
    # sealed under a new key, which exists: not under the destroyed one
    assert opened(last, keys_a).subject == "ps1.k1.person-1"
