#!/usr/bin/env python3
"""Status-flood benchmark: another user's event round trip while a user floods status requests.

Run by hand, as root (the flood runs as `nobody` through setpriv):
    .venv/bin/python bench/status_flood.py [--jobs 10000] [--flooders 4] [--seconds 5] [--json]

Starts cronwrap-agent on a private state holding JOBS rows (10 owners), then measures root's
event round trip (connect, send a Finished event, wait for the ack) for SECONDS alone, the
same-run baseline, and again for SECONDS while FLOODERS connections of `nobody` ask for the
status of a job that does not exist, one request after another (issue 18 measured 3 ms -> 129
ms with 4 such connections: each request sorted every job). Prints the medians, their ratio,
and how many flood requests the agent answered a second.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cronwrap.agent.model import JobKey, JobRecord
from cronwrap.agent.store import Job, Store
from cronwrap.wrapper.events import Finished, StatusRequest, new_event_id

FLOOD = """
import socket, sys
request = sys.argv[2].encode()
with socket.socket(socket.AF_UNIX) as sock:
    sock.connect(sys.argv[1])
    replies = sock.makefile("rb")
    count = 0
    try:
        while True:
            sock.sendall(request)
            replies.readline()
            count += 1
    except KeyboardInterrupt:
        pass
    print(count, flush=True)
"""


def seed(state: Path, jobs: int) -> None:
    state.mkdir(parents=True)
    store = Store(state)
    store.commit([Job(JobRecord(JobKey(1000 + index % 10, f"job{index:05d}"),
                                f"user{index % 10}", runs=1)) for index in range(jobs)],
                 [], [], {})
    store.close()


def round_trips(path: Path, seconds: float) -> list[float]:
    """Root's event round trips (seconds), one after another, for `seconds`."""
    took = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        now = time.time()
        wire = Finished(new_event_id(), "victim", now, os.getpid(), start_time=now,
                        duration_ms=1).to_wire()
        began = time.perf_counter()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(wire)
            assert sock.makefile("rb").readline() == b'{"ok":true}\n'
        took.append(time.perf_counter() - began)
        time.sleep(0.01)
    return took


def start_agent(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = base / "run" / "agent.sock"
    crontabs = base / "root"
    crontabs.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronwrap.agent.main", "--event-socket", str(sock),
         "--state-dir", str(base / "state"), "--spool-dir", str(base / "spool"),
         "--crontab-root", str(crontabs)],
        stdout=subprocess.DEVNULL, stderr=open(base / "agent.log", "wb"))  # noqa: SIM115
    deadline = time.monotonic() + 60
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the agent did not start: {(base / 'agent.log').read_text()}")
        time.sleep(0.05)
    return proc, sock


def flood(sock: Path, flooders: int) -> list[subprocess.Popen[str]]:
    nobody = pwd.getpwnam("nobody")
    request = StatusRequest(jobs=("no-such-job",)).to_wire().decode()
    return [subprocess.Popen(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                              "--clear-groups", sys.executable, "-c", FLOOD, str(sock), request],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(flooders)]


def measure(jobs: int, flooders: int, seconds: float) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="cronwrap-bench-"))
    base.chmod(0o755)
    try:
        seed(base / "state", jobs)
        agent, sock = start_agent(base)
        try:
            round_trips(sock, 1.0)  # warm up
            alone = round_trips(sock, seconds)
            procs = flood(sock, flooders)
            time.sleep(0.5)
            began = time.monotonic()
            flooded = round_trips(sock, seconds)
            for proc in procs:
                proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: it prints its count
            outputs = [proc.communicate() for proc in procs]
            if not all(out.strip() for out, _ in outputs):
                raise SystemExit(f"a flooder failed: {outputs[0][1].strip()}")
            served = sum(int(out) for out, _ in outputs)
            rate = served / (time.monotonic() - began + 0.5)
        finally:
            agent.terminate()
            agent.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    alone_ms = statistics.median(alone) * 1000
    flooded_ms = statistics.median(flooded) * 1000
    return {"jobs": jobs, "flooders": flooders, "alone_ms": round(alone_ms, 2),
            "flooded_ms": round(flooded_ms, 2), "ratio": round(flooded_ms / alone_ms, 2),
            "flood_requests_per_s": round(rate)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.jobs, args.flooders, args.seconds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.jobs:,} jobs: another user's event round trip, median: "
              f"{result['alone_ms']} ms alone, {result['flooded_ms']} ms under "
              f"{args.flooders} status flooders ({result['ratio']}x); "
              f"{result['flood_requests_per_s']} flood requests/s answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
