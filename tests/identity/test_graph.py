from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.postgres.connection import connect
from collector.storage.postgres.graph import PostgresGraphStore
from collector.storage.sqlite.connection import open_database
from identity import Graph, Identifier, Keyring, Pseudonymizer
from identity.graph import GraphStore
from tests.collector.pg import pg_dsn

ring = Keyring.generate()
ps = Pseudonymizer(ring)
__all__ = ["pg_dsn"]  # the fixture graph_store uses on PostgreSQL


@pytest.fixture(params=["sqlite", "postgres"])
def graph_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """The graph's store on both backends (issue 18): a SQLite file, and a fresh
    PostgreSQL database at CONSENTRY_TEST_PG_DSN (skipped, loudly, without it)."""
    if request.param == "sqlite":
        yield open_database(tmp_path / "g.db").graph_store
        return
    dsn = request.getfixturevalue("pg_dsn")
    conn = connect(dsn, upgrade=True)
    yield PostgresGraphStore(conn)
    conn.close()


def ident(kind: str, value: str) -> Identifier:
    if kind == "email" and "@" not in value:
        value = f"{value}@example.com"
    return Identifier(kind, ps.pseudonym(kind, value))


def test_anonymous_visitor_keeps_one_id_when_logging_in(graph_store: GraphStore) -> None:
    g = Graph(graph_store)
    first = g.resolve([ident("anonymous_id", "anon-1")])
    second = g.resolve([ident("user_id", "u1"), ident("anonymous_id", "anon-1")])
    assert second.one_id == first.one_id and not second.created
    assert {k for k, _ in g.cluster(first.one_id)} == {"anonymous_id", "user_id"}


def test_two_users_never_merge_through_a_shared_device(graph_store: GraphStore) -> None:
    g = Graph(graph_store)
    alice = g.resolve([ident("user_id", "alice"), ident("device_id", "ipad-1")]).one_id
    bob = g.resolve([ident("user_id", "bob"), ident("device_id", "ipad-1")])
    assert bob.one_id != alice
    assert bob.conflicts and "user_id limit" in bob.conflicts[0].reason
    assert g.conflicts(alice)  # the refused merge is recorded and visible


def test_merge_of_two_clusters_is_recorded(graph_store: GraphStore) -> None:
    g = Graph(graph_store)
    a = g.resolve([ident("anonymous_id", "a")]).one_id
    b = g.resolve([ident("email", "x@y.co")]).one_id
    r = g.resolve([ident("email", "x@y.co"), ident("anonymous_id", "a")])
    assert r.one_id == b and r.merged == (a,)
    [merge] = g.merge_history(b)
    assert merge.absorbed == a and merge.cause_kind == "anonymous_id"
    assert g.current(a) == b


def test_erase_removes_cluster_and_leaves_tombstone(graph_store: GraphStore) -> None:
    g = Graph(graph_store)
    one = g.resolve([ident("user_id", "gone"), ident("email", "gone@x.co")]).one_id
    assert g.erase(one) == 2
    assert g.cluster(one) == [] and g.is_erased(one)
    again = g.resolve([ident("user_id", "gone")])
    assert again.created and again.one_id != one


def test_rotation_relinks_under_the_new_key(graph_store: GraphStore) -> None:
    ring2 = Keyring.generate()
    p = Pseudonymizer(ring2)
    g = Graph(graph_store)
    before = g.resolve([Identifier("user_id", p.pseudonym("user_id", "returning"))]).one_id
    ring2.rotate()
    p2 = Pseudonymizer(ring2)
    versions = p2.all_versions("user_id", "returning")
    assert versions[0].split(".")[1] == "k2" and versions[1].split(".")[1] == "k1"
    assert g.unmigrated("k1") == 1
    after = g.resolve([Identifier("user_id", versions[0], tuple(versions[1:]))])
    assert after.one_id == before and after.relinked == 1
    assert g.unmigrated("k1") == 0


# -- properties ------------------------------------------------------------------
people = st.integers(min_value=0, max_value=5)
msg = st.lists(
    st.tuples(
        st.sampled_from(["user_id", "email", "anonymous_id", "device_id"]), st.integers(0, 7)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(msg, min_size=1, max_size=12))
def test_limits_are_never_exceeded(messages: list[list[tuple[str, int]]]) -> None:
    g = Graph(open_database(":memory:").graph_store)
    for m in messages:
        g.resolve([ident(k, f"{k}-{v}") for k, v in m])
    rows = g.store.conn.execute(  # type: ignore[attr-defined]
        "SELECT one_id, kind, count(*) FROM id_links GROUP BY one_id, kind"
    ).fetchall()
    for _, kind, n in rows:
        limit = g.limit(kind)
        assert limit is None or n <= limit


def _partition(g: Graph, all_ids: list[Identifier]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = {}
    for i in all_ids:
        one = g.lookup(i.pseudonym)
        assert one is not None
        groups.setdefault(one, set()).add(i.pseudonym)
    return {frozenset(v) for v in groups.values()}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["email", "anonymous_id"]), st.integers(0, 5)),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_resolution_is_order_independent_without_conflicts(messages, rnd) -> None:
    limits = {"email": 100}
    idents = [[ident(k, f"{k}-{v}") for k, v in m] for m in messages]
    flat = list({i.pseudonym: i for i in itertools.chain.from_iterable(idents)}.values())
    g1 = Graph(open_database(":memory:").graph_store, limits=limits)
    for m in idents:
        g1.resolve(m)
    shuffled = list(idents)
    rnd.shuffle(shuffled)
    g2 = Graph(open_database(":memory:").graph_store, limits=limits)
    for m in shuffled:
        g2.resolve(list(reversed(m)))
    assert _partition(g1, flat) == _partition(g2, flat)


@settings(max_examples=40, deadline=None)
@given(st.lists(msg, min_size=1, max_size=8), st.integers(0, 7))
def test_erase_leaves_nothing(messages: list[list[tuple[str, int]]], pick: int) -> None:
    g = Graph(open_database(":memory:").graph_store)
    ones = [g.resolve([ident(k, f"{k}-{v}") for k, v in m]).one_id for m in messages]
    target = g.current(ones[pick % len(ones)])
    members = [p for _, p in g.cluster(target)]
    g.erase(target)
    assert g.cluster(target) == []
    assert all(g.lookup(p) is None for p in members)
    assert not g.merge_history(target)
