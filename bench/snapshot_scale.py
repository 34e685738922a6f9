"""Measure MibSnapshot at 100, 1,000 and 10,000 jobs: get_next, a walk, job_changed, memory.

Run by hand: `python bench/snapshot_scale.py [--json]`.  Times are medians of many calls; ratios are
against the 100-job figures measured in the same run.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable

from cronwrap.agent import mib, mibvalues
from cronwrap.agent.model import AgentStats, JobKey, JobRecord, JobState
from cronwrap.agent.snapshot import MibSnapshot

SIZES = (100, 1_000, 10_000)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def job(i: int, runs: int = 0) -> JobRecord:
    now = 1_795_000_000.0 + i
    return JobRecord(
        JobKey(1000 + i % 50, f"job-{i:05d}"),
        f"user{i % 50}",
        runs=runs + i,
        failures=i % 7,
        last_exit_status=i % 3,
        last_start=now,
        last_success=now - 60,
        last_duration_ms=i * 13,
        state=JobState(1 + i % 8),
        next_expected=now + 3600,
    )


def build(n: int) -> MibSnapshot:
    snapshot = MibSnapshot()
    snapshot.stats_changed(AgentStats(n, 10 * n, 0, 1_795_000_000.0))
    for i in range(n):
        snapshot.job_changed(job(i))
    return snapshot


def median_us(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return statistics.median(samples) / 1000


def walk_us(snapshot: MibSnapshot) -> float:
    """µs per get_next in a walk of the whole snapshot, each step from the previous answer (as
    snmpd drives a walk); the best of 3 walks."""
    best = float("inf")
    for _ in range(3):
        steps = 0
        began = time.perf_counter_ns()
        entry = snapshot.get_next(())
        while entry is not None:
            entry = snapshot.get_next(entry.oid)
            steps += 1
        best = min(best, (time.perf_counter_ns() - began) / steps / 1000)
    return best


def time_size(n: int, rng: random.Random) -> tuple[float, float, float, float]:
    """Median µs of get_next (random starts), job_changed (existing row), job_changed (new row),
    and µs per step of a walk."""
    snapshot = build(n)
    walked = walk_us(snapshot)
    starts = [
        mib.column_oid(mib.Column(rng.randint(3, 15)))
        + mibvalues.row_index(f"user{rng.randrange(50)}", f"job-{rng.randrange(n):05d}")
        for _ in range(2000)
    ]
    it = iter(starts * 10)
    next_us = median_us(lambda: snapshot.get_next(next(it)), 2000)
    runs = iter(range(1, 10**9))
    change_us = median_us(lambda: snapshot.job_changed(job(rng.randrange(n), runs=next(runs))), 300)
    fresh = iter(range(n, n + 10**6))
    insert_us = median_us(lambda: snapshot.job_changed(job(next(fresh))), 300)
    return next_us, change_us, insert_us, walked


def main() -> None:
    # memory first, in a fresh heap
    gc.collect()
    before = rss_kib()
    t = time.perf_counter()
    snapshot = build(10_000)
    built_s = time.perf_counter() - t
    after = rss_kib()
    grown = (after - before) * 1024
    len_10k = len(snapshot)
    if "--json" not in sys.argv[1:]:
        print(
            f"10,000 jobs: {len(snapshot)} instances, built in {built_s:.2f} s;"
            f" RSS +{grown / 2**20:.1f} MiB ({grown / len(snapshot):.0f} bytes per instance);"
            f" process RSS {after / 1024:.1f} MiB"
        )
    del snapshot
    gc.collect()

    rng = random.Random(1)
    results = {n: time_size(n, rng) for n in SIZES}
    base = results[SIZES[0]]
    if "--json" in sys.argv[1:]:
        print(json.dumps({
            "instances_10000": len_10k, "build_10000_s": round(built_s, 3),
            "bytes_per_instance": round(grown / len_10k),
            "us": {str(n): {"get_next": round(a, 3), "change": round(b, 3), "insert": round(c, 3),
                            "walk": round(d, 3)}
                   for n, (a, b, c, d) in results.items()}}))
        return
    print(
        f"{'jobs':>7} {'get_next us':>12} {'ratio':>6} {'change us':>10} {'ratio':>6}"
        f" {'insert us':>10} {'ratio':>6} {'walk us':>8} {'ratio':>6}"
    )
    for n, (a, b, c, d) in results.items():
        print(
            f"{n:>7} {a:>12.2f} {a / base[0]:>6.2f} {b:>10.1f} {b / base[1]:>6.2f}"
            f" {c:>10.1f} {c / base[2]:>6.2f} {d:>8.2f} {d / base[3]:>6.2f}"
        )


if __name__ == "__main__":
    main()
