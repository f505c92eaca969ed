"""The stores every unit of work carries, on SQLite and on PostgreSQL alike:
data subject requests and the access log, a person's facts, the operator's
outbox admin, key-rotation links, decisions, quarantine, erasures and webhook
ids; and ``open_uow``/``transaction`` as the CLI uses them."""

from __future__ import annotations

import pytest

from collector.errors import StorageError
from collector.storage.open import ClosableUnitOfWork, transaction
from collector.storage.ports import (
    AccessEntry,
    DecisionRecord,
    DeliveryOutcome,
    DestinationCount,
    UnitOfWork,
    empty_status,
    encode_decisions,
)
from tests.collector.backends import Backend, backend, pg_module_dsn

__all__ = ["backend", "pg_module_dsn"]


def entry(at: float, subject: str | None, action: str = "lookup") -> AccessEntry:
    return AccessEntry(at, "dpo", "auditor", "person.lookup", action, None, subject, "ok")


def test_the_unit_of_work_carries_every_store(backend: Backend) -> None:
    u: UnitOfWork = backend.open()  # mypy checks the protocol, for both classes
    u.ping()
    assert u.heads() == (None, 0)
    assert u.dsr.list_requests() == [] and u.outbox_admin.status(0.0) == {}
    assert u.key_links.relinked("k1") == (0, 0) and u.audit.erasures() == []


def test_dsr_requests_and_the_access_log(backend: Backend) -> None:
    u = backend.open()
    with transaction(u):
        for rid, due in (("dsr_c", 300.0), ("dsr_b", 100.0), ("dsr_a", 100.0)):
            u.dsr.save_request(
                id=rid,
                type="access",
                state="received",
                received_at=1.0,
                due_at=due,
                body=rid.encode(),
            )
        u.dsr.save_request(  # an update: state, due time and body change, nothing else
            id="dsr_c", type="erasure", state="verified", received_at=9.0, due_at=50.0, body=b"v2"
        )
    assert u.dsr.list_requests() == [b"v2", b"dsr_a", b"dsr_b"]  # earliest due, then id
    assert u.dsr.load_request("dsr_c") == b"v2" and u.dsr.load_request("nope") is None
    assert backend.rows(
        u, "SELECT type, received_at FROM dsr_requests WHERE id = ?", ["dsr_c"]
    ) == [("access", 1.0)]

    with transaction(u):
        u.dsr.log_access(entry(1.0, "7"))
        u.dsr.log_access(entry(2.0, "*", "list"))
        u.dsr.log_access(AccessEntry(3.0, "cli:ops", "admin", "erase", "erase", "dsr_a", "7", "ok"))
    log = u.dsr.access_log()
    assert [e.at for e in log] == [3.0, 2.0, 1.0]  # newest first
    assert log[0] == AccessEntry(3.0, "cli:ops", "admin", "erase", "erase", "dsr_a", "7", "ok")
    assert [e.at for e in u.dsr.access_log(subject="7")] == [3.0, 1.0]
    assert [e.at for e in u.dsr.access_log(limit=1)] == [3.0]

    with pytest.raises(RuntimeError), transaction(u):  # a failed command leaves nothing
        u.dsr.save_request(
            id="dsr_x", type="access", state="received", received_at=1.0, due_at=1.0, body=b"x"
        )
        u.dsr.log_access(entry(4.0, "8"))
        raise RuntimeError("the command failed")
    assert u.dsr.load_request("dsr_x") is None and len(u.dsr.access_log()) == 3


