"""Shared fixtures: a real `consentry serve` subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest

from identity.keyring import new_master_key
from tests.browser import chromium  # noqa: F401  (fixture shared by browser tests)

WRITE_KEY = "test-write-key"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self,
        data_dir: Path,
        config: str | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.args = list(args or [])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = data_dir.parent / f"{data_dir.name}.toml"
            self.config_path.write_text(config)
        self.env = {
            **os.environ,
            "CONSENTRY_WRITE_KEY": WRITE_KEY,
            "CONSENTRY_MASTER_KEY": new_master_key(),
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "collector.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + self.args

    def start(self, timeout: float = 20.0) -> Server:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, path: str, body: object, **kwargs: object) -> httpx.Response:
        return httpx.post(self.url + path, json=body, auth=(WRITE_KEY, ""), timeout=30, **kwargs)  # type: ignore[arg-type]


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """A `consentry` subcommand against the server's data directory (and its
    configuration file, if it has one); output captured as text."""
    cmd = [sys.executable, "-m", "collector.cli", *args, "--data-dir", str(server.data_dir)]
    if server.config_path is not None:
        cmd += ["--config", str(server.config_path)]
    return subprocess.run(cmd, capture_output=True, text=True, env=server.env, timeout=60)


def read_jsonl(directory: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not directory.exists():
        return out
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def wait_for(predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy or ``timeout``
    seconds (monotonic) pass; returns its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class ServerFactory(Protocol):
    """The ``server_factory`` fixture: a not-yet-started server per call."""

    def __call__(
        self,
        config: str | None = None,
        name: str = "data",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> Server: ...


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    servers: list[Server] = []

    def make(
        config: str | None = None,
        name: str = "data",
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> Server:
        server = Server(tmp_path / name, config, env, args)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> Server:
    return server_factory().start()
