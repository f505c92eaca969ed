"""OneID resolution cost per event as the graph grows: 10 thousand, 1 million and
10 million identifiers, same machine, same run.

    .venv/bin/python benchmarks/identity_resolve.py [--sizes 10000,1000000,10000000]

The graph is bulk-loaded with synthetic pseudonyms (people with a user id, an
email and two anonymous ids), then 20,000 events resolve a returning person
(user id + anonymous id) with the in-process cache off, so every lookup goes to
SQLite: all identifiers known; 20% of events with a never-seen anonymous id;
every event with a new one (worst case: an insert into the big b-tree each).
Reported: median µs per resolve and the ratio to the smallest graph.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from rich.progress import Progress

from identity import Graph, Identifier


def pseudonym(kind: str, i: int) -> str:
    return f"ps1.k1.{kind[:2]}{i:040d}"[:50]


def build(path: Path, identifiers: int) -> int:
    people = identifiers // 4
    g = Graph(path)
    conn = g._conn
    with Progress(transient=True) as progress:
        task = progress.add_task(f"loading {identifiers:,} identifiers", total=people)
        step = 50_000
        for start in range(0, people, step):
            end = min(people, start + step)
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO id_people (one_id, created_at) VALUES (?, '2026-01-01')",
                [(i + 1,) for i in range(start, end)],
            )
            rows = []
            for i in range(start, end):
                rows += [
                    (pseudonym("user_id", i), "user_id", "k1", i + 1, "2026-01-01"),
                    (pseudonym("email", i), "email", "k1", i + 1, "2026-01-01"),
                    (pseudonym("anonymous_id", 2 * i), "anonymous_id", "k1", i + 1, "2026-01-01"),
                    (
                        pseudonym("anonymous_id", 2 * i + 1),
                        "anonymous_id",
                        "k1",
                        i + 1,
                        "2026-01-01",
                    ),
                ]
            conn.executemany(
                "INSERT INTO id_links (pseudonym, kind, kid, one_id, linked_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
            progress.update(task, completed=end)
    conn.close()
    return people


def measure(path: Path, people: int, *, new_share: float, events: int = 20_000) -> float:
    """Median µs per resolve; ``new_share`` of events bring an anonymous id never seen."""
    g = Graph(path, cache_size=0)
    rng = random.Random(1)
    samples = []
    new_anon = 10**12
    for _ in range(events // 1000):
        t = time.perf_counter()
        g._conn.execute("BEGIN")
        for _ in range(1000):
            person = rng.randrange(people)
            if rng.random() < new_share:
                new_anon += 1
                anon = pseudonym("anonymous_id", new_anon)
            else:
                anon = pseudonym("anonymous_id", 2 * person + rng.randrange(2))
            g.resolve(
                [
                    Identifier("user_id", pseudonym("user_id", person)),
                    Identifier("anonymous_id", anon),
                ]
            )
        g._conn.execute("COMMIT")
        samples.append((time.perf_counter() - t) / 1000 * 1e6)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,1000000,10000000")
    args = ap.parse_args()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="bench-graph-") as d:
            path = Path(d) / "graph.db"
            t = time.perf_counter()
            people = build(path, size)
            load = time.perf_counter() - t
            known = measure(path, people, new_share=0.0)
            mixed = measure(path, people, new_share=0.2)
            fresh = measure(path, people, new_share=1.0)
            results.append((size, known, mixed, fresh))
            print(
                f"{size:>12,} identifiers ({path.stat().st_size / 1e6:,.0f} MB, loaded in {load:.0f} s):"
                f" returning {known:5.1f} us, 20% new ids {mixed:5.1f} us, all new ids {fresh:5.1f} us"
                " per resolve (median of 20 x 1,000)"
            )
    _, k0, m0, f0 = results[0]
    for size, k, m, f in results[1:]:
        print(
            f"ratio {size:,} / {results[0][0]:,}: returning {k / k0:.2f}x, 20% new {m / m0:.2f}x,"
            f" all new {f / f0:.2f}x"
        )


if __name__ == "__main__":
    main()
