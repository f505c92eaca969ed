"""Memory of the ingest memos when many distinct people arrive.

    .venv/bin/python benchmarks/ingest_memory.py [--people 100000]

Prepares one event for each of N distinct people in one process (stage A
only, as a worker does) and prints the growth of resident memory and how full
each memo is. The memos are capped; past the caps memory must stop growing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import message, people_consent
from ingest import local_runtime

from collector.pipeline.decode import decode_message


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=100_000)
    args = ap.parse_args()
    rt, work = local_runtime("bench-memory-")
    rng = random.Random(1)
    consents = people_consent(rng, 1000)
    now = datetime.now(UTC)
    gc.collect()
    start = rss_mb()
    for step in range(1, 5):
        upto = args.people * step // 4
        for person in range(args.people * (step - 1) // 4, upto):
            raw = json.dumps(message(rng, person, consent=consents[person % 1000])).encode()
            rt.preparer.prepare(
                decode_message(raw, index=0, prefix="$"), index=0, prefix="$", received_at=now
            )
        gc.collect()
        print(f"{upto:>9,} people: RSS +{rss_mb() - start:6.0f} MB; {rt.preparer.memo_sizes()}")
    rt.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
