#!/usr/bin/env python3
"""Agent footprint: resident memory with 0 and 10,000 jobs, and idle wakeups per second.

Run by hand from the repository root:  .venv/bin/python bench/agent_resources.py [--jobs 10000]

Starts a private snmpd (AgentX master) and cronwrap-agent with both --agentx and --listen, so
both front ends hold their view of the table.  Memory is VmRSS and VmHWM from
/proc/PID/status (of the agent and of the baselines below), read once the agent is idle with
0 jobs and again after JOBS jobs were created
through the event socket (50 concurrent clients sending one Finished event each, as wrappers do;
the per-owner cap is raised in a --config file since all jobs belong to one uid).

Wakeups: over SECONDS of idleness, the growth of voluntary_ctxt_switches plus
nonvoluntary_ctxt_switches summed over every thread in /proc/PID/task/*/status - each switch is
the process leaving the CPU, i.e. one wake-up's worth of work.  Counted the same way in the same
windows for baselines: an idle `sleep`, an idle asyncio loop (`asyncio.run(Event().wait())`),
and snmpd itself; also the CPU time each used (utime + stime from /proc/PID/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from ingest import deliver, finished  # noqa: E402
from netsnmp import SnmpdMaster, free_port, snmp, wait_until  # noqa: E402

COUNT_OID = ".".join(map(str, mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)))
IDLE_ASYNCIO = "import asyncio; asyncio.run(asyncio.Event().wait())"
SENDERS = 50
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


async def fill(sock: Path, jobs: int) -> None:
    """Create `jobs` jobs: SENDERS concurrent clients, one Finished event per connection."""
    names = iter(range(jobs))

    async def sender() -> None:
        for i in names:
            await deliver(sock, finished(f"job-{i:05d}"))

    await asyncio.gather(*(sender() for _ in range(SENDERS)))


def job_count(address: str) -> int:
    out = snmp("snmpget", "-v2c", "-c", "public", "-Oqv", address, COUNT_OID, check=False).stdout
    return int(out) if out.strip().isdigit() else -1


def measure(jobs: int, seconds: float, base: Path) -> dict[str, Any]:
    snmpd = SnmpdMaster(base / "snmpd")
    config = base / "agent.toml"
    config.write_text(f"[agent]\nmax_jobs_per_owner = {jobs + 1}\n")
    listen = f"127.0.0.1:{free_port()}"
    agent = Agent(base / "agent", extra=[
        "--config", str(config), "--agentx", f"unix:{snmpd.agentx_socket}",
        "--listen", f"udp:{listen}", "--log-level", "warning"])
    sleeper = subprocess.Popen(["sleep", "3600"])
    idle_loop = subprocess.Popen([sys.executable, "-c", IDLE_ASYNCIO])
    try:
        snmpd.start()
        agent.start()
        assert agent.proc is not None and snmpd.proc is not None
        wait_until(lambda: job_count(snmpd.address) == 0 and job_count(listen) == 0, 30,
                   "both front ends to answer")
        time.sleep(2.0)  # let start-up work settle
        pids = {"agent": agent.proc.pid, "snmpd": snmpd.proc.pid, "asyncio_idle": idle_loop.pid,
                "sleep": sleeper.pid}
        result: dict[str, Any] = {"jobs": jobs, "seconds": seconds,
                                  "memory_kib": {"0": memories(pids)},
                                  "idle": {"0": idle_rates(pids, seconds)}}
        began = time.perf_counter()
        asyncio.run(fill(agent.socket, jobs))
        result["fill_seconds"] = round(time.perf_counter() - began, 2)
        wait_until(lambda: job_count(snmpd.address) == jobs and job_count(listen) == jobs, 30,
                   f"both front ends to count {jobs} jobs")
        time.sleep(2.0)
        result["memory_kib"][str(jobs)] = memories(pids)
        result["idle"][str(jobs)] = idle_rates(pids, seconds)
    finally:
        for proc in (sleeper, idle_loop):
            proc.kill()
            proc.wait()
        if agent.proc is not None:
            agent.stop()
        snmpd.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs to create (default 10000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of each idle window (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronwrap-res-") as tmp:
        result = measure(args.jobs, args.seconds, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"cronwrap-agent with --agentx and --listen; {args.jobs} jobs created in "
          f"{result['fill_seconds']:.1f} s")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
