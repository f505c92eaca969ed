"""Repeated ``messageId``s: which messages of a batch were seen before (pure part).

Segment drops a message whose ``messageId`` it saw from the same source within
about a day; so does Consentry: a repeat inside the window (``[ingest]
dedupe_window_hours``, default 24) is acknowledged and counted as accepted but
stored once. Only ids the client sent are checked: an id the collector
generated is new by construction.

The seen set is keyed by a 63-bit integer, the first 8 bytes of
BLAKE2b(source ‖ 0x00 ‖ messageId): an integer primary key is SQLite's rowid
itself, so a probe is one B-tree descent with no second index; new keys are
appended to a log and merged into that B-tree in sorted runs, so an insert
does not dirty a page of its own (benchmarks/dedupe.py: about +4 µs of CPU per
message against +20 µs for a random-UUID text unique index). Two ids of one source
collide with probability 2^-63 per pair: at ten million messages a day, about
once in 100,000 years of daily windows.

The store (``collector.storage.sqlite.dedupe``) keeps two generations of keys,
each at most one window old, and drops the older table whole when the current
one ages out: disk stays bounded by two windows of keys (about 20 bytes each),
memory by the unmerged log, and nothing is deleted row by row. A repeat is caught for at
least one window and at most two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def dedupe_key(source: str, message_id: str) -> int:
    """The seen-set key of a source's message id (signed 64-bit, never 0)."""
    digest = hashlib.blake2b(
        source.encode() + b"\x00" + message_id.encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


def repeats_within(keys: Sequence[int | None]) -> tuple[list[int], list[int]]:
    """(positions whose key already occurred earlier in ``keys``, the distinct
    keys to look up in order). None keys (ids the collector generated) are
    never repeats."""
    seen: set[int] = set()
    repeats: list[int] = []
    distinct: list[int] = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        if key in seen:
            repeats.append(i)
        else:
            seen.add(key)
            distinct.append(key)
    return repeats, distinct
