"""``consentry``: a thin command line over the library.

Every subcommand takes ``--config FILE`` and ``--data-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from collector import config as config_mod
from collector import store
from collector.errors import CollectorError
from consent.errors import ConsentError
from identity.errors import IdentityError

log = logging.getLogger("consentry.cli")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file (every section optional)")
    p.add_argument("--data-dir", help="data directory (overrides [storage] data_dir)")


def _load(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, data_dir=args.data_dir)


def _fail(message: str, code: int = 2) -> int:
    print(f"consentry: {message}", file=sys.stderr)
    return code


# -- serve / forward -----------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    cfg = _load(args)
    workers = args.workers if args.workers is not None else cfg.server.workers
    # Auto: one per core, at most 8; all of them share one write lock, and more
    # than that was never measured.
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1:
        _metrics_dir(cfg.data_dir)

    import uvicorn

    from collector.app import create_app
    from collector.runtime import Runtime, tune_gc
    from collector.workers import run_workers

    runtime = Runtime(cfg)
    for name, key in runtime.sources.generated.items():
        print(
            f"Generated write key for source {name!r} (shown once, only its hash is kept): {key}",
            flush=True,
        )
    if runtime.keyring_created:
        print(f"Created keyring {cfg.keyring_path()} (mode 0600)", flush=True)
    if "CONSENTRY_MASTER_KEY" not in os.environ and cfg.master_key_path().parent == cfg.data_dir:
        print(
            f"Note: the master key is in {cfg.master_key_path()}, beside the data. In production set"
            " CONSENTRY_MASTER_KEY or [keys] master_key_file outside the data directory.",
            flush=True,
        )
    host = args.host or cfg.server.host
    port = args.port if args.port is not None else cfg.server.port
    forward = cfg.server.forward and not args.no_forward

    def serve(rt: Runtime, *, deliver: bool = True, sockets: list[Any] | None = None) -> None:
        tune_gc()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(rt, forward=forward, deliver=deliver),
                host=host,
                port=port,
                log_level="warning",
                access_log=cfg.server.access_log,
                lifespan="on",
            )
        )
        server.run(sockets=sockets)

    print(
        f"consentry listening on http://{host}:{port} (data in {cfg.data_dir};"
        f" {workers} worker{'s' if workers > 1 else ''})",
        flush=True,
    )
    # Each retake of the GIL by the writer thread (after every SQLite call) waits
    # out the switch interval while the event loop is busy, and the writer holds
    # the write lock that all workers share: keep that wait short (measured:
    # 0.1-1 ms all beat the 5 ms default; see benchmarks/ingest.py).
    sys.setswitchinterval(0.0005)
    if workers == 1:
        try:
            serve(runtime)
        finally:
            runtime.close()
        return 0
    # The parent set up the data directory; workers open their own connections.
    runtime.close()

    def worker(index: int, sock: Any) -> None:
        rt = Runtime(cfg, worker=index)
        try:
            # One deliverer, so one process reads each outbox.
            serve(rt, deliver=index == 0, sockets=[sock])
        finally:
            rt.close()

    return run_workers(workers, host, port, worker)


def _metrics_dir(data_dir: Path) -> None:
    """Counters of all workers in one /metrics: prometheus_client's multiprocess
    mode reads this variable when it is first imported, so set it before that."""
    import shutil

    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
    path = data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    if "prometheus_client" in sys.modules:
        from prometheus_client import values

        values.ValueClass = values.get_value_class()


def cmd_forward(args: argparse.Namespace) -> int:
    from collector.runtime import Runtime

    cfg = _load(args)
    runtime = Runtime(cfg)

    async def main() -> None:
        forwarder = runtime.make_forwarder()
        await forwarder.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.once:
            while await _pending(runtime):
                await asyncio.sleep(0.1)
        else:
            await stop.wait()
        await forwarder.stop()

    try:
        asyncio.run(main())
    finally:
        runtime.close()
    return 0


async def _pending(runtime: object) -> int:
    from collector.runtime import Runtime

    assert isinstance(runtime, Runtime)
    now = time.time()
    return await runtime.writer.run(
        lambda c: c.execute(
            "SELECT count(*) FROM outbox WHERE dead = 0 AND next_attempt_at <= ?", (now,)
        ).fetchone()[0]
    )


# -- keys ------------------------------------------------------------------------
def cmd_keys(args: argparse.Namespace) -> int:
    from collector.runtime import DB_NAME, open_keyring
    from identity.graph import forget_kid, relink_progress

    cfg = _load(args)
    if args.keys_cmd == "init":
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        ring, _, created = open_keyring(cfg, create=True)
        print(
            ("Created" if created else "Keyring already exists at")
            + f" {cfg.keyring_path()}; active key {ring.active_kid}"
        )
        return 0
    ring, master, _ = open_keyring(cfg, create=False)
    db = cfg.data_dir / DB_NAME
    conn = sqlite3.connect(db) if db.exists() else None

    def relinked(kid: str) -> tuple[int, int]:
        return (0, 0) if conn is None else relink_progress(conn, kid)

    if args.keys_cmd == "status":
        for v in ring.versions:
            extra = ""
            if v.state == "previous":
                done, total = relinked(v.kid)
                extra = f", {done}/{total} identifiers relinked, {total - done} not yet"
            print(f"{v.kid}\t{v.state}\tcreated {v.created.isoformat()}{extra}")
        return 0
    if args.keys_cmd == "migrate":
        return _migrate_progress(ring.lookup_kids()[1:], relinked, watch=args.watch)
    if args.keys_cmd == "rotate":
        kid = ring.rotate()
        ring.save(cfg.keyring_path(), master)
        print(
            f"Active key is now {kid}; previous keys are still looked up. Restart `consentry serve` to use it."
        )
        return 0
    if args.keys_cmd == "retire":
        done, total = relinked(args.kid)
        left = total - done
        if left and not args.force:
            return _fail(
                f"key {args.kid} still has {left} identifiers linked only under it; they would start new"
                " OneIDs when seen again. Wait for them to return, or pass --force.",
                1,
            )
        ring.retire(args.kid)
        ring.save(cfg.keyring_path(), master)
        if conn is not None:
            with conn:
                forget_kid(conn, args.kid)
        print(
            f"Key {args.kid} retired; its material was destroyed ({left} identifiers left unmigrated)"
        )
        return 0
    return _fail("unknown keys command")


def _migrate_progress(kids: Sequence[str], relinked: Any, *, watch: float | None) -> int:
    """Rotation relinks lazily: an identifier moves to the new key when it is seen
    again (its raw value is never stored, so nothing else can move it). This shows
    that progress, resumably, from the database."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if not kids:
        print("no previous key is being migrated")
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as progress:
        tasks = {}
        for kid in kids:
            done, total = relinked(kid)
            tasks[kid] = progress.add_task(f"relinking {kid}", total=max(total, 1), completed=done)
        while watch:
            time.sleep(watch)
            finished = True
            for kid in kids:
                done, total = relinked(kid)
                progress.update(tasks[kid], total=max(total, 1), completed=done)
                finished = finished and done >= total
            if finished:
                break
    return 0


