"""Hostile conditions (issue 19): fault injection with real kernels, files and sockets.

Each test is bounded in time and uses loopback only. Short writes come from a
real file-size limit (``RLIMIT_FSIZE``) in a child process: the kernel then
writes what fits and fails the rest, exactly as a full disk does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# A child that sends batches to a jsonl destination under a file-size limit, then
# without it, and prints each SendResult as a JSON line.
_SHORT_WRITE = r"""
import asyncio, json, resource, signal, sys
from pathlib import Path
from collector.config import JsonlDestinationConfig
from collector.delivery.destinations.jsonl import JsonlDestination

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
out, limit, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
dest = JsonlDestination(JsonlDestinationConfig(name="lake", path=str(out)), data_dir=out)
batch = [json.dumps({"messageId": f"m{i}", "pad": "x" * 200}).encode() for i in range(count)]

async def main() -> None:
    for cap in (limit, resource.RLIM_INFINITY):
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))
        r = await dest.send(batch)
        print(json.dumps({"ok": r.ok, "retryable": r.retryable, "error": r.error}), flush=True)

asyncio.run(main())
"""


def _short_write_run(out: Path, limit: int, count: int) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", _SHORT_WRITE, str(out), str(limit), str(count)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "file ends in a partial line"
    return [json.loads(line)["messageId"] for line in data.decode().splitlines()]


def test_jsonl_short_write_is_all_or_nothing_and_retryable(tmp_path: Path) -> None:
    """Item 1: a write cut short by the kernel is never reported as delivered,
    leaves no partial line, and succeeds whole when retried."""
    out = tmp_path / "out"
    out.mkdir()
    before = [json.dumps({"messageId": f"old{i}"}) for i in range(3)]
    (out / "lake.jsonl").write_text("".join(line + "\n" for line in before))
    size = (out / "lake.jsonl").stat().st_size
    # Room for about two and a half of the twenty new lines.
    first, second = _short_write_run(out, size + 550, 20)
    assert first["ok"] is False and first["retryable"] is True, first
    assert "File too large" in str(first["error"])
    assert second["ok"] is True, second
    assert _lines(out / "lake.jsonl") == [f"old{i}" for i in range(3)] + [
        f"m{i}" for i in range(20)
    ]


def test_jsonl_partial_line_left_by_a_crash_is_cut_before_the_next_append(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "lake.jsonl").write_bytes(b'{"messageId": "whole"}\n{"messageId": "cut sh')
    first, second = _short_write_run(out, 10**9, 2)
    assert first["ok"] is True and second["ok"] is True
    assert _lines(out / "lake.jsonl") == ["whole", "m0", "m1", "m0", "m1"]
