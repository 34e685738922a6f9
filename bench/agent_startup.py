#!/usr/bin/env python3
"""Agent start-up: wall and CPU time from exec to READY=1 with a stored table of N jobs, against
the same agent with an empty table, measured in the same run.

Run by hand from the repository root:
    .venv/bin/python bench/agent_startup.py [--jobs 10000] [--durations 20] [--repeats 5] [--json]

Each job is stored (through the agent's own Store) as a restarted agent finds it: an hourly
schedule, 5 kept runs and `--durations` successful durations (the learned duration bounds'
sample, duration_window 20 by default).  The agent runs with --agentx at an address where no
snmpd listens (it is READY without snmpd) and NOTIFY_SOCKET set to a datagram socket of ours;
the time to READY=1 is taken when the datagram arrives, the agent's CPU time (utime + stime of
/proc/PID/stat) at that moment too (CPU time moves far less than wall time on a loaded machine).
The empty and the full state are started alternately, REPEATS times each; medians and the
spread (min-max) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cronwrap.agent.config import Config
from cronwrap.agent.model import JobKey, JobRecord, JobState, RunRecord
from cronwrap.agent.store import Job, Store
from cronwrap.agent.transitions.durations import learn
from cronwrap.wrapper.events import Cadence, Finished, new_event_id

AGENT = [sys.executable, "-m", "cronwrap.agent.main"]
TICKS = os.sysconf("SC_CLK_TCK")
RUNS = 5  # kept runs per job: the default run_history
T0 = 1_795_000_000.0  # wall clock of the stored runs


def stored_job(i: int, durations: int, config: Config) -> Job:
    """Job i as an agent would have stored it: `durations` successful runs learnt, the last
    one through the agent's own transitions.durations.learn."""
    cadence = Cadence(schedule=f"{i % 60} * * * *")
    sample = tuple(1000 + (i * 37 + n * 101) % 900 for n in range(durations))
    history = tuple(RunRecord(n + 1, T0 + 3600 * n, sample[-1], 0, 0, JobState.ok, False)
                    for n in range(RUNS))
    key = JobKey(1000 + i % 50, f"job-{i:05d}")
    record = JobRecord(key, f"user{i % 50}", runs=RUNS, last_exit_status=0, last_start=T0,
                       last_success=T0, last_duration_ms=sample[-1], state=JobState.ok,
                       last_result=JobState.ok, next_expected=T0 + 3600, history=history)
    job = Job(record, cadence, T0 + 1, reported=True, duration_sample=sample[:-1])
    last = Finished(new_event_id(), key.name, T0 + 1, 10, start_time=T0,
                    duration_ms=sample[-1], cadence=cadence)
    return learn(job, last, None, cadence, config)


def prepare(state: Path, jobs: int, durations: int) -> None:
    state.mkdir(parents=True)
    store = Store(state)
    config = Config()
    store.commit([stored_job(i, durations, config) for i in range(jobs)], [], [], {})
    store.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_once(base: Path, state: Path) -> tuple[float, float]:
    """(wall seconds, agent CPU seconds) from exec to READY=1."""
    run = base / "run"
    run.mkdir(exist_ok=True)
    (base / "root").mkdir(exist_ok=True)
    notify_path = run / "notify"
    notify_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
        argv = [*AGENT, "--event-socket", str(run / "agent.sock"), "--state-dir", str(state),
                "--spool-dir", str(base / "spool"), "--crontab-root", str(base / "root"),
                "--agentx", f"unix:{run / 'no-snmpd'}", "--log-level", "warning"]
        began = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            notify.settimeout(300)
            while b"READY=1" not in notify.recv(4096).split(b"\n"):
                pass
            wall = time.perf_counter() - began
            cpu = cpu_seconds(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    return wall, cpu


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 4), "min": round(min(values), 4),
            "max": round(max(values), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--durations", type=int, default=20, help="learnt durations per job")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronwrap-startup-") as tmp:
        base = Path(tmp)
        states = {0: base / "state-0", args.jobs: base / f"state-{args.jobs}"}
        for jobs, state in states.items():
            prepare(state, jobs, args.durations)
        samples: dict[int, list[tuple[float, float]]] = {jobs: [] for jobs in states}
        for _ in range(args.repeats):  # interleaved: drift affects both alike
            for jobs, state in states.items():
                samples[jobs].append(start_once(base, state))
    result = {
        "jobs": args.jobs, "durations": args.durations, "repeats": args.repeats,
        "ready_s": {str(jobs): spread([wall for wall, _ in s]) for jobs, s in samples.items()},
        "ready_cpu_s": {str(jobs): spread([cpu for _, cpu in s]) for jobs, s in samples.items()},
    }
    if args.json:
        print(json.dumps(result))
        return
    for jobs in samples:
        wall, cpu = result["ready_s"][str(jobs)], result["ready_cpu_s"][str(jobs)]
        print(f"{jobs:>6} jobs x {args.durations} durations: READY after {wall['median']:.2f} s "
              f"({wall['min']:.2f}-{wall['max']:.2f}), agent CPU {cpu['median']:.2f} s "
              f"({cpu['min']:.2f}-{cpu['max']:.2f})")


if __name__ == "__main__":
    main()
