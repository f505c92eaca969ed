"""The disk's own fsync tail: what an ack with synchronous=FULL cannot beat.

    .venv/bin/python benchmarks/disk_fsync.py [--dir consentry-data] [--seconds 30] [--mb-per-s 25]

Appends to a scratch file in --dir as a WAL does (64 KB per commit, reusing the
first 8 MB as a restarted WAL would), fdatasync after each write, at about the
given write rate, with nothing else running. Prints the fdatasync latency
distribution and every stall over 20 ms with its time, so a p99 of the ingest
benchmark can be compared with the floor the disk sets.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

CHUNK = 64 * 1024
SPAN = 8 << 20


def probe(
    directory: str, seconds: float, mb_per_s: float
) -> tuple[list[float], list[tuple[float, float]]]:
    """fdatasync latencies (ms, sorted) and the stalls over 20 ms as (second, ms)."""
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="fsync-probe-", dir=directory)
    buf = os.urandom(CHUNK)
    pause = CHUNK / (mb_per_s * 1e6)
    latencies: list[float] = []
    stalls: list[tuple[float, float]] = []
    start = time.monotonic()
    offset = 0
    try:
        while time.monotonic() - start < seconds:
            os.pwrite(fd, buf, offset)
            offset = (offset + CHUNK) % SPAN
            t0 = time.perf_counter()
            os.fdatasync(fd)
            ms = (time.perf_counter() - t0) * 1000
            latencies.append(ms)
            if ms > 20:
                stalls.append((time.monotonic() - start, ms))
            time.sleep(max(0.0, pause - ms / 1000))
    finally:
        os.close(fd)
        os.unlink(path)
    latencies.sort()
    return latencies, stalls


def summary(latencies: list[float], stalls: list[tuple[float, float]]) -> str:
    n = len(latencies)

    def q(p: float) -> float:
        return latencies[min(n - 1, int(n * p))]

    return (
        f"p50 {q(0.5):.2f} ms  p99 {q(0.99):.2f} ms  p99.9 {q(0.999):.2f} ms"
        f"  max {latencies[-1]:.1f} ms; stalls over 50 ms: {sum(1 for _, ms in stalls if ms > 50)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mb-per-s", type=float, default=25.0)
    args = ap.parse_args()
    latencies, stalls = probe(args.dir, args.seconds, args.mb_per_s)
    print(
        f"{len(latencies):,} fdatasync calls of {CHUNK // 1024} KB in {args.seconds:.0f} s on {args.dir}"
    )
    print(summary(latencies, stalls))
    for at, ms in stalls:
        print(f"  at {at:6.1f} s  {ms:6.1f} ms")


if __name__ == "__main__":
    main()