def test_a_persons_identifiers_and_destinations(backend: Backend) -> None:
    u = backend.open()
    with transaction(u):
        g = u.graph_store
        a, b, other = (g.new_person("2026-01-01T00:00:00+00:00") for _ in range(3))
        g.link("ps-e1", "email", "k1", a, "2026-01-02T00:00:00+00:00")
        g.link("ps-u1", "user_id", "k1", a, "2026-01-03T00:00:00+00:00")
        g.link("ps-e2", "email", "k1", b, "2026-01-04T00:00:00+00:00")
        g.link("ps-p9", "phone", "k1", other, "2026-01-05T00:00:00+00:00")
        u.outbox.insert(
            [
                ("lake", "m1", a, "GDPR", 0, "", 10.0, b"{}"),
                ("lake", "m2", b, "GDPR", 0, "", 30.0, b"{}"),
                ("Ads", "m1", a, "GDPR", 0, "", 10.0, b"{}"),
                ("lake", "m3", other, "GDPR", 0, "", 20.0, b"{}"),
            ]
        )
    lineage = [a, b]
    assert u.dsr.identifier_kinds(lineage) == [
        ("email", 2, "2026-01-02T00:00:00+00:00", "2026-01-04T00:00:00+00:00"),
        ("user_id", 1, "2026-01-03T00:00:00+00:00", "2026-01-03T00:00:00+00:00"),
    ]
    assert u.dsr.pseudonyms(lineage) == [
        ("email", "ps-e1"),
        ("email", "ps-e2"),
        ("user_id", "ps-u1"),
    ]
    # kept by triggers on the outbox; names sorted by code point on both backends
    assert u.dsr.destination_counts(lineage) == [
        DestinationCount("Ads", 1, 10.0, 10.0, "m1"),
        DestinationCount("lake", 2, 10.0, 30.0, "m2"),  # the latest of both OneIDs
    ]
    assert u.dsr.decision_totals() == [("Ads", 1), ("lake", 3)]
    assert u.dsr.identifier_kinds([]) == u.dsr.pseudonyms([]) == u.dsr.destination_counts([]) == []
    with transaction(u):  # erasure forgets the counts too
        u.graph_store.erase(lineage, a, "2026-02-01T00:00:00+00:00")
    assert u.dsr.destination_counts(lineage) == [] and u.dsr.pseudonyms(lineage) == []
    assert u.dsr.decision_totals() == [("lake", 1)]


def _queue(backend: Backend) -> ClosableUnitOfWork:
    u = backend.open()
    with transaction(u):
        u.outbox.insert(
            [
                (d, f"{d}-{i}", i + 1, "GDPR", 0, "", 1000.0, b"{}")
                for d in ("lake", "hook")
                for i in range(3)
            ]
        )
        backend.run(
            u,
            "UPDATE outbox SET dead = 1, attempts = 5, last_error = 'HTTP 500' WHERE message_id = 'hook-0'",
        )
        backend.run(
            u,
            "UPDATE outbox SET attempts = 1, last_error = 'HTTP 503', next_attempt_at = 1100 WHERE message_id = 'hook-1'",
        )
        backend.run(u, "DELETE FROM outbox WHERE message_id = 'hook-2'")
        backend.run(
            u,
            "INSERT INTO destination_backoff (destination, until, reason) VALUES ('hook', 1200, 'rate limited')",
        )
        # two lake rows are being sent: one forwarder counts them (SQLite),
        # or the replicas' leases show them (PostgreSQL)
        if backend.name == "sqlite":
            backend.run(
                u,
                "INSERT INTO forwarder_state (destination, in_flight, updated_at) VALUES ('lake', 2, 1040)",
            )
        else:
            backend.run(
                u, "UPDATE outbox SET leased_until = 1060 WHERE message_id IN ('lake-0', 'lake-1')"
            )
    return u


def test_outbox_status_and_gauges(backend: Backend) -> None:
    u = _queue(backend)
    status = u.outbox_admin.status(1050.0)
    assert status["lake"] == {
        **empty_status(),
        "pending": 3,
        "in_flight": 2,
        "oldest_age_s": 50.0,
        "next_attempt_at": "1970-01-01T00:17:30Z",
        "next_attempt_in_s": 0.0,
    }
    assert status["hook"] == {
        **empty_status(),
        "pending": 1,
        "dead": 1,
        "retrying": 1,
        "oldest_age_s": 50.0,
        "last_error": "HTTP 503",  # the newest row's
        "next_attempt_at": "1970-01-01T00:20:00Z",  # the back-off outlasts the row's own time
        "next_attempt_in_s": 150.0,
        "backoff_until": "1970-01-01T00:20:00Z",
        "backoff_reason": "rate limited",
    }
    assert u.outbox_admin.gauges(1050.0) == {"lake": (3, 0, 0.0), "hook": (1, 1, 150.0)}
    assert u.outbox_admin.due_count(1050.0) == 3 and u.outbox_admin.due_count(1100.0) == 4
    assert backend.open(readonly=True).outbox_admin.status(1050.0) == status


