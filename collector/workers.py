"""Several worker processes behind one port.

Python runs one core per process, so `consentry serve` forks one worker per
core. Each worker binds its own listening socket with SO_REUSEPORT and the
kernel spreads connections over them; all workers share the SQLite database
(WAL), take turns at the write lock (see Writer) and keep their caches honest
with Ledger.sync and Graph.sync. The parent only supervises: it holds the
port, forwards SIGTERM/SIGINT and restarts a worker that dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("consentry.collector")
_PR_SET_PDEATHSIG = 1


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _die_with_parent() -> None:
    """A worker must not outlive a supervisor that was killed (kill -9, OOM):
    it would keep the port and the database busy with nobody to stop it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's signals still stop it
        pass


def run_workers(
    count: int, host: str, port: int, start_worker: Callable[[int, socket.socket], None]
) -> int:
    """Fork ``count`` workers; ``start_worker(index, listening_socket)`` runs the
    server in each and returns when it stops. Returns when all have stopped."""
    # Bound but never listening: it keeps the port ours and gets no connections.
    guard = listen_socket(host, port)
    port = guard.getsockname()[1]
    children: dict[int, int] = {}
    parent = os.getpid()
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _die_with_parent()
                if os.getppid() != parent:
                    os._exit(1)
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, signal.SIG_DFL)
                guard.close()
                sock = listen_socket(host, port)
                sock.listen(2048)
                start_worker(index, sock)
                code = 0
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(count):
        spawn(index)
    started = {index: time.monotonic() for index in range(count)}
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index = children.pop(pid)
        if stopping:
            continue
        code = os.waitstatus_to_exitcode(status)
        log.error("worker %d exited (%s); starting a new one", index, code)
        # A worker that dies at once would otherwise be restarted in a tight loop.
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started[index])))
        started[index] = time.monotonic()
        spawn(index)
    guard.close()
    return 0
