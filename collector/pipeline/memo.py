"""The one bounded memo every pipeline step uses.

Returning people send the same identifiers, consent and addresses again and
again: the steps remember what is pure to derive from them. A ``Memo`` is a
dict (lookups are the C ``dict.get``) with one rule for growth: when full, it is
emptied whole and refilled, so memory stays bounded without per-hit LRU
bookkeeping. With the pseudonym cache, about 100 MB per worker at the default
limits (measured with 100,000 distinct people, benchmarks/ingest_memory.py).

Keys are values (strings, tuples, frozen dataclasses), never ``id()`` of an
object: an id can be reused once its object is gone.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Enough for the people active in the last minutes.
PEOPLE = 50_000


class Memo(dict[K, V]):
    """A dict of at most ``limit`` entries: ``put`` empties it when full."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` under ``key``; returns ``value``."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
