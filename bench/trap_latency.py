#!/usr/bin/env python3
"""Failure-to-trap latency: a failing `cronwrap -- false` to snmptrapd's line, vs agentxtrap.

Run by hand from the repository root:  .venv/bin/python bench/trap_latency.py [--runs 200]

Real parts only: a private snmpd (AgentX master, trap2sink to a private snmptrapd), and
cronwrap-agent --agentx registered with it.  Each round, alternately:
  - cronwrap: spawn `cronwrap -n latency -- sh -c 'date +%s.%N >STAMP; exit 1'`; the wrapper
    reports the failed run to the agent, which commits it (fsync), sends cronJobFailed as an
    AgentX Notify to snmpd, which sends an SNMPv2c trap to snmptrapd.  Latencies to snmptrapd's
    line: from the job's failure (the wall-clock stamp `date` wrote as the job's last act), and
    from just before the wrapper's spawn.  The wrapper's own exit comes after the trap (it
    reports first, then prints its failure summary), so it is no useful origin.
  - baseline: spawn Net-SNMP's C `agentxtrap` sending a trap through the same snmpd; latency
    from just before its spawn to snmptrapd's line.

How the line is timed: snmptrapd's own timestamps (%t, %h:%j:%k) have one-second resolution and
polling a log file adds up to the polling interval.  Instead snmptrapd logs to its stderr (-Le,
unbuffered) with a one-line format (-F); a thread blocked reading that pipe timestamps each line
with time.perf_counter() as it is written - the same monotonic clock as t0, microsecond
resolution, no polling (and time.time() beside it, to compare with the job's stamp).
Prints p50/p99 of each and the ratios to agentxtrap's spawn -> line.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from agent_support import Agent  # noqa: E402
from cronwrap.agent import mib  # noqa: E402
from cronwrap.agent.model import NotificationKind  # noqa: E402
from netsnmp import SnmpdMaster, free_port, snmp, wait_until  # noqa: E402

FAILED_OID = "." + ".".join(map(str, mib.notification_oid(NotificationKind.failed)))
BASELINE_OID = ".1.3.6.1.4.1.8072.9999.1"  # NET-SNMP-MIB::netSnmpPlaypen, for agentxtrap
COUNT_OID = ".".join(map(str, mib.scalar_oid(mib.Scalar.cronJobCount) + (0,)))
WAIT = 10.0


class TrapLines:
    """snmptrapd with -Le: every line it writes, stamped with perf_counter() on arrival."""

    def __init__(self, directory: Path) -> None:
        config = directory / "snmptrapd.conf"
        config.write_text("authCommunity log public\n")
        persist = directory / "trapd-persist"
        persist.mkdir()
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["snmptrapd", "-f", "-C", "-m", "", "-On", "-c", str(config), "-Le", "-F",
             r"TRAP %v\n", "-p", str(directory / "snmptrapd.pid"), f"udp:127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "SNMP_PERSISTENT_DIR": str(persist)})
        self.lines: queue.Queue[tuple[float, float, str]] = queue.Queue()
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()
        self.wait_for("NET-SNMP version")

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.put((time.perf_counter(), time.time(), raw.decode(errors="replace")))

    def wait_for(self, text: str) -> tuple[float, float]:
        """perf_counter() and time.time() when the next line with `text` came (earlier: dropped)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                stamp, wall, line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"no snmptrapd line with {text!r} within {WAIT:g} s") from None
            if text in line:
                return stamp, wall

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def spawn(argv: list[str], env: dict[str, str]) -> float:
    """Spawn argv with output discarded, wait for it; perf_counter() just before the spawn."""
    with open(os.devnull, "wb") as null:
        began = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, null.fileno(), 1), (os.POSIX_SPAWN_DUP2, null.fileno(), 2)])
        os.waitpid(pid, 0)
        return began


def summary(seconds: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3),
            "min_ms": round(min(seconds) * 1000, 3)}


def measure(runs: int, base: Path) -> dict[str, Any]:
    trapd = TrapLines(base)
    snmpd = SnmpdMaster(base / "snmpd", trap_port=trapd.port)
    agent = Agent(base / "agent", extra=["--agentx", f"unix:{snmpd.agentx_socket}",
                                         "--log-level", "warning"])
    try:
        snmpd.start()
        agent.start()
        wait_until(lambda: "No Such" not in snmp(
            "snmpget", "-v2c", "-c", "public", snmpd.address, COUNT_OID, check=False).stdout,
            30, "the agent to register with snmpd")
        work = base / "wrapper"
        env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"))
        cronwrap = [str(Path(sys.executable).with_name("cronwrap")), "--socket",
                    str(agent.socket), "--log-dir", str(work / "log"), "--lock-dir",
                    str(work / "lock"), "--spool-dir", str(work / "spool"), "-n", "latency",
                    "--", "/bin/sh", "-c", f"date +%s.%N >{work / 'stamp'}; exit 1"]
        agentxtrap = ["/usr/bin/agentxtrap", "-m", "", "-x", f"unix:{snmpd.agentx_socket}",
                      BASELINE_OID, BASELINE_OID + ".1", "s", "baseline"]
        samples: dict[str, list[float]] = {"job_exit": [], "cronwrap_spawn": [],
                                           "agentxtrap": []}
        for round_ in range(runs + 3):  # three warm-up rounds
            began = spawn(cronwrap, env)
            line, wall = trapd.wait_for(FAILED_OID)
            failed_at = float((work / "stamp").read_text())
            x_began = spawn(agentxtrap, env)
            x_line, _ = trapd.wait_for(BASELINE_OID)
            if round_ >= 3:
                samples["job_exit"].append(wall - failed_at)
                samples["cronwrap_spawn"].append(line - began)
                samples["agentxtrap"].append(x_line - x_began)
    finally:
        if agent.proc is not None:
            agent.stop()
        snmpd.stop()
        trapd.stop()
    result: dict[str, Any] = {"runs": runs, **{k: summary(v) for k, v in samples.items()}}
    for key in ("job_exit", "cronwrap_spawn"):
        result[key]["ratio_p50"] = round(
            result[key]["p50_ms"] / result["agentxtrap"]["p50_ms"], 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="measured rounds (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronwrap-trap-") as tmp:
        result = measure(args.runs, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"failure-to-trap latency over {args.runs} runs (cronwrap and agentxtrap alternate)")
    names = {"job_exit": "cronwrap: job failed -> trap line",
             "cronwrap_spawn": "cronwrap: wrapper spawned -> trap line",
             "agentxtrap": "baseline agentxtrap (C): spawned -> trap line"}
    for key, label in names.items():
        r = result[key]
        ratio = f"  {r['ratio_p50']:5.2f}x baseline (p50)" if "ratio_p50" in r else ""
        print(f"  {label:<46} p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
