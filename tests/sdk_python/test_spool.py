"""The spool gives back every message once, in call order, whatever the order of writes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sdk_python.spool import Spool


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 1200), min_size=1, max_size=8),
    st.integers(1, 1500),
    st.integers(0, 7),
    st.integers(50, 3000),
)
def test_fifo_in_call_order_across_reopen(
    runs: list[int], limit: int, late: int, size: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.db"
        spool = Spool(path, chunk_items=97, chunk_bytes=20_000)
        seq = 0
        batches = []
        for n in runs:
            batches.append([(seq + i, f"m{seq + i}".encode() * (size // 8 + 1)) for i in range(n)])
            seq += n
        # a failed earlier batch can be put back after later spills
        late %= len(batches)
        for i, b in enumerate(batches):
            if i != late:
                spool.put(b)
        spool.put(batches[late])
        assert len(spool) == seq
        spool.close()
        spool = Spool(path)  # survives a restart
        assert spool.max_seq() == seq - 1
        out: list[int] = []
        while len(spool):
            head = spool.head(limit, 480_000)
            assert head
            out.extend(s for s, _ in head)
            spool.delete([s for s, _ in head])
        assert out == list(range(seq))
        spool.close()
