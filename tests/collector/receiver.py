"""A real HTTP receiver on loopback whose answers a test can change."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        # A body containing this is answered 400 (a message the receiver refuses).
        self.reject: bytes | None = None
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.monotonic() at each request's arrival
        self.statuses: list[int] = []  # the status each request was answered with
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.times.append(time.monotonic())
                    status = receiver.status
                    if receiver.reject is not None and receiver.reject in body:
                        status = 400
                    receiver.statuses.append(status)
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(status)
                for k, v in receiver.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def messages(self, only_ok: bool = True) -> list[dict[str, Any]]:
        """Messages of the batches received (only those answered 2xx by default)."""
        with self.lock:
            bodies = [
                b
                for (_, b), status in zip(self.requests, self.statuses, strict=True)
                if not only_ok or status < 300
            ]
        out: list[dict[str, Any]] = []
        for body in bodies:
            out.extend(json.loads(body)["batch"])
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
