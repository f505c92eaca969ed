"""Helpers shared by the benchmarks: servers on loopback, wrk runs, CPU readings."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
WRITE_KEY = "bench-write-key"
LUA = r"""
local bodies = {}
local path = os.getenv("BENCH_BODIES")
for line in io.lines(path) do bodies[#bodies + 1] = line end
local i = 0
local counter = 0
setup = function(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
init = function(args)
  -- each wrk thread starts at its own offset, so threads do not send the same bodies
  i = (tid or 0) * math.floor(#bodies / 2)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  -- uniform in [0, 2 x pause]: the same mean rate, without the connections
  -- firing in lock-step bursts
  delay = function() return math.random(0, 2 * pause) end
end
local unique = os.getenv("BENCH_UNIQUE_IDS") == "1"
-- several wrk instances at once (one per replica) must not make the same ids
local prefix = os.getenv("BENCH_ID_PREFIX") or ""
local sent = 0
request = function()
  i = i % #bodies + 1
  if unique then
    -- every request's messageIds new (a dedupe window must not see repeats)
    sent = sent + 1
    local body = bodies[i]:gsub('"messageId":"', '"messageId":"' .. prefix .. (tid or 0) .. "-" .. sent .. "-")
    return wrk.format(nil, os.getenv("BENCH_PATH"), nil, body)
  end
  return wrk.format(nil, os.getenv("BENCH_PATH"), nil, bodies[i])
end
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, '
    .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  -- the latency distribution as quantiles at 0.1% steps, so several instances
  -- can be merged weighted by their requests (wrk's Lua API has no cheap way to
  -- list its histogram buckets; each percentile call stops at its value)
  local hist = os.getenv("BENCH_HIST")
  if hist and hist ~= "" and summary.requests > 0 then
    local f = io.open(hist, "w")
    for k = 1, 999 do
      f:write(latency:percentile(k / 10), "\n")
    end
    f:write(latency.max, "\n") -- percentile(100) answers 0
    f:close()
  end
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(rng: random.Random, person: int, *, consent: dict[str, bool]) -> dict[str, object]:
    sku = f"SKU-{rng.randint(10000, 99999)}"
    return {
        "type": "track",
        "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": "2026-11-20T10:15:30.123Z",
        "userId": f"customer-{person}",
        "anonymousId": f"anon-{person:08d}-7f3a9c1e",
        "event": "Product Added",
        "properties": {
            "product_id": sku,
            "sku": sku,
            "category": "Shoes",
            "name": "Trail Runner 2",
            "brand": "Brand",
            "variant": "blue",
            "price": 129.95,
            "quantity": 1,
            "currency": "EUR",
            "position": 3,
        },
        "context": {
            "ip": f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
            "locale": "de-DE",
            "page": {"path": "/p/trail-runner-2", "url": "https://shop.example/p/trail-runner-2"},
            "library": {"name": "analytics-python", "version": "2.3.2"},
            "consent": {"categoryPreferences": consent},
        },
    }


CONSENT_MIX = [
    ({"analytics": True, "advertising": False, "personalization": False}, 0.55),
    ({"analytics": True, "advertising": True, "personalization": True}, 0.30),
    ({"analytics": False, "advertising": False, "personalization": False}, 0.15),
]


def people_consent(rng: random.Random, n: int) -> list[dict[str, bool]]:
    choices, weights = zip(*CONSENT_MIX, strict=True)
    return [dict(rng.choices(choices, weights)[0]) for _ in range(n)]


def batches(n_batches: int, size: int, *, people: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    consents = people_consent(rng, people)
    out = []
    for _ in range(n_batches):
        msgs = []
        for _ in range(size):
            person = rng.randrange(people)
            msgs.append(message(rng, person, consent=consents[person]))
        out.append(json.dumps({"batch": msgs}, separators=(",", ":")).encode())
    return out


def basic_auth() -> str:
    import base64

    return "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


class ServerExited(RuntimeError):
    """The server process ended before it was ready; ``output`` is its log."""

    def __init__(self, cmd: list[str], output: str) -> None:
        self.output = output
        last = output.strip().splitlines()[-1] if output.strip() else "(no output)"
        super().__init__(f"{' '.join(cmd[:4])} ... exited before ready: {last}")


class Proc:
    def __init__(self, cmd: list[str], env: dict[str, str], url: str, ready: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = url
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerExited(cmd, Path(self.log.name).read_text(errors="replace"))
            try:
                if httpx.get(url + ready, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{cmd} did not start; see {self.log.name}")

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in [self.proc.pid, *children(self.proc.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def settle(self, *, idle: float = 0.1, timeout: float = 60.0) -> float:
        """Wait until the server is idle (under ``idle`` of a core over half a
        second): wrk stops at its deadline, but requests it already sent are
        still being processed, and the next phase must not inherit them.
        Returns the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            c0 = self.cpu_seconds()
            time.sleep(0.5)
            if self.cpu_seconds() - c0 < idle * 0.5:
                break
        return time.monotonic() - start

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes."""
        total = 0.0
        for pid in [self.proc.pid, *children(self.proc.pid)]:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


class Wrk:
    """One wrk run in the background: ``result()`` waits for it and returns its
    summary (requests, duration_us, errors, status_errors, p50/p90/p99/max in
    µs, rps) plus ``cpu_s``, the CPU seconds wrk used (its rusage when reaped:
    a finished process leaves no /proc entry), and ``hist``, its latency
    quantiles in µs at 0.1% steps, for ``merged_percentile``."""

    def __init__(
        self,
        url: str,
        path: str,
        bodies: list[bytes],
        *,
        seconds: int,
        connections: int,
        threads: int = 2,
        rate: int | None = None,
        id_prefix: str = "",
    ) -> None:
        if shutil.which("wrk") is None:
            sys.exit("benchmarks need wrk on PATH (Debian: apt-get install wrk)")
        self.work = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
        (self.work / "bodies.txt").write_bytes(b"\n".join(bodies) + b"\n")
        (self.work / "script.lua").write_text(LUA)
        env = {
            **os.environ,
            "BENCH_BODIES": str(self.work / "bodies.txt"),
            "BENCH_AUTH": basic_auth(),
            "BENCH_PATH": path,
            "BENCH_DELAY_MS": str(int(connections * 1000 / rate)) if rate else "0",
            "BENCH_ID_PREFIX": id_prefix,
            "BENCH_HIST": str(self.work / "hist.txt"),
        }
        self.out = (self.work / "out.txt").open("w")
        self.proc = subprocess.Popen(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(self.work / "script.lua"),
                url + path,
            ],
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )

    def result(self) -> dict[str, Any]:
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.out.close()
        try:
            out = (self.work / "out.txt").read_text()
            if self.proc.returncode != 0:
                raise RuntimeError(f"wrk failed ({self.proc.returncode}): {out}")
            line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
            data: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["cpu_s"] = usage.ru_utime + usage.ru_stime
            hist_path = self.work / "hist.txt"
            text = hist_path.read_text() if hist_path.exists() else ""
            data["hist"] = [float(x) for x in text.split()]
            return data
        finally:
            shutil.rmtree(self.work, ignore_errors=True)


def merged_percentile(runs: list[dict[str, Any]], q: float) -> float:
    """The q-th percentile (0-100, µs) of the latencies of several wrk runs
    together: each run's quantiles at 0.1% steps (``hist``) stand for a
    thousandth of its requests each. Exact to about 0.1 percentile rank."""
    weighted = sorted(
        (us, r["requests"] / len(r["hist"])) for r in runs if r["hist"] for us in r["hist"]
    )
    total = sum(w for _, w in weighted)
    if not total:
        return float("nan")
    seen = 0.0
    for us, w in weighted:
        seen += w
        if seen >= total * q / 100 - 1e-9:
            return us
    return weighted[-1][0]


def wrk(
    url: str,
    path: str,
    bodies: list[bytes],
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
    rate: int | None = None,
) -> dict[str, Any]:
    """Run wrk and parse its summary (see ``Wrk``). ``rate``: aim for that many
    requests/s by pausing each connection between requests (wrk's ``delay``
    hook); the rate reached is reported, since latency adds to the pause."""
    return Wrk(
        url, path, bodies, seconds=seconds, connections=connections, threads=threads, rate=rate
    ).result()
