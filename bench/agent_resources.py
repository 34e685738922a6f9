#!/usr/bin/env python3
"""Agent footprint: resident memory at 0, 1,000 and 10,000 jobs with 5 kept runs each, and idle
CPU and wakeups with 10,000 scheduled jobs (from events, and from 10 users' crontabs).

Run by hand from the repository root:  .venv/bin/python bench/agent_resources.py [--jobs 10000]

Starts a private snmpd (AgentX master) and cronwrap-agent with both --agentx and --listen, so
both front ends hold their view of the table.  Memory is VmRSS and VmHWM from
/proc/PID/status, read once the agent is idle with 0 jobs and again after each size was reached
through the event socket (50 concurrent clients, one Finished event per connection, as wrappers
do; RUNS finished runs per job, each declaring an hourly schedule at minute N % 60, so every
job is scheduled; the per-owner cap is raised in a --config file since all jobs belong to one
uid).  With --crontabs, a second agent discovers the same number of jobs from the crontabs of
10 system users (hourly lines, never run) under its own crontab root, scanning them every 10 s,
and its idle rates are measured too.

Idle windows start SETTLE (15) seconds after the last job was made (the watcher's first look
at each new or changed job is start-up work, not idleness).  Wakeups: over SECONDS of idleness,
the growth of voluntary_ctxt_switches plus nonvoluntary_ctxt_switches summed over every thread
in /proc/PID/task/*/status - each switch is the process leaving the CPU, i.e. one wake-up's
worth of work.  Counted the same way in the same windows for baselines: an idle `sleep`, an idle
asyncio loop (`asyncio.run(Event().wait())`), and snmpd itself; also the CPU time each used
(utime + stime from /proc/PID/stat).  The agent's own figures at 0 jobs are the baseline for its
figures at scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from agent_support import Agent  # noqa: E402
from cronwrap.agent import mib  # noqa: E402
from cronwrap.wrapper.events import Cadence, Finished, new_event_id  # noqa: E402
from ingest import deliver  # noqa: E402
from netsnmp import SnmpdMaster, free_port, snmp, wait_until  # noqa: E402

COUNT_OID = ".".join(map(str, mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)))
IDLE_ASYNCIO = "import asyncio; asyncio.run(asyncio.Event().wait())"
SENDERS = 50
RUNS = 5  # finished runs per job: the default run_history keeps 5
SIZES = (1_000, 10_000)
CRONTAB_USERS = 10
DISCOVERY_INTERVAL = 10  # seconds between crontab scans in the --crontabs agent
SETTLE = 15.0  # seconds from the last job made to the idle window: the watcher's first looks
TICKS = os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def memories(pids: dict[str, int]) -> dict[str, dict[str, int]]:
    return {name: memory_kib(pid) for name, pid in pids.items()}


def switches(pid: int) -> int:
    """Voluntary plus involuntary context switches of every thread of `pid`."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except FileNotFoundError:  # a worker thread that just ended
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def idle_rates(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """Wakeups/s and CPU ms/s of each process over the same window."""
    before = {name: (switches(pid), cpu_seconds(pid)) for name, pid in pids.items()}
    time.sleep(seconds)
    rates = {}
    for name, pid in pids.items():
        woke, cpu = switches(pid) - before[name][0], cpu_seconds(pid) - before[name][1]
        rates[name] = {"wakeups_per_s": round(woke / seconds, 2),
                       "cpu_ms_per_s": round(cpu * 1000 / seconds, 2)}
    return rates


def hourly_run(job: int, run: int) -> Finished:
    """The job's run `run` (of RUNS, the last one a minute ago), hourly at minute job % 60."""
    start = time.time() - 60 - (RUNS - 1 - run) * 3600
    return Finished(new_event_id(), f"job-{job:05d}", start + 1, os.getpid(), start_time=start,
                    duration_ms=1000, cadence=Cadence(schedule=f"{job % 60} * * * *"))


async def fill(sock: Path, first: int, last: int) -> None:
    """Jobs first..last-1, RUNS runs each: SENDERS concurrent clients, one event a connection."""
    events = iter([(job, run) for run in range(RUNS) for job in range(first, last)])

    async def sender() -> None:
        for job, run in events:
            await deliver(sock, hourly_run(job, run))

    await asyncio.gather(*(sender() for _ in range(SENDERS)))


def job_count(address: str) -> int:
    out = snmp("snmpget", "-v2c", "-c", "public", "-Oqv", address, COUNT_OID, check=False).stdout
    return int(out) if out.strip().isdigit() else -1


def baselines() -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    return subprocess.Popen(["sleep", "3600"]), subprocess.Popen([sys.executable, "-c",
                                                                 IDLE_ASYNCIO])


def stop(agent: Agent, *others: subprocess.Popen[bytes]) -> None:
    for proc in others:
        proc.kill()
        proc.wait()
    if agent.proc is not None:
        agent.stop()


def measure(jobs: int, seconds: float, base: Path) -> dict[str, Any]:
    base.mkdir()
    snmpd = SnmpdMaster(base / "snmpd")
    config = base / "agent.toml"
    config.write_text(f"[agent]\nmax_jobs_per_owner = {jobs + 1}\n")
    listen = f"127.0.0.1:{free_port()}"
    agent = Agent(base / "agent", extra=[
        "--config", str(config), "--agentx", f"unix:{snmpd.agentx_socket}",
        "--listen", f"udp:{listen}", "--log-level", "warning"])
    sleeper, idle_loop = baselines()
    try:
        snmpd.start()
        agent.start()
        assert agent.proc is not None and snmpd.proc is not None
        wait_until(lambda: job_count(snmpd.address) == 0 and job_count(listen) == 0, 30,
                   "both front ends to answer")
        time.sleep(2.0)  # let start-up work settle
        pids = {"agent": agent.proc.pid, "snmpd": snmpd.proc.pid, "asyncio_idle": idle_loop.pid,
                "sleep": sleeper.pid}
        result: dict[str, Any] = {"jobs": jobs, "runs": RUNS, "seconds": seconds,
                                  "memory_kib": {"0": memories(pids)},
                                  "idle": {"0": idle_rates(pids, seconds)}, "fill_seconds": {}}
        made = 0
        for size in [size for size in SIZES if size < jobs] + [jobs]:
            began = time.perf_counter()
            asyncio.run(fill(agent.socket, made, size))
            result["fill_seconds"][str(size)] = round(time.perf_counter() - began, 2)
            made = size
            wait_until(lambda n=size: job_count(snmpd.address) == n and job_count(listen) == n,
                       60, f"both front ends to count {size} jobs")
            time.sleep(2.0)
            result["memory_kib"][str(size)] = memories(pids)
        time.sleep(SETTLE)
        result["idle"][str(jobs)] = idle_rates(pids, seconds)
    finally:
        stop(agent, sleeper, idle_loop)
        snmpd.stop()
    return result


def crontab_users() -> list[str]:
    """CRONTAB_USERS system users other than root: their crontabs make the discovered jobs."""
    users = [user.pw_name for user in pwd.getpwall() if 0 < user.pw_uid < 1000]
    if len(users) < CRONTAB_USERS:
        raise SystemExit(f"--crontabs needs {CRONTAB_USERS} system users besides root")
    return sorted(users)[:CRONTAB_USERS]


def measure_crontabs(jobs: int, seconds: float, base: Path) -> dict[str, Any]:
    """Idle rates of an agent whose `jobs` jobs come from 10 users' crontabs (hourly lines),
    scanned every DISCOVERY_INTERVAL seconds (6 times as often as by default) so that every idle
    window holds scans."""
    base.mkdir()
    config = base / "agent.toml"
    config.write_text(f"[agent]\nmax_jobs_per_owner = {jobs + 1}\n"
                      f"discovery_interval = {DISCOVERY_INTERVAL}\n")
    listen = f"127.0.0.1:{free_port()}"
    agent = Agent(base / "agent", extra=["--config", str(config), "--listen", f"udp:{listen}",
                                         "--log-level", "warning"])
    spool = agent.crontabs / "var/spool/cron/crontabs"
    spool.mkdir(parents=True)
    users = crontab_users()
    per_user = jobs // len(users)
    for user in users:
        (spool / user).write_text("".join(f"{n % 60} * * * * cronwrap -n job-{n:05d} -- true\n"
                                          for n in range(per_user)))
        (spool / user).chmod(0o600)  # as crontab(1) leaves it: cron reads it
    sleeper, idle_loop = baselines()
    try:
        agent.start()
        assert agent.proc is not None
        wait_until(lambda: job_count(listen) == per_user * len(users), 120,
                   f"the agent to discover {per_user * len(users)} jobs")
        time.sleep(SETTLE)
        pids = {"agent": agent.proc.pid, "asyncio_idle": idle_loop.pid, "sleep": sleeper.pid}
        return {"jobs": per_user * len(users), "users": len(users), "seconds": seconds,
                "memory_kib": memories(pids), "idle": idle_rates(pids, seconds)}
    finally:
        stop(agent, sleeper, idle_loop)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to create (default 10000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each idle window (default 10)")
    parser.add_argument("--crontabs", action="store_true",
                        help="also measure an agent discovering the jobs in 10 system users' "
                             "crontabs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronwrap-res-") as tmp:
        result = measure(args.jobs, args.seconds, Path(tmp) / "events")
        if args.crontabs:
            result["crontabs"] = measure_crontabs(args.jobs, args.seconds, Path(tmp) / "tabs")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"cronwrap-agent with --agentx and --listen; {args.jobs} jobs with {RUNS} runs each "
          f"created in {sum(result['fill_seconds'].values()):.1f} s")
    for jobs, mems in result["memory_kib"].items():
        print(f"  memory with {jobs} jobs:")
        for name, mem in mems.items():
            print(f"    {name:<14} VmRSS {mem['VmRSS'] / 1024:7.1f} MiB, "
                  f"VmHWM {mem['VmHWM'] / 1024:7.1f} MiB")
    for jobs, rates in result["idle"].items():
        print(f"  idle over {args.seconds:g} s with {jobs} jobs:")
        for name, rate in rates.items():
            print(f"    {name:<14} {rate['wakeups_per_s']:7.2f} wakeups/s  "
                  f"{rate['cpu_ms_per_s']:6.2f} ms CPU/s")
    if "crontabs" in result:
        tabs = result["crontabs"]
        print(f"  idle over {args.seconds:g} s with {tabs['jobs']} jobs from {tabs['users']} "
              "users' crontabs:")
        for name, rate in tabs["idle"].items():
            print(f"    {name:<14} {rate['wakeups_per_s']:7.2f} wakeups/s  "
                  f"{rate['cpu_ms_per_s']:6.2f} ms CPU/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
