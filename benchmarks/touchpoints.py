"""Browser pixel and order-system webhook throughput, next to /v1/track in the
same run and the same `consentry serve`.

.venv/bin/python benchmarks/touchpoints.py [--seconds 4] [--connections 16]

Three wrk phases against one server (durable defaults, rate limits off):
  baseline  POST /v1/track, one message per request (the Segment API path);
  pixel     GET /v1/pixel/track?writeKey=...&anonymousId=...&event=...: decode the
            query, run the pipeline, answer the 1x1 GIF;
  webhook   POST /v1/webhooks/shop, Shopify orders/paid, each signed (base64
            HMAC-SHA256) with its own X-Shopify-Webhook-Id: verify, claim the id,
            map to Order Completed, record the checkout consent, store.
Prints requests/s, p50/p99 and each phase's ratio to the baseline. Every
response must be 200; wrk's status errors are printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WRITE_KEY, Proc, basic_auth, free_port

SECRET = "bench-shopify-secret"
CONFIG = """
[browser]
rate_limit_per_ip = ""
rate_limit_per_source = ""

[[sources]]
name = "web"
write_key_env = "CONSENTRY_WRITE_KEY"

[[sources]]
name = "shop"
type = "shopify"
secret_env = "BENCH_SHOPIFY_SECRET"

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics", "marketing"]
path = "{data}/out"
"""
# One line per request: "METHOD\\tPATH\\tHEADER:VALUE|HEADER:VALUE\\tBODY".
LUA = r"""
local reqs = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do
  local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
  local h = {}
  for pair in headers:gmatch("[^|]+") do
    local k, v = pair:match("^([^:]+):(.*)$")
    h[k] = v
  end
  reqs[#reqs + 1] = {method = method, path = path, headers = h, body = body}
end
local i = 0
local counter = 0
setup = function(thread) thread:set("tid", counter); counter = counter + 1 end
init = function(args) i = (tid or 0) * math.floor(#reqs / 2) end
request = function()
  i = i % #reqs + 1
  local r = reqs[i]
  return wrk.format(r.method, r.path, r.headers, r.body ~= "" and r.body or nil)
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def track_requests(n: int, rng: random.Random) -> list[str]:
    auth = basic_auth()
    out = []
    for _ in range(n):
        body = json.dumps(
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": f"anon-{rng.randrange(5000):05d}",
                "properties": {"sku": f"S-{rng.randrange(999)}", "price": 12.5},
                "context": {"consent": {"categoryPreferences": {"analytics": True}}},
            },
            separators=(",", ":"),
        )
        out.append(f"POST\t/v1/track\tContent-Type:application/json|Authorization:{auth}\t{body}")
    return out


def pixel_requests(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        query = urlencode(
            {
                "writeKey": WRITE_KEY,
                "anonymousId": f"mail-{rng.randrange(5000):05d}",
                "event": "Email Opened",
                "properties.campaign": f"nov-{rng.randrange(20)}",
                "context.consent.categoryPreferences.analytics": "true",
            }
        )
        out.append(f"GET\t/v1/pixel/track?{query}\t\t")
    return out


def webhook_requests(n: int, rng: random.Random) -> list[str]:
    out = []
    for i in range(n):
        order = {
            "id": 10_000_000 + i,
            "email": f"buyer{rng.randrange(5000)}@example.com",
            "financial_status": "paid",
            "currency": "EUR",
            "total_price": "121.00",
            "subtotal_price": "100.00",
            "total_tax": "19.00",
            "buyer_accepts_marketing": True,
            "billing_address": {"country_code": "DE"},
            "customer": {"id": rng.randrange(5000)},
            "line_items": [
                {"product_id": 1, "sku": "S-1", "title": "Tea", "price": "50.00", "quantity": 2}
            ],
        }
        body = json.dumps(order, separators=(",", ":"))
        sig = base64.b64encode(
            hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
        ).decode()
        headers = (
            f"Content-Type:application/json|X-Shopify-Topic:orders/paid"
            f"|X-Shopify-Hmac-Sha256:{sig}|X-Shopify-Webhook-Id:{uuid.UUID(int=rng.getrandbits(128))}"
        )
        out.append(f"POST\t/v1/webhooks/shop\t{headers}\t{body}")
    return out


def run_wrk(url: str, lines: list[str], *, seconds: int, connections: int) -> dict[str, float]:
    if shutil.which("wrk") is None:
        sys.exit("benchmarks need wrk on PATH (Debian: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="bench-touch-"))
    (work / "requests.txt").write_text("\n".join(lines) + "\n")
    (work / "script.lua").write_text(LUA)
    env = {**os.environ, "BENCH_REQUESTS": str(work / "requests.txt")}
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    out = subprocess.run(
        [*cmd, "-s", str(work / "script.lua"), url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shutil.rmtree(work, ignore_errors=True)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data: dict[str, float] = json.loads(line[len("WRKJSON ") :])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="wrk duration per phase")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=0, help="consentry serve --workers")
    args = parser.parse_args()
    rng = random.Random(11)
    work = Path(tempfile.mkdtemp(prefix="bench-touchpoints-"))
    (work / "bench.toml").write_text(CONFIG.format(data=work / "data"))
    port = free_port()
    env = {
        **os.environ,
        "CONSENTRY_WRITE_KEY": WRITE_KEY,
        "CONSENTRY_MASTER_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "BENCH_SHOPIFY_SECRET": SECRET,
    }
    cmd = [sys.executable, "-m", "collector.cli", "serve", "--config", str(work / "bench.toml")]
    cmd += ["--data-dir", str(work / "data"), "--port", str(port)]
    cmd += ["--workers", str(args.workers)] if args.workers else []
    server = Proc(cmd, env, f"http://127.0.0.1:{port}", "/readyz")
    phases = [
        ("baseline POST /v1/track", track_requests(4000, rng)),
        ("pixel GET /v1/pixel/track", pixel_requests(4000, rng)),
        ("webhook POST /v1/webhooks/shop", webhook_requests(40_000, rng)),
    ]
    try:
        results = []
        for name, lines in phases:
            r = run_wrk(server.url, lines, seconds=args.seconds, connections=args.connections)
            server.settle()
            results.append((name, r))
        counts = _counts(server.url)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    base = results[0][1]["rps"]
    print(f"{'phase':<32} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs baseline':>11} errors")
    for name, r in results:
        print(
            f"{name:<32} {r['rps']:>8,.0f} {r['p50_us'] / 1000:>7.1f} {r['p99_us'] / 1000:>7.1f}"
            f" {r['rps'] / base:>10.2f}x {int(r['status_errors'])}"
        )
    print("stored per source (accepted / quarantined):", counts)


def _counts(url: str) -> dict[str, str]:
    """Accepted and quarantined messages per source, from /metrics."""
    import httpx

    out: dict[str, list[str]] = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        for metric in ("consentry_messages_accepted_total", "consentry_messages_quarantined_total"):
            if line.startswith(metric + "{"):
                source = line.split('source="', 1)[1].split('"', 1)[0]
                out.setdefault(source, ["0", "0"])[metric.endswith("quarantined_total")] = (
                    line.rsplit(" ", 1)[1]
                )
    return {k: " / ".join(v) for k, v in out.items()}


if __name__ == "__main__":
    main()
