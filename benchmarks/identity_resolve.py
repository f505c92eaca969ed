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
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.progress import Progress

from collector.storage.sqlite.connection import open_database
from identity import Graph, Identifier


def pseudonym(kind: str, i: int) -> str:
    return f"ps1.k1.{kind[:2]}{i:040d}"[:50]


def build(path: Path, identifiers: int) -> int:
    people = identifiers // 4
    conn = open_database(path)
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


_FRESH = iter(range(10**12, 10**13, 10**9))


def measure(
    path: Path, people: int, *, new_share: float, warm: bool, events: int = 20_000
) -> float:
    """Median µs per resolve; ``new_share`` of events bring an anonymous id never seen.
    ``warm``: first read every page once, as a collector that has been running has
    (otherwise most lookups pay a first-touch page fault on the memory map)."""
    conn = open_database(path)
    g = Graph(conn.graph_store, cache_size=0)
    if warm:
        conn.execute("SELECT sum(length(pseudonym)), sum(one_id) FROM id_links").fetchone()
        conn.execute("SELECT sum(one_id) FROM id_links INDEXED BY id_links_one_id").fetchone()
    rng = random.Random(1)
    samples = []
    new_anon = next(_FRESH)  # never reused across measurements
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
    g._conn.close()
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
            row = []
            for warm in (False, True):
                for share in (0.0, 0.2, 1.0):
                    # Every measurement starts from the same graph: a fresh copy.
                    work = Path(d) / "work.db"
                    shutil.copyfile(path, work)
                    row.append(measure(work, people, new_share=share, warm=warm))
                    for leftover in Path(d).glob("work.db*"):
                        leftover.unlink()
            results.append((size, row))
            print(
                f"{size:>12,} identifiers ({path.stat().st_size / 1e6:,.0f} MB, loaded in {load:.0f} s),"
                " us per resolve, median of 20 x 1,000:"
            )
            print(
                f"    cold pages: returning {row[0]:5.1f}, 20% new ids {row[1]:5.1f}, all new {row[2]:5.1f}"
            )
            print(
                f"    warm pages: returning {row[3]:5.1f}, 20% new ids {row[4]:5.1f}, all new {row[5]:5.1f}"
            )
    base = results[0][1]
    labels = [
        "cold returning",
        "cold 20% new",
        "cold all new",
        "warm returning",
        "warm 20% new",
        "warm all new",
    ]
    for size, row in results[1:]:
        ratios = ", ".join(
            f"{label} {v / b:.2f}x" for label, v, b in zip(labels, row, base, strict=True)
        )
        print(f"ratio {size:,} / {results[0][0]:,}: {ratios}")


if __name__ == "__main__":
    main()
