"""Pseudonymization cost per identifier: cold (cache miss), warm (cache hit),
against bare `hmac.digest` in the same run.

    .venv/bin/python benchmarks/identity_pseudonym.py [--n 200000]
"""

from __future__ import annotations

import argparse
import hmac
import statistics
import time

from identity import Keyring, Pseudonymizer
from identity.pseudonym import derive_domain_key


def per_item_us(fn, items, rounds=5):  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for item in items:
            fn(item)
        samples.append((time.perf_counter() - t) / len(items) * 1e6)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    ring = Keyring.generate()
    emails = [f"person{i}@example.com" for i in range(args.n)]
    key = derive_domain_key(ring.secret("k1"), "internal")
    base = per_item_us(lambda e: hmac.digest(key, b"email\x00" + e.encode(), "sha256"), emails)

    def cold_run(items):  # type: ignore[no-untyped-def]
        p = Pseudonymizer(ring, cache_size=0)
        t = time.perf_counter()
        for e in items:
            p.pseudonym_normalized("email", e)
        return (time.perf_counter() - t) / len(items) * 1e6

    cold = statistics.median(cold_run(emails) for _ in range(5))
    warm_p = Pseudonymizer(ring, cache_size=args.n * 2)
    for e in emails:
        warm_p.pseudonym_normalized("email", e)
    warm = per_item_us(lambda e: warm_p.pseudonym_normalized("email", e), emails)
    normalize_and_derive = per_item_us(lambda e: warm_p.pseudonym("email", e), emails)
    print(f"identifiers: {args.n:,} distinct emails, median of 5 rounds")
    print(f"hmac.digest alone (baseline)        {base:6.2f} us/identifier")
    print(
        f"pseudonym, cold (HMAC + format)     {cold:6.2f} us/identifier  ({cold / base:4.1f}x baseline)"
    )
    print(
        f"pseudonym, warm (in-process cache)  {warm:6.2f} us/identifier  ({warm / base:4.2f}x baseline)"
    )
    print(f"normalize + warm pseudonym          {normalize_and_derive:6.2f} us/identifier")


if __name__ == "__main__":
    main()
