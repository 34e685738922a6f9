"""Measure MibSnapshot at 100, 1,000 and 10,000 jobs: get_next, a walk, job_changed, memory.

Run by hand: `python bench/snapshot_scale.py [--json]`.  Times are medians of many calls; ratios are
against the 100-job figures measured in the same run.  get_next from random starts is measured in
ROUNDS rounds interleaving the sizes (the ratio's median and min-max over them), beside the floor
of any sorted-table look-up at the same sizes: a bisect of the same start keys in a plain sorted
list of the rows' index bytes, and one int read from the object it lands on.  At 10,000 jobs
neither fits the CPU's caches, so that floor grows too; its ratio says how much of get_next's
growth is the memory hierarchy's.
"""

from __future__ import annotations

import bisect
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
ROUNDS = 7


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


class _Plain:
    """The floor's row: one int."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value


def floor_lookup(n: int) -> Callable[[tuple[int, ...]], int]:
    """A look-up in a plain sorted list of the n rows' index bytes, and one int read."""
    keys = sorted(bytes(mibvalues.row_index(f"user{i % 50}", f"job-{i:05d}")) for i in range(n))
    rows = [_Plain(1_000_000 + i) for i in range(n)]
    column = len(mib.column_oid(mib.Column.cronJobRuns))

    def lookup(start: tuple[int, ...]) -> int:
        return rows[min(bisect.bisect_right(keys, bytes(start[column:])), n - 1)].value + 1

    return lookup


def random_starts(n: int, rng: random.Random) -> list[tuple[int, ...]]:
    return [mib.column_oid(mib.Column(rng.randint(3, 15)))
            + mibvalues.row_index(f"user{rng.randrange(50)}", f"job-{rng.randrange(n):05d}")
            for _ in range(2000)]


def time_lookups(rng: random.Random) -> dict[int, dict[str, list[float]]]:
    """Median µs of get_next from random starts, and of the floor, per size, per round; the
    sizes interleaved in each round."""
    snapshots = {n: build(n) for n in SIZES}
    floors = {n: floor_lookup(n) for n in SIZES}
    starts = {n: random_starts(n, rng) for n in SIZES}
    samples: dict[int, dict[str, list[float]]] = {n: {"get_next": [], "floor": []}
                                                  for n in SIZES}
    for _ in range(ROUNDS):
        for n in SIZES:
            samples[n]["get_next"].append(per_start_us(snapshots[n].get_next, starts[n]))
            samples[n]["floor"].append(per_start_us(floors[n], starts[n]))
    return samples


def per_start_us(lookup: Callable[[tuple[int, ...]], object], starts: list[tuple[int, ...]]
                 ) -> float:
    """Median µs of `lookup` over 2,000 of the starts, in turn."""
    it = iter(starts * 10)
    return median_us(lambda: lookup(next(it)), 2000)


def time_size(n: int, rng: random.Random) -> tuple[float, float, float]:
    """Median µs of job_changed (existing row), job_changed (new row), and µs per step of a
    walk."""
    snapshot = build(n)
    walked = walk_us(snapshot)
    runs = iter(range(1, 10**9))
    change_us = median_us(lambda: snapshot.job_changed(job(rng.randrange(n), runs=next(runs))), 300)
    fresh = iter(range(n, n + 10**6))
    insert_us = median_us(lambda: snapshot.job_changed(job(next(fresh))), 300)
    return change_us, insert_us, walked


def ratios(samples: dict[int, dict[str, list[float]]], what: str) -> list[float]:
    """The per-round ratios of the largest size's figure to the smallest's."""
    small, large = samples[SIZES[0]][what], samples[SIZES[-1]][what]
    return sorted(b / a for a, b in zip(small, large, strict=True))


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
    lookups = time_lookups(rng)
    gc.collect()
    results = {n: (statistics.median(lookups[n]["get_next"]),
                   statistics.median(lookups[n]["floor"]), *time_size(n, rng)) for n in SIZES}
    base = results[SIZES[0]]
    spread = {what: ratios(lookups, what) for what in ("get_next", "floor")}
    if "--json" in sys.argv[1:]:
        print(json.dumps({
            "instances_10000": len_10k, "build_10000_s": round(built_s, 3),
            "bytes_per_instance": round(grown / len_10k), "rounds": ROUNDS,
            "ratio_spread": {what: [round(r[0], 3), round(statistics.median(r), 3),
                                    round(r[-1], 3)] for what, r in spread.items()},
            "us": {str(n): {"get_next": round(a, 3), "floor": round(f, 3), "change": round(b, 3),
                            "insert": round(c, 3), "walk": round(d, 3)}
                   for n, (a, f, b, c, d) in results.items()}}))
        return
    print(
        f"{'jobs':>7} {'get_next us':>12} {'ratio':>6} {'floor us':>9} {'ratio':>6}"
        f" {'change us':>10} {'ratio':>6} {'insert us':>10} {'ratio':>6}"
        f" {'walk us':>8} {'ratio':>6}"
    )
    for n, (a, f, b, c, d) in results.items():
        print(
            f"{n:>7} {a:>12.2f} {a / base[0]:>6.2f} {f:>9.2f} {f / base[1]:>6.2f}"
            f" {b:>10.1f} {b / base[2]:>6.2f} {c:>10.1f} {c / base[3]:>6.2f}"
            f" {d:>8.2f} {d / base[4]:>6.2f}"
        )
    for what, r in spread.items():
        print(f"{what} {SIZES[-1]:,} / {SIZES[0]:,} jobs over {ROUNDS} interleaved rounds: "
              f"median {statistics.median(r):.2f}, min-max {r[0]:.2f}-{r[-1]:.2f}")


if __name__ == "__main__":
    main()