def test_outbox_retry_replay_and_purge(backend: Backend) -> None:
    u = _queue(backend)
    admin = u.outbox_admin
    with transaction(u):
        assert admin.retry_now("hook", 1050.0) == 1
    hook = admin.status(1050.0)["hook"]
    assert hook["backoff_until"] is None and hook["next_attempt_in_s"] == 0.0
    assert admin.due_count(1050.0) == 4
    with transaction(u):
        assert admin.replay("hook", 2000.0, 1060.0) == 0  # none created since then
        assert admin.replay("hook", None, 1060.0) == 1
    assert admin.status(1060.0)["hook"]["dead"] == 0 and admin.due_count(1060.0) == 5
    with transaction(u):
        backend.run(u, "UPDATE outbox SET dead = 1 WHERE message_id = 'hook-0'")
        assert admin.purge_dead("hook", 1070.0) == 1
        assert admin.purge_dead("lake", 1070.0) == 0
    assert admin.status(1070.0)["hook"]["dead"] == 0
    # the purge is on record for `audit why`
    assert u.audit.outcome("hook-0", "hook") == DeliveryOutcome(
        "purged", 1070.0, 0, error="HTTP 500"
    )
    assert u.audit.outcome("hook-1", "hook") == DeliveryOutcome(
        "pending", 1050.0, 1, error="HTTP 503"
    )


def test_key_links_progress_and_forgetting(backend: Backend) -> None:
    u = backend.open()
    with transaction(u):
        one = u.graph_store.new_person("2026-01-01T00:00:00+00:00")
        for i, kid in enumerate(("k1", "k1", "k1", "k2")):
            u.graph_store.link(f"ps-{i}", "email", kid, one, "2026-01-01T00:00:00+00:00")
        u.graph_store.mark_migrated("ps-0")
    assert u.key_links.relinked("k1") == (1, 3) and u.key_links.relinked("k2") == (0, 1)
    epoch = u.graph_store.epoch()
    with transaction(u):
        assert u.key_links.forget("k1") == 3
    assert u.key_links.relinked("k1") == (0, 0)
    assert u.graph_store.cluster(one) == [("email", "ps-3")]
    assert u.graph_store.epoch() == epoch + 1  # cached links elsewhere are dropped


def test_decisions_quarantine_erasures_and_webhook_ids(backend: Backend) -> None:
    u = backend.open()
    record = DecisionRecord("lake", "allowed", "GDPR", "consent", ("granted",), (1,))
    body = encode_decisions([record])
    with transaction(u):
        first = u.decisions.body_id(body)
        assert u.decisions.body_id(body) == first  # stored once
        u.decisions.insert([("m1", 1.0, first), ("m2", 2.0, first)])
        qids = [
            u.quarantine.add(
                received_at=1.0,
                expires_at=expires,
                source=source,
                reason="bad",
                path="$.userId",
                seal=lambda row_id: f"sealed-{row_id}".encode(),
            )
            for source, expires in (("api", 5.0), ("shop", 9.0), ("api", 9.0))
        ]
        u.erasures.add(one_id=3, one_ids=[3, 4], destination="lake", deleted=2, at=1.0)
        assert u.deliveries.claim("shop", "d1", 1.0)
        assert not u.deliveries.claim("shop", "d1", 2.0)
        assert u.deliveries.claim("other", "d1", 2.0)
    assert u.audit.decisions("m2") == [(2.0, record)] and u.audit.decisions("m3") == []
    rows = u.quarantine.rows(source="api")
    assert [r.id for r in rows] == [qids[0], qids[2]]
    assert rows[0].sealed == f"sealed-{qids[0]}".encode() and rows[0].path == "$.userId"
    assert [r.id for r in u.quarantine.rows(ids=[qids[1], qids[2]], limit=1)] == [qids[1]]
    with transaction(u):
        assert u.quarantine.expire(6.0) == 1
        assert u.quarantine.delete([qids[2]]) == 1 and u.quarantine.delete([]) == 0
    assert [r.id for r in u.quarantine.rows()] == [qids[1]]
    assert u.erasures.status([4]) == []
    assert u.erasures.status([3]) == [
        {
            "destination": "lake",
            "status": "pending",
            "outbox_rows_deleted": 2,
            "remote_rows_deleted": None,
            "detail": None,
        }
    ]
    [erased] = u.audit.erasures(3)
    assert (erased.destination, erased.status, erased.outbox_rows_deleted) == ("lake", "pending", 2)
    with transaction(u):
        assert u.deliveries.prune(40 * 86400.0) == 2


def test_read_only_opening(backend: Backend) -> None:
    with pytest.raises(StorageError, match=r"no database|no Consentry schema"):
        backend.open(readonly=True)
    backend.open().close()  # a read-write open creates the schema
    ro = backend.open(readonly=True)
    assert ro.dsr.list_requests() == []
    with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
        ro.dsr.log_access(entry(1.0, "7"))
