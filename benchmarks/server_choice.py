"""uvicorn or granian? The decode-only baseline app under each, same wrk load.

.venv/bin/python benchmarks/server_choice.py   (needs granian installed: pip install granian)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Proc, batches, free_port, wrk


def main() -> None:
    bodies = batches(200, 100, people=5000)
    singles = [
        json.dumps(json.loads(b)["batch"][0]).encode()
        for b in batches(1000, 1, people=5000, seed=3)
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmarks")}
    for name in ("uvicorn", "granian"):
        port = free_port()
        if name == "uvicorn":
            cmd = [sys.executable, str(ROOT / "benchmarks" / "baseline_server.py"), str(port)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "baseline_server:app",
            ]
        server = Proc(cmd, env, f"http://127.0.0.1:{port}", "/healthz")
        try:
            rb = wrk(server.url, "/v1/batch", bodies, seconds=6, connections=32)
            rs = wrk(server.url, "/v1/track", singles, seconds=6, connections=32)
        finally:
            server.stop()
        print(
            f"{name:<8} batches {rb['rps'] * 100:>9,.0f} ev/s p99 {rb['p99_us'] / 1000:5.1f} ms | "
            f"single {rs['rps']:>7,.0f} req/s p99 {rs['p99_us'] / 1000:5.1f} ms"
        )


if __name__ == "__main__":
    main()
