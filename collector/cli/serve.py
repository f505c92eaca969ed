"""`consentry serve` (the HTTP collector and its forwarder) and
`consentry forward` (the forwarder alone)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from collector.cli.common import add_common, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="run the collector (and its forwarder)")
    add_common(s)
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
    add_common(f)
    f.add_argument("--once", action="store_true", help="stop when nothing is due")
    f.set_defaults(fn=cmd_forward)


def cmd_serve(args: argparse.Namespace) -> int:
    cfg = load(args)
    workers = args.workers if args.workers is not None else cfg.server.workers
    # Auto: one per core, at most 8; all of them share one write lock, and more
    # than that was never measured.
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1:
        _metrics_dir(cfg.data_dir)

    import uvicorn

    from collector.http.app import create_app
    from collector.http.server import Limits, protocol_class
    from collector.runtime import Runtime, tune_gc, validate
    from collector.workers import run_workers

    validate(cfg)  # before anything is opened or created; `consentry config` runs the same
    runtime = Runtime(cfg)
    forward = cfg.server.forward and not args.no_forward
    if forward:
        try:
            _check_destinations(runtime)
        except BaseException:
            runtime.close()
            raise
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
                http=protocol_class(
                    Limits(
                        max_header_bytes=cfg.server.max_header_bytes,
                        header_timeout_seconds=cfg.server.header_timeout_seconds,
                        body_timeout_seconds=cfg.server.body_timeout_seconds,
                    )
                ),
                timeout_keep_alive=int(max(1, cfg.server.idle_timeout_seconds)),
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


def _check_destinations(runtime: Any) -> None:
    """Build (and close) every destination once before listening, so a
    destination that cannot be set up (a secret's variable unset) stops
    start-up with a ``ConfigError`` naming it, instead of failing each worker."""
    from collector.runtime import build_destination

    async def build_and_close() -> None:
        for dest in runtime.destinations:
            await build_destination(dest, runtime.data_dir).close()

    asyncio.run(build_and_close())


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

    cfg = load(args)
    runtime = Runtime(cfg)

    async def pending() -> int:
        now = time.time()
        return await runtime.writer.run(lambda uow: uow.outbox.due_count(now))

    async def main() -> None:
        forwarder = runtime.make_forwarder()
        await forwarder.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.once:
            while await pending():
                await asyncio.sleep(0.1)
        else:
            await stop.wait()
        await forwarder.stop()

    try:
        asyncio.run(main())
    finally:
        runtime.close()
    return 0
