"""The OneID graph: deterministic links between pseudonyms, over a store.

Identifiers seen together link into one person (a OneID). Rules keep the graph
from over-merging, the failure PostHog and Mixpanel users know from shared
devices:

- a per-kind limit per OneID (default: one ``user_id``, five emails, anonymous
  ids unlimited); a link or merge that would exceed it is refused and recorded;
- a priority order: the highest-priority identifier of a message decides whose
  event it is, and lower-priority identifiers that conflict stay unlinked.
  So two people with different user ids never merge through a shared
  anonymous id or device.

Only pseudonyms are stored. Rotation: an identifier presented with its
pseudonyms under previous keys is found under those and relinked under the
active key (lazily: without raw values nothing else can be migrated).

This module holds the rules only; where links live is a ``GraphStore``
(``collector.storage.sqlite.graph.SqliteGraphStore`` is the embedded one).
Every public method runs inside the caller's transaction if one is open
(``GraphStore.atomic``), and never commits behind its back.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NewType, Protocol

from identity.errors import IdentityError

OneId = NewType("OneId", int)

DEFAULT_LIMITS: Mapping[str, int] = {"user_id": 1, "email": 5, "phone": 3, "wechat_unionid": 1}
DEFAULT_PRIORITY: Sequence[str] = (
    "user_id",
    "wechat_unionid",
    "email",
    "phone",
    "wechat_openid",
    "device_id",
    "anonymous_id",
)


class GraphStore(Protocol):
    """Where the graph's links, people, merges, conflicts and tombstones live.
    Times are ISO 8601 strings; OneIDs are positive integers."""

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction, or the caller's if one is open."""
        ...

    def epoch(self) -> int:
        """The counter bumped whenever links moved or vanished (any process)."""
        ...

    def bump_epoch(self) -> int: ...
    def one_id(self, pseudonym: str) -> int | None: ...
    def counts(self, one_id: int) -> dict[str, int]:
        """Live (not migrated) links per kind."""
        ...

    def cluster(self, one_id: int) -> list[tuple[str, str]]: ...
    def person(self, one_id: int) -> tuple[int | None, bool] | None: ...
    def absorbed_into(self, one_ids: Sequence[int]) -> list[int]: ...
    def merges(self, one_id: int) -> list[tuple[int, int, str, str, str]]: ...
    def conflicts(self, one_id: int | None) -> list[tuple[str, str, str, int | None]]: ...
    def is_erased(self, one_id: int) -> bool: ...
    def relink_progress(self, kid: str) -> tuple[int, int]: ...
    def new_person(self, at: str) -> int: ...
    def link(self, pseudonym: str, kind: str, kid: str, one_id: int, at: str) -> None: ...
    def mark_migrated(self, pseudonym: str) -> None: ...
    def merge(self, into: int, absorbed: int, cause_kind: str, cause: str, at: str) -> None: ...
    def conflict(
        self, one_id: int, other: int | None, kind: str, pseudonym: str, reason: str, at: str
    ) -> None: ...
    def erase(self, one_ids: Sequence[int], tombstone: int, at: str) -> int:
        """Delete the links, merges and conflicts of ``one_ids``, mark them
        erased, leave a tombstone for ``tombstone``; returns links deleted."""
        ...


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier of a message: its kind, its pseudonym under the active key,
    and its pseudonyms under previous keys still in the rotation window."""

    kind: str
    pseudonym: str
    previous: tuple[str, ...] = ()

    @property
    def kid(self) -> str:
        return self.pseudonym.split(".")[1]


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: str
    pseudonym: str
    reason: str
    other: OneId | None = None


@dataclass(frozen=True, slots=True)
class Resolution:
    one_id: OneId
    created: bool
    merged: tuple[OneId, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    relinked: int = 0


@dataclass(frozen=True, slots=True)
class MergeRecord:
    one_id: OneId
    absorbed: OneId
    cause_kind: str
    cause: str
    at: str


def _iso(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat()


class Graph:
    """Resolve identifiers to OneIDs under the limits and priorities.

    ``store``: where links live. ``limits``: the most live links per kind per
    OneID (kinds absent are unlimited). ``priority``: kinds, most decisive
    first. ``cache_size``: pseudonyms whose OneID is remembered (LRU)."""

    def __init__(
        self,
        store: GraphStore,
        *,
        limits: Mapping[str, int] | None = None,
        priority: Sequence[str] | None = None,
        cache_size: int = 200_000,
    ) -> None:
        self._store = store
        self._limits = dict(DEFAULT_LIMITS if limits is None else limits)
        order = list(priority or DEFAULT_PRIORITY)
        self._rank = {kind: i for i, kind in enumerate(order)}
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._cache_size = cache_size
        self._epoch = store.epoch()

    @property
    def store(self) -> GraphStore:
        return self._store

    @property
    def epoch(self) -> int:
        """Changes whenever cached links may have become wrong (merge, erasure,
        another process's change seen by sync)."""
        return self._epoch

    def cached_one_id(self, identifiers: Sequence[Identifier]) -> OneId | None:
        """A returning person: every identifier is cached in the same cluster, so
        resolving would link, merge and refuse nothing. The cache holds only what
        the database says (merges and erasures clear it), so this is exact."""
        if not identifiers:
            return None
        cache = self._cache
        known = cache.get(identifiers[0].pseudonym)
        if known is None:
            return None
        for ident in identifiers[1:]:
            if cache.get(ident.pseudonym) != known:
                return None
        return OneId(known)

    def sync(self, epoch: int) -> bool:
        """Take the epoch read inside the current write transaction: if it is not
        the one the cache was built under (another process merged, erased or
        dropped links, or a transaction of ours rolled back), forget cached
        links. Links others only added need nothing: a miss reads the store."""
        if epoch == self._epoch:
            return False
        self._epoch = epoch
        self._cache.clear()
        return True

    def reset(self) -> None:
        """After a rolled-back transaction: forget cached links (they may be
        uncommitted ones) and re-read the epoch (a rolled-back bump is undone)."""
        self._cache.clear()
        self._epoch = self._store.epoch()

    def _moved(self) -> None:
        """Links moved or vanished: tell the other processes' caches."""
        self._epoch = self._store.bump_epoch()
        self._cache.clear()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        try:
            with self._store.atomic():
                yield
        except BaseException:
            self.reset()
            raise

    def _rank_of(self, kind: str) -> int:
        return self._rank.get(kind, len(self._rank))

    def limit(self, kind: str) -> int | None:
        return self._limits.get(kind)

    # -- lookups -----------------------------------------------------------
    def lookup(self, pseudonym: str) -> OneId | None:
        hit = self._cache.get(pseudonym)
        if hit is not None:
            return OneId(hit)
        found = self._store.one_id(pseudonym)
        if found is None:
            return None
        self._remember(pseudonym, found)
        return OneId(found)

    def _remember(self, pseudonym: str, one_id: int) -> None:
        self._cache[pseudonym] = one_id
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def cluster(self, one_id: OneId) -> list[tuple[str, str]]:
        """(kind, pseudonym) of every identifier linked to the OneID."""
        return self._store.cluster(one_id)

    def current(self, one_id: OneId) -> OneId:
        """Follow merges: the OneID that now holds what ``one_id`` held."""
        seen = set()
        while True:
            person = self._store.person(one_id)
            if person is None or person[0] is None or one_id in seen:
                return one_id
            seen.add(one_id)
            one_id = OneId(person[0])

    def lineage(self, one_id: OneId) -> list[int]:
        """The OneID and every OneID merged into it, directly or transitively."""
        out = [int(one_id)]
        frontier = [int(one_id)]
        while frontier:
            frontier = [o for o in self._store.absorbed_into(frontier) if o not in out]
            out.extend(frontier)
        return sorted(out)

    def merge_history(self, one_id: OneId) -> list[MergeRecord]:
        return [
            MergeRecord(OneId(a), OneId(b), kind, cause, at)
            for a, b, kind, cause, at in self._store.merges(one_id)
        ]

    def conflicts(self, one_id: OneId | None = None) -> list[Conflict]:
        return [
            Conflict(kind, pseudonym, reason, None if other is None else OneId(other))
            for kind, pseudonym, reason, other in self._store.conflicts(one_id)
        ]

    def is_erased(self, one_id: OneId) -> bool:
        return self._store.is_erased(one_id)

    def unmigrated(self, kid: str) -> int:
        """Identifiers still linked only under key ``kid``."""
        done, total = self._store.relink_progress(kid)
        return total - done

    # -- changes -----------------------------------------------------------
    def _fits(self, counts: Mapping[str, int], extra: Mapping[str, int]) -> str | None:
        for kind, n in extra.items():
            limit = self._limits.get(kind)
            if limit is not None and counts.get(kind, 0) + n > limit:
                return f"{kind} limit {limit} per OneID"
        return None

    def _link(self, ident: Identifier, one_id: int, now: str) -> None:
        self._store.link(ident.pseudonym, ident.kind, ident.kid, one_id, now)
        self._remember(ident.pseudonym, one_id)

    def _find(self, ident: Identifier, now: str) -> tuple[int | None, bool]:
        """The identifier's OneID, relinking it under the active key if it was
        only known under a previous one. Returns (one_id, relinked)."""
        found = self.lookup(ident.pseudonym)
        if found is not None:
            return found, False
        for old in ident.previous:
            one_id = self._store.one_id(old)
            if one_id is not None:
                self._store.mark_migrated(old)
                self._link(ident, one_id, now)
                return one_id, True
        return None, False

    def resolve(
        self, identifiers: Sequence[Identifier], *, now: datetime | None = None
    ) -> Resolution:
        """Find or create the OneID of a message's identifiers, merging within
        limits. Raises IdentityError for an empty list."""
        if not identifiers:
            raise IdentityError("resolve needs at least one identifier")
        known = self.cached_one_id(identifiers)
        if known is not None:
            return Resolution(known, False)
        at = _iso(now)
        unique = {i.pseudonym: i for i in identifiers}.values()
        ordered = sorted(unique, key=lambda i: (self._rank_of(i.kind), i.pseudonym))
        with self._tx():
            located: list[tuple[Identifier, int | None]] = []
            relinked = 0
            for ident in ordered:
                one_id, moved = self._find(ident, at)
                relinked += moved
                located.append((ident, one_id))
            primary, created = self._primary(located, at)
            merged, conflicts = self._join(primary, located[1:], at)
        return Resolution(OneId(primary), created, tuple(merged), tuple(conflicts), relinked)

    def _primary(self, located: list[tuple[Identifier, int | None]], at: str) -> tuple[int, bool]:
        """The OneID the message belongs to: its top identifier's, else (keeping
        the OneID an anonymous visitor already has when they log in) the first
        other one the top identifier fits into, else a new one."""
        top_ident, primary = located[0]
        if primary is not None:
            return primary, False
        created = False
        for _, candidate in located[1:]:
            if (
                candidate is not None
                and self._fits(self._store.counts(candidate), {top_ident.kind: 1}) is None
            ):
                primary = candidate
                break
        else:
            primary = self._store.new_person(at)
            created = True
        self._link(top_ident, primary, at)
        return primary, created

    def _join(
        self, primary: int, rest: list[tuple[Identifier, int | None]], at: str
    ) -> tuple[list[OneId], list[Conflict]]:
        """Link or merge the other identifiers into ``primary`` within the limits."""
        # Returning people (every identifier already in the primary cluster)
        # need no counts: skip the query on the hot path.
        counts = self._store.counts(primary) if any(o != primary for _, o in rest) else {}
        merged: list[OneId] = []
        conflicts: list[Conflict] = []
        for ident, one_id in rest:
            if one_id == primary:
                continue
            if one_id is None:
                problem = self._fits(counts, {ident.kind: 1})
                if problem is None:
                    self._link(ident, primary, at)
                    counts[ident.kind] = counts.get(ident.kind, 0) + 1
                else:
                    conflicts.append(self._conflict(primary, None, ident, problem, at))
                continue
            other = self._store.counts(one_id)
            problem = self._fits(counts, other)
            if problem is None:
                self._store.merge(primary, one_id, ident.kind, ident.pseudonym, at)
                self._moved()
                for kind, n in other.items():
                    counts[kind] = counts.get(kind, 0) + n
                merged.append(OneId(one_id))
            else:
                conflicts.append(self._conflict(primary, one_id, ident, problem, at))
        return merged, conflicts

    def _conflict(
        self, one_id: int, other: int | None, ident: Identifier, problem: str, at: str
    ) -> Conflict:
        reason = f"refused: would exceed the {problem}"
        self._store.conflict(one_id, other, ident.kind, ident.pseudonym, reason, at)
        return Conflict(
            ident.kind, ident.pseudonym, reason, None if other is None else OneId(other)
        )

    def erase(self, one_id: OneId, *, now: datetime | None = None) -> int:
        """Remove the whole cluster and leave a tombstone; returns identifiers removed."""
        at = _iso(now)
        with self._tx():
            current = self.current(one_id)
            # Every OneID merged into this one, however deep: their merge causes
            # and conflicts name the person's pseudonyms too.
            n = self._store.erase(self.lineage(current), current, at)
            self._moved()
        return n
