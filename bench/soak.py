#!/usr/bin/env python3
"""Soak: a simulated day of a realistic crontab through the real agent core on a simulated clock.

Run by hand from the repository root:  .venv/bin/python bench/soak.py [--hours 24] [--jobs 100]
                                           [--zone America/New_York --start 2026-03-07T22:00]

No wall time passes for the simulated span.  The real AgentCore (with its SQLite Store, fsync
and all) and the real Watcher run in-process with their injectable clocks bound to a simulated
clock.  A simulator plays cron and the wrappers: cron's starts come from bench/debian_cron.py,
a minute-by-minute model of Debian cron's main loop in the chosen zone (its DST rules included;
the agent evaluates schedules in that zone, [agent] cron_timezone), and for each job it
decides each run's duration and outcome from a seeded RNG, holds the job's lock while a run lasts
(a start while it is held is an Overlapped event, as `cronwrap` reports it), kills runs that
exceed --timeout (exit 124, SIGTERM, timed_out) and stops some jobs so they are missed.  The
events of each simulated watch interval are submitted together, then the watcher ticks.

At the end the NMS view - the counters of each row read back from the MibSnapshot the core fed
(agent/mib.py column values, what --agentx and --listen serve), the notifications the core
published, and the rows reloaded from the database - is compared with the ground truth the
simulator kept: runs, failures, overlaps, timeouts, misses, duration anomalies per job and each
notification kind per job.  Any difference is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronwrap.agent import mib, mibvalues
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey, Notification, NotificationKind
from cronwrap.agent.schedule import Discovered
from cronwrap.agent.snapshot import MibSnapshot
from cronwrap.agent.store import Store
from cronwrap.agent.transitions import durations
from cronwrap.agent.watch import Watcher
from cronwrap.wrapper.events import Cadence, Event, Finished, Overlapped, Started, new_event_id

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.debian_cron import DebianCron  # noqa: E402

SIM_START = 1_767_571_200.0  # 2026-01-05 00:00:00 UTC, a Monday
OWNER_UID, OWNER = 1000, "soak"
COUNTERS = ("runs", "failures", "overlaps", "timeouts", "misses", "duration_anomalies")
COLUMNS = {"runs": mib.Column.cronJobRuns, "failures": mib.Column.cronJobFailures,
           "overlaps": mib.Column.cronJobOverlaps, "timeouts": mib.Column.cronJobTimeouts,
           "misses": mib.Column.cronJobMisses,
           "duration_anomalies": mib.Column.cronJobDurationAnomalies}
SIGTERM, SIGKILL = 15, 9
LOOKAHEAD = 3 * 86400  # cron's starts past the span: the agent's grace looks two slots ahead
CATCH_UP_PAUSE = 10.0  # cron.c sleeps 10 s after each catch-up minute that started jobs


@dataclass(frozen=True)
class JobSpec:
    """One crontab line: schedule, outcome odds, run length, wrapper options, when it stops."""

    name: str
    schedule: str
    fail_rate: float = 0.0
    duration: tuple[float, float] = (1.0, 20.0)  # uniform, seconds
    timeout: float | None = None
    max_runtime: float | None = None
    stop_after: float | None = None  # seconds into the span: later slots never start

    def cadence(self) -> Cadence:
        return Cadence(schedule=self.schedule, timeout=self.timeout, max_runtime=self.max_runtime)


@dataclass
class Truth:
    """What the simulator knows happened to one job, kept without looking at the agent."""

    counts: Counter[str] = field(default_factory=Counter)
    notifications: Counter[str] = field(default_factory=Counter)


def crontab(jobs: int, hours: float) -> list[JobSpec]:
    """A realistic mix: specials (overlaps, a timeout, an overrun, stopped jobs) then the rest."""
    span = hours * 3600
    specials = [
        JobSpec("slow-5min", "*/5 * * * *", 0.05, (60.0, 420.0)),
        JobSpec("slow-hourly", "7 * * * *", 0.0, (1800.0, 4800.0)),
        JobSpec("timeout-10min", "*/10 * * * *", 0.1, (30.0, 200.0), timeout=120.0),
        JobSpec("overrun-hourly", "23 * * * *", 0.0, (300.0, 1200.0), max_runtime=600.0),
        JobSpec("stops-5min", "*/5 * * * *", 0.0, (1.0, 30.0), stop_after=span / 2),
        JobSpec("never-hourly", "45 * * * *", stop_after=0.0),
        JobSpec("never-daily", "0 12 * * *", stop_after=0.0),
        # around DST changes (at night in every zone): fixed-time and wildcard jobs
        JobSpec("fixed-0130", "30 1 * * *", 0.2, (1.0, 60.0)),
        JobSpec("fixed-0230", "30 2 * * *", 0.0, (1.0, 60.0)),
        JobSpec("twice-0102", "0,30 1,2 * * *", 0.0, (1.0, 5.0)),
        JobSpec("wild-at-2", "*/10 2 * * *", 0.0, (1.0, 60.0)),
        JobSpec("stops-night", "15 0-3 * * *", 0.0, (1.0, 60.0), stop_after=span / 4),
    ]
    rng = random.Random(1)
    kinds: list[Callable[[int], JobSpec]] = [
        lambda i: JobSpec(f"minutely-{i}", "* * * * *", rng.choice([0.0, 0.01, 0.1]),
                          (0.1, 20.0)),
        lambda i: JobSpec(f"five-{i}", "*/5 * * * *", rng.choice([0.0, 0.02, 0.2]),
                          (1.0, 100.0)),
        lambda i: JobSpec(f"quarter-{i}", f"{i % 15}-59/15 * * * *", 0.05, (1.0, 300.0)),
        lambda i: JobSpec(f"hourly-{i}", f"{i % 60} * * * *", rng.choice([0.0, 0.05, 0.5]),
                          (1.0, 600.0)),
        lambda i: JobSpec(f"daily-{i}", f"{i % 60} {i % 24} * * *", rng.choice([0.0, 0.3]),
                          (10.0, 3000.0)),
    ]
    weights = [20, 30, 5, 25, 15]
    rest = [rng.choices(kinds, weights)[0](i) for i in range(max(0, jobs - len(specials)))]
    return (specials + rest)[:jobs]


def cron_starts(specs: list[JobSpec], zone: str, start: float, end: float
                ) -> dict[str, list[float]]:
    """Every start Debian's cron makes for each job after `start` up to `end`, in `zone`."""
    info = ZoneInfo(zone)

    def offset(at: int) -> int:  # localtime()'s tm_gmtoff, straight from the zoneinfo database
        delta = datetime.fromtimestamp(at, info).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    cron = DebianCron({spec.name: spec.schedule for spec in specs}, offset)
    starts: dict[str, list[float]] = {spec.name: [] for spec in specs}
    for at, name in cron.runs(int(start), int(end)):
        starts[name].append(float(at))
    return starts


