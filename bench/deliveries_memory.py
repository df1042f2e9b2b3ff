"""Memory and time of remembering Slack deliveries (handlers/deliveries.py) under a flood.

    .venv/bin/python bench/deliveries_memory.py [--deliveries 100000]

Feeds `--deliveries` distinct deliveries, each with a Slack-shaped trigger_id and v0 signature (the
keys the HTTP path records), into a `Deliveries` at its default capacity and window, then prints the
entries kept, the memory they hold at capacity (tracemalloc) and the time per check.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from handlers.deliveries import CAPACITY, WINDOW_SECONDS, Deliveries  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    args = parser.parse_args()
    keys = [
        [
            f"trigger_id:{1_000_000_000 + i}.{738474920 + i}.{hashlib.md5(str(i).encode()).hexdigest()[:31]}",
            "signature:v0=" + hashlib.sha256(str(i).encode()).hexdigest(),
        ]
        for i in range(args.deliveries)
    ]
    tracemalloc.start()
    seen = Deliveries()
    start = time.perf_counter()
    for pair in keys:
        seen.first_time(pair)
    elapsed = time.perf_counter() - start
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"deliveries fed: {args.deliveries}, window {WINDOW_SECONDS:.0f} s, capacity {CAPACITY} keys")
    print(f"keys kept: {len(seen)}, forgotten early: {seen.evicted_early}")
    print(f"memory held: {held / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB)")
    print(f"time per delivery checked: {elapsed / args.deliveries * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
