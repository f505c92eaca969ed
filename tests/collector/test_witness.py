"""The witness file against a real SQLite ledger: any cut tail is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.audit import witness
from collector.errors import CollectorError
from collector.storage.sqlite.audit import SqliteAuditStore
from collector.storage.sqlite.connection import open_database
from consent.ledger import Ledger

KEY = Ed25519PrivateKey.generate()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(path: Path, commits: list[int], lines: Path) -> int:
    """A ledger of ``sum(commits)`` records, one checkpoint per commit, each
    witnessed in ``lines`` as the collector does; returns the record count."""
    conn = open_database(path)
    ledger = Ledger(conn.ledger_store, signer=KEY, checkpoint_every=1)
    sink = witness.Witnesses([witness.FileWitness(lines)])
    n = 0
    for size in commits:
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(size):
            n += 1
            at = T0 + timedelta(seconds=n)
            ledger.append(
                one_id=n % 3 + 1,
                subject=f"ps1.k1.{n % 3:043d}",
                purposes={"analytics": n % 2 == 0},
                jurisdiction="GDPR",
                method="banner_accept",
                given_at=at,
                received_at=at,
            )
        sealed = ledger.checkpoint(at) if ledger.due(at) else None
        assert sealed is not None and sealed.seq == n
        sink.seal(sealed)
        conn.execute("COMMIT")
        sink.publish()
    sink.close()
    conn.close()
    return n


@settings(max_examples=25, deadline=None)
@given(commits=st.lists(st.integers(1, 4), min_size=1, max_size=6), cut=st.integers(0, 8))
def test_a_cut_tail_is_caught_by_the_witness_only(
    tmp_path_factory: pytest.TempPathFactory, commits: list[int], cut: int
) -> None:
    d = tmp_path_factory.mktemp("witness")
    n = build(d / "l.db", commits, d / "w.jsonl")
    cut = min(cut, n)
    conn = open_database(d / "l.db")
    conn.execute("DELETE FROM consent_ledger WHERE seq > ?", (n - cut,))
    conn.execute("DELETE FROM consent_checkpoints WHERE seq > ?", (n - cut,))
    store = SqliteAuditStore(conn)
    lines = witness.read(d / "w.jsonl")
    assert [line.seq for line in lines] == [sum(commits[: i + 1]) for i in range(len(commits))]
    # The shorter ledger is consistent on its own ...
    assert store.verify(KEY.public_key(), anchor=None).ok
    # ... and the witness tells whether anything was cut, and from where.
    result = witness.check(store, lines)
    assert result.ok == (cut == 0)
    if cut:
        assert result.first_bad_seq == min(line.seq for line in lines if line.seq > n - cut)
        assert "gone" in str(result.problem)


def test_a_rewritten_record_differs_from_the_witness(tmp_path: Path) -> None:
    n = build(tmp_path / "l.db", [2, 1], tmp_path / "w.jsonl")
    conn = open_database(tmp_path / "l.db")
    conn.execute("UPDATE consent_ledger SET hash = zeroblob(32) WHERE seq = ?", (n,))
    store = SqliteAuditStore(conn)
    result = witness.check(store, witness.read(tmp_path / "w.jsonl"))
    assert not result.ok and result.first_bad_seq == n and "differs" in str(result.problem)


def test_a_torn_last_line_is_skipped_and_a_bad_line_named(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    build(tmp_path / "l.db", [1, 1], path)
    with path.open("ab") as fh:
        fh.write(b'{"seq": 3, "ha')  # a crash mid-write
    assert [line.seq for line in witness.read(path)] == [1, 2]
    path.write_bytes(b'{"seq": 1}\n' + path.read_bytes())
    with pytest.raises(CollectorError, match="line 1"):
        witness.read(path)
