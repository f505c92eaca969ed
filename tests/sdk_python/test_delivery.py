"""Pure delivery logic: batch isolation (issue 13 case 11) and the spool's
per-message deletes, as properties."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sdk_python.delivery import Attempt, Plan, isolate
from sdk_python.spool import Spool


def drive(batch: list[int], poison: set[int], *, down: bool = False) -> tuple[Plan[int], int]:
    """Run ``isolate`` against a collector that answers 500 to any group holding
    a poison message (or to everything when ``down``)."""
    steps = isolate(batch)
    group = next(steps)
    requests = 0
    while True:
        requests += 1
        bad = down or bool(poison & set(group))
        attempt = Attempt("server_error", status=500) if bad else Attempt("delivered", status=200)
        try:
            group = steps.send(attempt)
        except StopIteration as stop:
            return stop.value, requests


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 120), st.sets(st.integers(0, 119), max_size=6))
def test_isolation_drops_exactly_the_poison_and_delivers_the_rest(n: int, poison: set[int]) -> None:
    batch = list(range(n))
    poison = {p for p in poison if p < n}
    plan, _ = drive(batch, poison)
    every = plan.delivered + [m for m, _ in plan.dropped] + plan.pending
    assert sorted(every) == batch  # each message ends in exactly one place
    if len(poison) < n:  # some neighbour is accepted: poison is told apart
        assert sorted(m for m, _ in plan.dropped) == sorted(poison)
        assert all(reason == "poison: HTTP 500" for _, reason in plan.dropped)
        assert sorted(plan.delivered) == sorted(set(batch) - poison)
    else:
        assert not plan.delivered and not plan.dropped  # nothing to compare with: keep all


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1000))
def test_an_outage_keeps_everything_pending_after_a_few_requests(n: int) -> None:
    plan, requests = drive(list(range(n)), set(), down=True)
    assert sorted(plan.pending) == list(range(n)) and not plan.dropped
    assert requests <= 2 * max(1, (n - 1).bit_length()) + 3


def test_a_refused_batch_is_split_and_only_the_refused_message_dropped() -> None:
    steps = isolate(list(range(8)))
    group = next(steps)
    while True:
        attempt = Attempt("refused", status=400) if 5 in group else Attempt("delivered", status=200)
        try:
            group = steps.send(attempt)
        except StopIteration as stop:
            plan: Plan[int] = stop.value
            break
    assert plan.dropped == [(5, "delivery_failed")] and sorted(plan.delivered) == [
        0,
        1,
        2,
        3,
        4,
        6,
        7,
    ]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.sets(st.integers(0, 399)), st.integers(1, 60))
def test_spool_deletes_any_subset_and_keeps_the_rest_in_order(
    n: int, gone: set[int], chunk: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        spool = Spool(Path(d) / "s.db", chunk_items=chunk)
        spool.put([(i, f"m{i}".encode()) for i in range(n)])
        spool.delete(sorted(g for g in gone if g < n))
        left = [i for i in range(n) if i not in gone]
        assert len(spool) == len(left)
        out: list[int] = []
        while len(spool):
            head = spool.head(37, 10_000)
            out.extend(s for s, _ in head)
            spool.delete([s for s, _ in head])
        assert out == left
        spool.close()


def test_spool_never_spins_on_a_count_the_file_disagrees_with(tmp_path: Path) -> None:
    """Issue 21 §1: rows removed behind the spool's back (another process, before
    spools were owned) left a count > 0 with nothing to read: a busy loop."""
    import sqlite3

    spool = Spool(tmp_path / "s.db")
    spool.put([(i, b"m") for i in range(3)])
    other = sqlite3.connect(tmp_path / "s.db")
    other.execute("DELETE FROM spool_chunks")
    other.commit()
    other.close()
    assert len(spool) == 3  # the stale count
    assert spool.head(100, 10_000) == []
    assert len(spool) == 0  # recounted from the file
    spool.close()
