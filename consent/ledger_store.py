"""Where the consent ledger lives, as protocols: ``LedgerStore`` (appends and
the derived state, inside the caller's transaction) and ``LedgerReader``
(what verification reads). ``collector.storage.sqlite.ledger`` implements both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from consent.state import ConsentState

__all__ = ["LedgerReader", "LedgerStore", "StateRow"]

# A consent_state row: (key, granted, record seq, guardian, at ISO 8601,
# scope (comma-separated purposes, "" for none), notice version or None).
StateRow = tuple[str, bool, int, bool, str, str, str | None]


class LedgerStore(Protocol):
    """Where the ledger's records, checkpoints and derived state live. Runs in
    the caller's transaction; ``head`` must be read inside it."""

    def head(self) -> tuple[int, bytes] | None:
        """(seq, hash) of the last record; None when there is none."""
        ...

    def sealed(self) -> tuple[int, str] | None:
        """(seq, signed_at ISO 8601) of the last checkpoint; None when there is none."""
        ...

    def bodies_after(self, seq: int) -> Iterable[bytes]:
        """Record bodies with a seq above ``seq``, in order."""
        ...

    def state(self, one_id: int) -> ConsentState: ...
    def append(self, seq: int, body: bytes, digest: bytes) -> None: ...
    def put_state(self, one_id: int, rows: Sequence[StateRow]) -> None:
        """Make these the latest entries of the OneID for their keys."""
        ...

    def drop_state(self, one_id: int) -> None: ...
    def add_checkpoint(
        self, seq: int, digest: bytes, signature: bytes, public_key: bytes, signed_at: str
    ) -> None: ...


class LedgerReader(Protocol):
    """What verification reads, as stored (an edit through SQL may have turned
    a BLOB into TEXT: values are checked, not trusted)."""

    def chain_rows(self) -> Iterable[tuple[int, object, object]]:
        """(seq, body, hash) of every record in seq order."""
        ...

    def checkpoint_rows(self) -> Iterable[tuple[int, object, object, object, str]]:
        """(seq, hash, signature, public key, signed_at) of every checkpoint."""
        ...

    def hash_at(self, seq: int) -> object | None: ...
    def key_holders(self) -> set[int]:
        """OneIDs that still hold a subject key (see consent.shred)."""
        ...