def grace_at(slots: list[float], i: int) -> float:
    """The agent's default grace for slot i: min(300 s, half the period that follows it)."""
    after = sorted(set(s for s in slots if s > slots[i]))
    return min(300.0, (after[1] - after[0]) / 2)


def simulate(spec: JobSpec, slots: list[float], start: float, end: float, tick: float,
             rng: random.Random) -> tuple[list[Event], Truth]:
    """The events a wrapper would send for `spec` at cron's `slots`, and the ground truth.

    `slots` runs LOOKAHEAD past `end`: the later ones only give the last slots' grace.
    """
    pid, events, truth = os.getpid(), [], Truth()  # pid: alive, so the watcher keeps runs
    cadence = spec.cadence()
    ticks_end = end  # the last watcher pass (the span is a whole number of ticks)
    busy_until, alarm, last_at = start, False, start
    # A successful run that was overlapped or overran (and follows no alarm) is cleared by its
    # end; its overlaps come in later slots, so the notification is settled at the next start.
    clearable = pending_clear = False
    # A successful run outside the learned bounds of the job's earlier successful durations
    # raises cronJobDurationAnomaly; the next successful run within them clears it.
    successes: list[int] = []
    anomaly_before = False
    missed_at: set[float] = set()  # the watcher passes that found misses: one notification each
    for i, slot in enumerate(slots):
        if slot > end:
            break
        if spec.stop_after is not None and slot >= start + spec.stop_after:
            grace = grace_at(slots, i)
            if ticks_end > slot + grace:
                truth.counts["misses"] += 1
                missed_at.add(start + (int((slot + grace - start) // tick) + 1) * tick)
                alarm = True
            continue
        at = slot + rng.uniform(0.05, 1.5)  # cron's start-up delay
        if at <= last_at:  # a second catch-up start of one minute: after cron's pause
            at = last_at + CATCH_UP_PAUSE
        last_at = at
        if at < busy_until:  # the previous run still holds the lock
            events.append(Overlapped(new_event_id(), spec.name, at, pid, pid, cadence))
            truth.counts["overlaps"] += 1
            truth.notifications["cronJobOverlapped"] += 1
            clearable = True
            continue
        truth.notifications["cronJobCleared"] += pending_clear and clearable
        clearable = pending_clear = False
        length = rng.uniform(*spec.duration)
        timed_out = spec.timeout is not None and length > spec.timeout
        if timed_out:
            assert spec.timeout is not None
            length = spec.timeout + rng.uniform(0.0, 0.2)  # TERM, then the job's exit
        status, signal = (124, SIGTERM) if timed_out else _outcome(rng, spec.fail_rate)
        busy_until = at + length
        events.append(Started(new_event_id(), spec.name, at, pid, cadence))
        if spec.max_runtime is not None and _watched_between(
                at + spec.max_runtime, min(busy_until, end + tick / 2), start, tick):
            truth.notifications["cronJobOverrunning"] += 1
            clearable = True
        if busy_until > end:
            break  # still running when the span ends: no finish, no more starts
        duration_ms = int(length * 1000)
        events.append(Finished(new_event_id(), spec.name, at + duration_ms / 1000, pid,
                               start_time=at, exit_status=status, signal=signal,
                               duration_ms=duration_ms, timed_out=timed_out, cadence=cadence))
        failed = status != 0
        anomaly = not failed and outside_learned_bounds(successes, duration_ms)
        truth.counts["runs"] += 1
        truth.counts["failures"] += failed
        truth.counts["timeouts"] += timed_out
        truth.counts["duration_anomalies"] += anomaly
        truth.notifications["cronJobDurationAnomaly"] += anomaly
        if failed:
            truth.notifications["cronJobTimedOut" if timed_out else "cronJobFailed"] += 1
        elif alarm:
            truth.notifications["cronJobRecovered"] += 1
        elif not anomaly:
            pending_clear, clearable = True, clearable or anomaly_before
        if not failed:
            successes.append(duration_ms)
        alarm, anomaly_before = failed, anomaly
    truth.notifications["cronJobCleared"] += pending_clear and clearable
    truth.notifications["cronJobMissed"] += len(missed_at)
    return events, truth


def outside_learned_bounds(successes: list[int], took_ms: int) -> bool:
    """Whether a successful run of `took_ms` breaks the bounds the agent learns (with its default
    [agent] settings) from the job's earlier successful durations `successes` (ms).

    The statistics are the agent's own (durations.learned_bounds, attacked on their own in
    tests/test_durations_unit.py); what the soak checks is that the core applies them to every
    run, counts each anomaly once and raises and clears its notifications.
    """
    config = Config()
    window = successes[-config.duration_window:] if config.duration_window else []
    bounds = durations.learned_bounds(window, config.duration_factor, config.duration_min_ratio,
                                      round(config.duration_min_margin * 1000))
    if bounds is None:
        return False
    low, high = bounds
    return took_ms > high or (low is not None and took_ms < low)


def _outcome(rng: random.Random, fail_rate: float) -> tuple[int, int]:
    if rng.random() >= fail_rate:
        return 0, 0
    if rng.random() < 0.1:
        return 128 + SIGKILL, SIGKILL  # killed (OOM killer, an operator)
    return rng.choice([1, 2, 127]), 0


def _watched_between(after: float, before: float, start: float, tick: float) -> bool:
    """Whether a watcher pass falls strictly after `after` and strictly before `before`."""
    first = start + (int((after - start) // tick) + 1) * tick
    return first < before


async def run_core(specs: list[JobSpec], events: list[Event], start: float, end: float,
                   tick: float, state_dir: Path, zone: str
                   ) -> tuple[MibSnapshot, dict[JobKey, Counter[str]], Store]:
    """Feed the events to the real core tick by tick; return its snapshot and notifications."""
    now = start
    clock: Callable[[], float] = lambda: now  # noqa: E731
    # one owner has every job here: lift the per-owner notification budget (tested on its own)
    config = Config(watch_interval=tick, cron_timezone=zone, notifications_per_owner=10**9)
    store = Store(state_dir)
    core = AgentCore(store, config, clock=clock)
    watcher = Watcher(core, config, wall=clock, mono=clock)
    snapshot = MibSnapshot()
    core.add_listener(snapshot)
    queue = core.notifications.subscribe(maxsize=100_000)
    seen: dict[JobKey, Counter[str]] = {}
    writer = asyncio.create_task(core.run())
    await core.set_discovered([
        Discovered(JobKey(OWNER_UID, s.name), OWNER, s.schedule) for s in specs])
    events = sorted(events, key=lambda e: e.time)
    i = 0
    while now < end:
        now = min(now + tick, end)
        batch = []
        while i < len(events) and events[i].time <= now:
            batch.append(events[i])
            i += 1
        await asyncio.gather(*(core.submit(OWNER_UID, OWNER, e) for e in batch))
        await watcher.tick()
        _drain(queue, seen)
    core.stop()
    await writer
    return snapshot, seen, store


def _drain(queue: asyncio.Queue[Notification], seen: dict[JobKey, Counter[str]]) -> None:
    while not queue.empty():
        n = queue.get_nowait()
        seen.setdefault(n.job.key, Counter())[n.kind.value] += 1


def nms_counts(snapshot: MibSnapshot, name: str) -> Counter[str]:
    """The job's counters as an NMS reads them: cronJobTable column instances."""
    index = mibvalues.row_index(OWNER, name)
    found: Counter[str] = Counter()
    for counter, column in COLUMNS.items():
        entry = snapshot.get(mib.column_oid(column) + index)
        found[counter] = int(entry.value) if hasattr(entry, "value") else -1
    return found


def compare(specs: list[JobSpec], truths: dict[str, Truth], snapshot: MibSnapshot,
            notified: dict[JobKey, Counter[str]], reloaded: dict[JobKey, Any]) -> list[str]:
    """Every difference between the agent's views and the ground truth, one line each."""
    problems = []
    kinds = [k.value for k in NotificationKind]
    for spec in specs:
        key, truth = JobKey(OWNER_UID, spec.name), truths[spec.name]
        seen = nms_counts(snapshot, spec.name)
        stored = reloaded.get(key)
        for counter in COUNTERS:
            want = truth.counts[counter]
            if seen[counter] != want:
                problems.append(f"{spec.name}: {counter} NMS {seen[counter]} != truth {want}")
            got = getattr(stored.record, counter) if stored else None
            if got != want:
                problems.append(f"{spec.name}: {counter} in the database {got} != truth {want}")
        sent = notified.get(key, Counter())
        for kind in kinds:
            if sent[kind] != truth.notifications[kind]:
                problems.append(f"{spec.name}: {kind} notifications {sent[kind]} != truth "
                                f"{truth.notifications[kind]}")
    return problems


def local_start(zone: str, wall: str) -> float:
    """The instant of wall-clock time `wall` (2026-03-07T22:00) in `zone`."""
    return datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(zone)).timestamp()


def soak(hours: float, jobs: int, tick: float = 60.0, seed: int = 7,
         state_dir: Path | None = None, zone: str = "UTC", start: float = SIM_START
         ) -> dict[str, Any]:
    """Run the soak with cron in `zone`; the result holds totals, timing and the mismatches."""
    end = start + hours * 3600
    if (end - start) % tick:
        raise ValueError("the span must be a whole number of ticks")
    specs = crontab(jobs, hours)
    rng = random.Random(seed)
    events: list[Event] = []
    truths: dict[str, Truth] = {}
    starts = cron_starts(specs, zone, start, end + LOOKAHEAD)
    for spec in specs:
        job_events, truths[spec.name] = simulate(spec, starts[spec.name], start, end, tick, rng)
        events += job_events
    with tempfile.TemporaryDirectory(dir=state_dir) as tmp:
        began = time.perf_counter()
        snapshot, notified, store = asyncio.run(
            run_core(specs, events, start, end, tick, Path(tmp), zone))
        elapsed = time.perf_counter() - began
        store.close()
        reopened = Store(Path(tmp))
        reloaded = reopened.load_jobs()
        reopened.close()
    problems = compare(specs, truths, snapshot, notified, reloaded)
    totals: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    for truth in truths.values():
        totals.update(truth.counts)
        notes.update(truth.notifications)
    return {"zone": zone, "start": datetime.fromtimestamp(start, ZoneInfo(zone)).isoformat(),
            "simulated_hours": hours, "jobs": len(specs), "events": len(events),
            "tick_seconds": tick, "wall_seconds": round(elapsed, 2),
            "truth": {c: totals[c] for c in COUNTERS},
            "notifications": dict(sorted(notes.items())), "mismatches": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated span (default 24)")
    parser.add_argument("--jobs", type=int, default=100, help="crontab lines (default 100)")
    parser.add_argument("--tick", type=float, default=60.0,
                        help="simulated seconds between watcher passes (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--zone", default="UTC",
                        help="cron's zone, e.g. America/New_York (default UTC)")
    parser.add_argument("--start", metavar="YYYY-MM-DDTHH:MM",
                        help="local wall-clock start in --zone, e.g. 2026-03-07T22:00 to cross "
                             "New York's spring change (default 2026-01-05T00:00 UTC)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    start = local_start(args.zone, args.start) if args.start else SIM_START
    result = soak(args.hours, args.jobs, args.tick, args.seed, zone=args.zone, start=start)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"soak: {result['jobs']} jobs, {result['simulated_hours']:g} simulated hours from "
              f"{result['start']} ({result['zone']}), "
              f"{result['events']} events, watcher every {result['tick_seconds']:g} s "
              f"(simulated), {result['wall_seconds']:.1f} s wall")
        print("  ground truth: " + ", ".join(f"{k} {v}" for k, v in result["truth"].items()))
        print("  notifications: " + ", ".join(
            f"{k} {v}" for k, v in result["notifications"].items()))
        for line in result["mismatches"]:
            print("  MISMATCH " + line)
        print("  NMS view == ground truth" if not result["mismatches"]
              else f"  {len(result['mismatches'])} mismatches")
    return 1 if result["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
