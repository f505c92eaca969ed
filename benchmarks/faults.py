"""Fault scenarios (issue 19): is anything acknowledged lost?

Each scenario runs a real ``consentry serve`` on loopback, sends batches of 20
events from one client thread for a few seconds while the fault happens, then
waits for delivery and prints: acknowledged (200 answers), delivered (distinct
acknowledged ids found at the destination), lost, duplicates (extra copies).

- ``kill``: SIGKILL of the whole process group every ``--kill-every`` seconds,
  restarted at once (jsonl destination).
- ``outage``: the HTTP destination answers 503 for ``--outage`` seconds, then 200.
- ``disk-full``: the data dir is a 32 MB tmpfs (needs root) filled to the last
  byte for a few seconds, then freed (jsonl destination on the same tmpfs).

    .venv/bin/python benchmarks/faults.py [--seconds 12] [kill outage disk-full]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, free_port

KEY = "faults-write-key"
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}


class Serve:
    """``consentry serve`` in its own process group, restartable on one data dir."""

    def __init__(self, data_dir: Path, config: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = data_dir.parent / f"{data_dir.name}.toml"
        self.config.write_text(config)
        self.log = (data_dir.parent / f"{data_dir.name}.log").open("ab")
        self.env = {**os.environ, "CONSENTRY_WRITE_KEY": KEY, "PYTHONPATH": str(ROOT)}
        self.env.setdefault("CONSENTRY_MASTER_KEY", _master_key())
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "collector.cli", "serve", "--data-dir", str(self.data_dir)]
        cmd += ["--port", str(self.port), "--config", str(self.config), "--workers", "2"]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _master_key() -> str:
    from identity.keyring import new_master_key

    return new_master_key()


class Load:
    """One client sending batches of 20; remembers what was acknowledged."""

    def __init__(self, url: Callable[[], str]) -> None:
        self._url = url
        self.acked: list[str] = []
        self.refused = 0
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(auth=(KEY, ""), timeout=10) as client:
            while not self._stop.is_set():
                ids = [f"f-{self._n + i}" for i in range(20)]
                self._n += 20
                batch = [
                    {"type": "track", "userId": f"u{i}", "event": "E", "messageId": i}
                    | {"context": CONSENT}
                    for i in ids
                ]
                try:
                    r = client.post(self._url() + "/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    self.refused += 1
                    time.sleep(0.02)
                    continue
                if r.status_code == 200:
                    self.acked.extend(ids)
                else:
                    self.refused += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _jsonl_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["messageId"] for line in path.read_bytes().splitlines() if line]


def _report(name: str, acked: list[str], got: list[str], refused: int, extra: str = "") -> None:
    delivered = set(got) & set(acked)
    print(
        f"{name:9} acknowledged {len(acked):6}  delivered {len(delivered):6}"
        f"  lost {len(set(acked) - delivered):3}  duplicates {len(got) - len(set(got)):4}"
        f"  refused/failed requests {refused}{extra}",
        flush=True,
    )


def _wait(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.2)


JSONL = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""


def kill(root: Path, seconds: float, every: float) -> None:
    data = root / "kill"
    server = Serve(data, JSONL)
    server.start()
    kills = 0
    with Load(lambda: server.url) as load:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(every)
            server.kill()
            kills += 1
            server.start()
    out = data / "out" / "lake.jsonl"
    _wait(lambda: set(load.acked) <= set(_jsonl_ids(out)), 60)
    server.stop()
    _report("kill", load.acked, _jsonl_ids(out), load.refused, f"  ({kills} SIGKILLs)")


def outage(root: Path, seconds: float, down: float) -> None:
    state = {"status": 503}
    seen: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = state["status"]
            if status == 200:
                with lock:
                    seen.extend(m["messageId"] for m in json.loads(body)["batch"])
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = f"""
[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics"]
url = "http://127.0.0.1:{receiver.server_address[1]}/hook"
secret = "faults-secret"
backoff_base_seconds = 0.2
backoff_max_seconds = 2
"""
    data = root / "outage"
    server = Serve(data, config)
    server.start()
    with Load(lambda: server.url) as load:
        time.sleep(down)
        state["status"] = 200
        time.sleep(max(0.0, seconds - down))
    _wait(lambda: set(load.acked) <= set(seen), 60)
    server.stop()
    receiver.shutdown()
    with lock:
        got = list(seen)
    _report("outage", load.acked, got, load.refused, f"  ({down:.0f} s of 503)")


def disk_full(root: Path, seconds: float) -> None:
    if os.geteuid() != 0:
        print("disk-full NOT RUN: needs root to mount a tmpfs", flush=True)
        return
    data = root / "disk"
    data.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(data)])
    try:
        server = Serve(data, JSONL)
        server.start()
        with Load(lambda: server.url) as load:
            time.sleep(seconds / 3)
            filler = data / "filler.bin"
            with filler.open("wb", buffering=0) as fh, contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 65536)
            time.sleep(seconds / 3)
            ready = httpx.get(server.url + "/readyz", timeout=10)
            filler.unlink()
            time.sleep(seconds / 3)
        out = data / "out" / "lake.jsonl"
        _wait(lambda: set(load.acked) <= set(_jsonl_ids(out)), 60)
        wal = data / "consentry.db-wal"
        _wait(lambda: wal.stat().st_size <= 4 << 20, 20)
        server.stop()
        whole = out.read_bytes().endswith(b"\n")
        _report(
            "disk-full",
            load.acked,
            _jsonl_ids(out),
            load.refused,
            f"  (/readyz while full: {ready.status_code}; jsonl ends whole: {whole};"
            f" WAL after: {wal.stat().st_size} bytes)",
        )
    finally:
        subprocess.run(["umount", "-l", str(data)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=["kill", "outage", "disk-full"])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--kill-every", type=float, default=2.0)
    parser.add_argument("--outage", type=float, default=6.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consentry-faults-") as tmp:
        root = Path(tmp)
        for name in args.scenarios:
            if name == "kill":
                kill(root, args.seconds, args.kill_every)
            elif name == "outage":
                outage(root, args.seconds, args.outage)
            elif name == "disk-full":
                disk_full(root, args.seconds)
            else:
                parser.error(f"unknown scenario {name!r}")


if __name__ == "__main__":
    main()