# -- audit -----------------------------------------------------------------------
def _db(cfg: config_mod.Config) -> sqlite3.Connection:
    from collector.runtime import DB_NAME

    path = cfg.data_dir / DB_NAME
    if not path.exists():
        raise CollectorError(f"no database at {path}; is --data-dir right?")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def cmd_audit(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from consent.ledger import read_records, verify
    from identity.graph import one_id_of

    cfg = _load(args)
    if args.audit_cmd == "pubkey":
        from collector.runtime import open_keyring

        ring, _, _ = open_keyring(cfg, create=False)
        sys.stdout.write(ring.signing_public_pem().decode())
        return 0
    conn = _db(cfg)
    if args.audit_cmd == "verify":
        key = None
        if args.pubkey:
            loaded = serialization.load_pem_public_key(Path(args.pubkey).read_bytes())
            if not isinstance(loaded, Ed25519PublicKey):
                return _fail("--pubkey must be an Ed25519 public key in PEM")
            key = loaded
        anchor = None
        if args.anchor:
            seq_text, _, hex_hash = args.anchor.partition(":")
            try:
                anchor = (int(seq_text), bytes.fromhex(hex_hash))
            except ValueError:
                return _fail("--anchor must be SEQ:HEX as printed by an earlier verify")
        result = verify(conn, key, anchor=anchor)
        if result.ok:
            cp = result.last_checkpoint
            print(
                f"OK: {result.records} records; last checkpoint "
                + (
                    f"at record {cp.seq} signed {cp.signed_at} (anchor {cp.seq}:{cp.hash.hex()})"
                    if cp
                    else "none yet"
                )
                + f"; {result.unsealed} records after it"
            )
            return 0
        print(f"FAILED at record {result.first_bad_seq}: {result.problem}", file=sys.stderr)
        return 1
    if args.audit_cmd == "export":
        since = datetime.fromisoformat(args.since) if args.since else None
        until = datetime.fromisoformat(args.until) if args.until else None
        one_id = None
        if args.subject:
            linked = one_id_of(conn, args.subject)
            one_id = (
                int(args.subject) if args.subject.isdigit() else (-1 if linked is None else linked)
            )
        records = list(read_records(conn, since=_aware(since), until=_aware(until), one_id=one_id))
        if args.format == "json":
            sys.stdout.write(msgspec.json.encode(records).decode() + "\n")
        else:
            writer = csv.writer(sys.stdout)
            writer.writerow(
                [
                    "seq",
                    "action",
                    "one_id",
                    "subject",
                    "jurisdiction",
                    "legal_basis",
                    "purposes",
                    "method",
                    "consenter",
                    "notice_id",
                    "notice_version",
                    "given_at",
                    "received_at",
                ]
            )
            for r in records:
                writer.writerow(
                    [
                        r.seq,
                        r.action,
                        r.one_id,
                        r.subject,
                        r.jurisdiction,
                        r.legal_basis,
                        json.dumps(r.purposes, sort_keys=True),
                        r.method,
                        r.consenter,
                        r.notice_id,
                        r.notice_version,
                        r.given_at.isoformat(),
                        r.received_at.isoformat(),
                    ]
                )
        return 0
    if args.audit_cmd == "why":
        found = [
            (at, d)
            for at, d in store.decisions_for(conn, args.message_id)
            if d.destination == args.destination
        ]
        if not found:
            return _fail(
                f"no decision recorded for message {args.message_id} and destination"
                f" {args.destination}",
                1,
            )
        for at, d in found:
            print(
                f"{args.message_id} -> {args.destination}: {d.outcome.upper()} under {d.jurisdiction}"
                f" (legal basis: {d.legal_basis}) at {datetime.fromtimestamp(at, UTC).isoformat()}"
            )
            for reason in d.reasons:
                print(f"  - {reason}")
            for record in read_records(conn, seqs=list(d.record_ids)):
                print(
                    f"  record {record.seq}: {record.action} {json.dumps(record.purposes, sort_keys=True)}"
                    f" by {record.method} ({record.consenter}) notice {record.notice_id or '-'}"
                    f"@{record.notice_version or '-'} given {record.given_at.isoformat()}"
                )
        return 0
    return _fail("unknown audit command")


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- outbox ----------------------------------------------------------------------
def cmd_outbox(args: argparse.Namespace) -> int:
    from collector.runtime import DB_NAME
    from collector.writer import connect

    cfg = _load(args)
    conn = connect(cfg.data_dir / DB_NAME)
    now = time.time()
    if args.outbox_cmd == "status":
        status = store.status(conn, now)
        for dest in cfg.effective_destinations():
            status.setdefault(dest.name, store.empty_status())
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    if args.outbox_cmd == "replay":
        since = datetime.fromisoformat(args.since).timestamp() if args.since else None
        conn.execute("BEGIN IMMEDIATE")
        n = store.replay(conn, args.destination, since, now)
        conn.execute("COMMIT")
        print(f"{n} dead rows of {args.destination} queued again")
        return 0
    if args.outbox_cmd == "purge":
        if not args.dead:
            return _fail("purge only removes dead letters; pass --dead to confirm")
        conn.execute("BEGIN IMMEDIATE")
        n = store.purge_dead(conn, args.destination)
        conn.execute("COMMIT")
        print(f"{n} dead rows of {args.destination} deleted")
        return 0
    return _fail("unknown outbox command")


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(msgspec.json.format(msgspec.json.encode(cfg)).decode())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="consentry", description="Privacy-first first-party event collector"
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the collector (and its forwarder)")
    _common(s)
    s.add_argument("--host", help="listen address (default from [server] or 127.0.0.1)")
    s.add_argument("--port", type=int, help="listen port (default from [server] or 8787)")
    s.add_argument(
        "--workers",
        type=int,
        help="worker processes (default from [server]; 0 = one per CPU core, at most 8)",
    )
    s.add_argument(
        "--no-forward", action="store_true", help="only ingest; run `consentry forward` elsewhere"
    )
    s.set_defaults(fn=cmd_serve)

    f = sub.add_parser("forward", help="deliver the outboxes without serving HTTP")
    _common(f)
    f.add_argument("--once", action="store_true", help="stop when nothing is due")
    f.set_defaults(fn=cmd_forward)

    k = sub.add_parser("keys", help="pseudonym keyring: init, status, rotate, retire")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    for name, text in (
        ("init", "create the master key and keyring"),
        ("status", "list key versions"),
        ("rotate", "make a new active key; the old one stays for lookups"),
    ):
        _common(ks.add_parser(name, help=text))
    m = ks.add_parser("migrate", help="show relinking progress of previous keys (resumable)")
    _common(m)
    m.add_argument("--watch", type=float, help="refresh every N seconds until done")
    r = ks.add_parser("retire", help="destroy a previous key's material")
    _common(r)
    r.add_argument("kid", help="key id, e.g. k1")
    r.add_argument("--force", action="store_true", help="retire even if identifiers are unmigrated")
    k.set_defaults(fn=cmd_keys)

    a = sub.add_parser("audit", help="verify and export the consent ledger")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    v = asub.add_parser("verify", help="check the hash chain and signed checkpoints")
    _common(v)
    v.add_argument("--pubkey", help="Ed25519 public key (PEM) to verify checkpoints against")
    v.add_argument(
        "--anchor", help="SEQ:HEX from an earlier verify; fails if the ledger was cut short"
    )
    e = asub.add_parser("export", help="export consent records")
    _common(e)
    e.add_argument("--from", dest="since", help="ISO time (inclusive)")
    e.add_argument("--to", dest="until", help="ISO time (inclusive)")
    e.add_argument("--subject", help="OneID or internal pseudonym")
    e.add_argument("--format", choices=["csv", "json"], default="csv", help="output format")
    w = asub.add_parser("why", help="why a message was or was not forwarded to a destination")
    _common(w)
    w.add_argument("message_id", help="the message's messageId")
    w.add_argument("destination", help="destination name")
    pk = asub.add_parser("pubkey", help="print the ledger's public key (PEM)")
    _common(pk)
    a.set_defaults(fn=cmd_audit)

    o = sub.add_parser("outbox", help="inspect and manage delivery queues")
    osub = o.add_subparsers(dest="outbox_cmd", required=True)
    _common(
        osub.add_parser("status", help="pending, dead, oldest age and last error per destination")
    )
    rp = osub.add_parser("replay", help="queue dead letters again")
    _common(rp)
    rp.add_argument("destination", help="destination name")
    rp.add_argument("--since", help="only rows created at or after this ISO time")
    pg = osub.add_parser("purge", help="delete dead letters")
    _common(pg)
    pg.add_argument("destination", help="destination name")
    pg.add_argument("--dead", action="store_true", help="confirm: delete the dead letters")
    o.set_defaults(fn=cmd_outbox)

    c = sub.add_parser("config", help="validate a configuration and print it with defaults")
    _common(c)
    c.set_defaults(fn=cmd_check_config)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (CollectorError, IdentityError, ConsentError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
