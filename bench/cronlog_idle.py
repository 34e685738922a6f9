#!/usr/bin/env python3
"""The cost of following cron's log: agent wakeups and CPU with the journal source on vs off.

Run by hand from the repository root, as root (journald runs in a private mount namespace):
    .venv/bin/python bench/cronlog_idle.py [--seconds 20] [--noise 10] [--jobs 1]

Starts a private systemd-journald (tests/journald.py) and two cronwrap-agents side by side,
alike but for `cron_log`: one follows that journald's files, the other has cron_log = "off".
Over the same windows, for each agent and for two baselines (an idle asyncio loop and `sleep`),
it counts wakeups (voluntary plus involuntary context switches over all threads, as
bench/agent_resources.py does) and CPU time (utime + stime), in three phases:

- quiet: nothing writes to the journal;
- noise: other services write NOISE lines a second to the journal (the follower is woken by
  every journal change, cron's or not, and reads past what does not match);
- cron: cron's lines for JOBS job runs a second (CMD, a failure line, END), on top of nothing.

Prints one JSON object with --json, else a table.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from agent_resources import idle_rates  # noqa: E402
from agent_support import Agent, wait_for  # noqa: E402
from journald import PrivateJournald  # noqa: E402

IDLE_ASYNCIO = "import asyncio; asyncio.run(asyncio.Event().wait())"


class Sender:
    """Sends syslog datagrams to journald's /dev/log socket at a steady rate, in a thread."""

    def __init__(self, path: Path, lines: Callable[[int], list[str]], per_second: float) -> None:
        self.path = path
        self.lines = lines
        self.interval = 1.0 / per_second
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.sent = 0

    def run(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(str(self.path))
            next_at = time.monotonic()
            while not self.stop.is_set():
                for line in self.lines(self.sent):
                    sock.send(line.encode())
                self.sent += 1
                next_at += self.interval
                self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Sender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def noise(n: int) -> list[str]:
    return [f"<30>Nov 30 12:00:00 someservice[4242]: request {n} handled in 3 ms"]


def cron_run(n: int) -> list[str]:
    pid = 100000 + n
    command = f"/usr/local/bin/task-{n % 20}"
    return [f"<78>Nov 30 12:00:00 CRON[{pid - 1}]: (root) CMD ([{pid}] {command})",
            f"<78>Nov 30 12:00:00 CRON[{pid - 1}]: (CRON) error (grandchild #{pid} failed with "
            "exit status 1)",
            f"<78>Nov 30 12:00:00 CRON[{pid - 1}]: (root) END ([{pid}] {command})"]


def start_agent(base: Path, text: str) -> Agent:
    config = base / "agent.toml"
    base.mkdir(parents=True)
    config.write_text(text)
    return Agent(base / "agent", extra=["--config", str(config)]).start()


def measure(seconds: float, noise_per_s: float, jobs_per_s: float, base: Path) -> dict[str, Any]:
    journald = PrivateJournald(base / "journald").start()
    sleeper = subprocess.Popen(["sleep", "3600"])
    idle_loop = subprocess.Popen([sys.executable, "-c", IDLE_ASYNCIO])
    agents: list[Agent] = []
    try:
        on = start_agent(base / "on", f'[agent]\ncron_log_journal = "{journald.journal_dir}"\n')
        agents.append(on)
        off = start_agent(base / "off", '[agent]\ncron_log = "off"\n')
        agents.append(off)
        wait_for(lambda: "following cron's log" in on.log.read_text(), "the follower",
                 timeout=30)
        time.sleep(2.0)  # start-up settles
        assert on.proc is not None and off.proc is not None
        pids = {"agent cron_log on": on.proc.pid, "agent cron_log off": off.proc.pid,
                "asyncio_idle": idle_loop.pid, "sleep": sleeper.pid}
        result: dict[str, Any] = {"seconds": seconds, "noise_per_s": noise_per_s,
                                  "jobs_per_s": jobs_per_s, "phases": {}}
        result["phases"]["quiet"] = idle_rates(pids, seconds)
        with Sender(journald.syslog_socket, noise, noise_per_s):
            result["phases"]["noise"] = idle_rates(pids, seconds)
        with Sender(journald.syslog_socket, cron_run, jobs_per_s) as cron:
            result["phases"]["cron"] = idle_rates(pids, seconds)
        result["runs_sent"] = cron.sent
        wait_for(lambda: runs(on) == cron.sent, "every run sent applied", timeout=30)
        result["runs_applied"] = runs(on)
    finally:
        for proc in (sleeper, idle_loop):
            proc.kill()
            proc.wait()
        for agent in agents:
            agent.close()
        journald.stop()
    return result


def runs(agent: Agent) -> int:
    return sum(job["runs"] for job in agent.status().values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase (default 20)")
    parser.add_argument("--noise", type=float, default=10.0,
                        help="other services' journal lines a second (default 10)")
    parser.add_argument("--jobs", type=float, default=1.0,
                        help="cron job runs logged a second in the cron phase (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronlog-bench-") as tmp:
        result = measure(args.seconds, args.noise, args.jobs, Path(tmp))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'phase':8} {'process':20} {'wakeups/s':>10} {'CPU ms/s':>9}")
    for phase, by_process in result["phases"].items():
        for name, figures in by_process.items():
            print(f"{phase:8} {name:20} {figures['wakeups_per_s']:10.2f} "
                  f"{figures['cpu_ms_per_s']:9.2f}")
    print(f"runs sent {result['runs_sent']}, applied {result['runs_applied']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
