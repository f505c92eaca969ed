"""Slow and greedy clients over raw loopback sockets (issue 19 items 5 and 7)."""

from __future__ import annotations

import base64
import json
import re
import socket
import time

from tests.conftest import WRITE_KEY, Server, ServerFactory

LIMITS = """
[server]
max_header_bytes = 8192
header_timeout_seconds = 1.0
body_timeout_seconds = 1.0
idle_timeout_seconds = 1.0
"""
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_all(sock: socket.socket) -> tuple[bytes, float]:
    """Everything until the server closes, and how long that took."""
    started = time.monotonic()
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def _track(message_id: str) -> bytes:
    body = json.dumps({"userId": "h-1", "event": "E", "messageId": message_id}).encode()
    return (
        b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {AUTH}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_oversized_request_head_is_refused_with_431(server_factory: ServerFactory) -> None:
    server = server_factory(LIMITS).start()
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        data, took = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 431 ") and took < 5
    with _connect(server) as sock:  # the server still answers
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(sock)[0].startswith(b"HTTP/1.1 200")


def test_slow_and_idle_clients_are_cut_off_quietly(server_factory: ServerFactory) -> None:
    server = server_factory(LIMITS).start()
    socks = [_connect(server) for _ in range(3)]
    socks[0].sendall(b"POST /v1/track HTTP/1.1\r\nHost: x\r\n")  # head never finished
    socks[1].sendall(_track("slow-body")[:-10])  # body never finished
    # socks[2] sends nothing at all
    results = [_read_all(s) for s in socks]
    for s in socks:
        s.close()
    head, body, idle = results
    assert head[0].startswith(b"HTTP/1.1 408 ") and head[1] < 4
    assert body[0] == b"" and body[1] < 4  # closed, nothing acknowledged
    assert idle[0].startswith(b"HTTP/1.1 408 ") and idle[1] < 4
    # Many refused clients: a few log lines, never a traceback.
    for _ in range(30):
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            _read_all(sock)
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log
    assert log.count("431 request head over") <= 3 * 5 + 5, log[-2000:]


def test_pipelined_requests_each_get_their_answer(server_factory: ServerFactory) -> None:
    server = server_factory(LIMITS).start()
    with _connect(server) as sock:
        sock.sendall(_track("pipe-1") + _track("pipe-2") + b"NONSENSE \x00\x01 HTTP/9\r\n\r\n")
        data, _ = _read_all(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", data) == [b"200", b"200", b"400"], data[:900]
