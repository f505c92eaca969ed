"""`consentry outbox`, `keys`, `dsr`, `audit`, `erase` and `quarantine` on
SQLite and on PostgreSQL (``[storage] backend``): the commands open the
configured backend (``storage.open.open_uow``, or the runtime's) and behave
the same on both."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from collector.cli import main
from collector.dsr.offline import Desk
from collector.storage.open import transaction
from identity.keyring import new_master_key
from tests.collector.backends import Backend, backend, pg_module_dsn
from tests.conftest import Server, cli

__all__ = ["backend", "pg_module_dsn"]

DESTINATIONS = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "http://127.0.0.1:9/"
"""
AT = "2026-01-01T00:00:00+00:00"


def run(backend: Backend, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """One command in this process against the backend; (exit code, stdout, stderr)."""
    path = backend.config_path(DESTINATIONS)
    code = main([*args, "--config", str(path), "--data-dir", str(backend.data_dir)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def keyed(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setenv("CONSENTRY_MASTER_KEY", new_master_key())
    assert main(["keys", "init", "--data-dir", str(backend.data_dir)]) == 0
    return backend


def test_outbox_status_replay_retry_and_purge(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    u = backend.open()
    with transaction(u):
        u.outbox.insert(
            [
                (d, f"{d}-{i}", 1, "GDPR", 0, "", 1000.0, b"{}")
                for d in ("lake", "hook")
                for i in range(2)
            ]
        )
        backend.run(
            u,
            "UPDATE outbox SET dead = 1, attempts = 3, last_error = 'HTTP 500' WHERE destination = 'hook'",
        )
        backend.run(
            u,
            "INSERT INTO destination_backoff (destination, until, reason) VALUES ('lake', 4e9, 'HTTP 429')",
        )
    code, out, _ = run(backend, capsys, "outbox", "status")
    status = json.loads(out)
    assert code == 0 and set(status) == {"lake", "hook"}
    assert (status["hook"]["dead"], status["hook"]["last_error"]) == (2, "HTTP 500")
    assert (status["lake"]["pending"], status["lake"]["backoff_reason"]) == (2, "HTTP 429")

    assert run(backend, capsys, "outbox", "retry", "lake")[1].startswith("lake: back-off lifted; 2")
    assert run(backend, capsys, "outbox", "replay", "hook", "--since", "2100-01-01")[1].startswith(
        "0 dead"
    )
    assert run(backend, capsys, "outbox", "replay", "hook")[1].startswith(
        "2 dead rows of hook queued"
    )
    backend.run(u, "UPDATE outbox SET dead = 1 WHERE message_id = 'hook-0'")
    code, _, err = run(backend, capsys, "outbox", "purge", "hook")
    assert code == 2 and "--dead" in err
    assert run(backend, capsys, "outbox", "purge", "hook", "--dead")[1].startswith("1 dead rows")
    code, _, err = run(backend, capsys, "outbox", "retry", "nope")
    assert code == 2 and "unknown destination 'nope'" in err
    status = json.loads(run(backend, capsys, "outbox", "status")[1])
    assert status["lake"]["backoff_until"] is None and status["lake"]["next_attempt_in_s"] == 0.0
    assert (status["hook"]["pending"], status["hook"]["dead"]) == (1, 0)
    assert u.audit.outcome("hook-0", "hook") is not None  # the purge is on record


def test_keys_status_and_retire_read_the_configured_database(
    keyed: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    u = keyed.open()
    with transaction(u):
        one = u.graph_store.new_person(AT)
        for i in range(3):
            u.graph_store.link(f"ps1.k1.{i}", "email", "k1", one, AT)
        u.graph_store.mark_migrated("ps1.k1.0")
    assert run(keyed, capsys, "keys", "rotate")[0] == 0
    code, out, _ = run(keyed, capsys, "keys", "status")
    assert code == 0 and "k1\tprevious" in out and "1/3 identifiers relinked, 2 not yet" in out
    code, _, err = run(keyed, capsys, "keys", "retire", "k1")
    assert code == 1 and "2 identifiers" in err
    assert u.graph_store.cluster(one) != []
    assert run(keyed, capsys, "keys", "retire", "k1", "--force")[0] == 0
    assert u.graph_store.cluster(one) == [] and u.key_links.relinked("k1") == (0, 0)


def test_an_empty_dsr_queue_says_so(keyed: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(keyed, capsys, "dsr", "list")
    assert (code, out) == (0, "") and "no data subject requests" in err


def test_dsr_from_open_to_export_and_the_access_log(
    keyed: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = keyed.config(DESTINATIONS)
    desk = Desk.open(cfg)
    try:
        [carol] = desk.identifiers({"email": "carol@example.com"})
        with transaction(desk.conn):
            one = desk.conn.graph_store.new_person(AT)
            desk.conn.graph_store.link(carol.pseudonym, "email", "k1", one, AT)
            desk.conn.outbox.insert(
                [("lake", f"m{i}", one, "GDPR", 0, "", 1000.0 + i, b"{}") for i in range(3)]
            )
    finally:
        desk.close()
    code, out, err = run(
        keyed, capsys, "dsr", "open", "--type", "access", "--email", "carol@example.com"
    )
    assert code == 0, err
    rid = out.strip()
    code, out, _ = run(keyed, capsys, "dsr", "list")
    assert rid in out and "days left" in out
    zip_path = tmp_path / "carol.zip"
    assert run(keyed, capsys, "dsr", "export", rid, "--out", str(zip_path))[0] == 1  # not verified
    assert run(keyed, capsys, "dsr", "verify", rid, "--method", "email_link")[0] == 0
    assert run(keyed, capsys, "dsr", "export", rid, "--out", str(zip_path))[0] == 0
    doc = json.loads(zipfile.ZipFile(zip_path).read("export.json"))
    person = doc["person"]
    assert person["one_id"] == one and person["identifiers"][0]["kind"] == "email"
    assert [(d["name"], d["events"]) for d in person["destinations"]] == [("lake", 3), ("hook", 0)]
    assert b"carol@example.com" not in zip_path.read_bytes()
    assert run(keyed, capsys, "dsr", "complete", rid)[0] == 0
    shown = json.loads(run(keyed, capsys, "dsr", "show", rid)[1])
    assert shown["state"] == "completed" and shown["verification"] == "email_link"
    nobody = run(keyed, capsys, "dsr", "open", "--type", "erasure", "--email", "dan@example.com")
    assert nobody[0] == 0 and "no person is known" in nobody[2]
    code, _, err = run(keyed, capsys, "dsr", "complete", nobody[1].strip())
    assert code == 2 and "through the server" in err

    log = keyed.open().dsr.access_log()
    assert [e.action for e in reversed(log)] == [
        "open request",
        "list requests",
        "verify",
        "export",
        "complete",
        "show",
        "open request",
    ]
    assert {e.principal.split(":")[0] for e in log} == {"cli"}
    assert log[-1].subject == str(one) and log[0].outcome == "not found"
    code, out, _ = run(keyed, capsys, "dsr", "lookup", "--email", "carol@example.com")
    assert code == 0 and json.loads(out)["one_id"] == one
    assert run(keyed, capsys, "dsr", "lookup", "--email", "dan@example.com")[0] == 1
    assert [e.action for e in keyed.open().dsr.access_log(limit=2)] == ["lookup", "lookup"]
    # an auditor's export by raw identifier resolves through the same desk
    code, out, err = run(keyed, capsys, "audit", "export", "--subject", "carol@example.com")
    assert code == 0, err
    assert run(keyed, capsys, "audit", "export", "--subject", "dan@example.com")[0] == 1
    assert run(keyed, capsys, "audit", "verify")[1].startswith("OK: 0 records")


def test_erase_and_quarantine_commands_after_serving(backend: Backend, tmp_path: Path) -> None:
    server = Server(backend.data_dir, backend.toml, env=backend.env).start()  # the "lake" only
    consented = {"consent": {"categoryPreferences": {"analytics": True}}}
    carol = {"type": "identify", "userId": "c-1", "traits": {"email": "carol@example.com"}}
    broken = {"type": "track", "event": "E", "userId": True}  # kept, encrypted, for a replay
    batch = [{**carol, "context": consented}, broken]
    assert server.post("/v1/batch", {"batch": batch}).status_code == 200
    server.stop()

    listed = cli(server, "quarantine", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [kept] = json.loads(listed.stdout)
    assert kept["path"] == "$.batch[1].userId"
    held = cli(server, "quarantine", "replay")
    assert held.returncode == 1 and "0 replayed, 1 still held" in held.stdout

    erased = cli(server, "erase", "--email", "carol@example.com")
    assert erased.returncode == 0, erased.stderr
    summary = json.loads(erased.stdout)
    assert summary["erased"] is True and "carol" not in erased.stdout
    [person] = summary["people"]
    again = cli(server, "erase", "--email", "carol@example.com", "--user-id", "c-1")
    assert again.returncode == 1 and json.loads(again.stdout)["erased"] is False
    assert cli(server, "erase").returncode == 2
    gone = cli(server, "audit", "export", "--subject", "carol@example.com")
    assert gone.returncode == 1 and "no person is known" in gone.stderr

    u = backend.open(readonly=True)
    assert [(e.action, e.subject, e.outcome) for e in u.dsr.access_log()] == [
        ("erase", None, "not found"),
        ("erase", str(person["one_id"]), "erased"),
    ]
    [receipt] = [e for e in u.audit.erasures() if e.destination == "lake"]
    assert receipt.one_id == person["one_id"] and receipt.status == "pending"
