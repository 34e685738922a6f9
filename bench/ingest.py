#!/usr/bin/env python3
"""Ingest benchmark: acknowledged events/s and ack latency of a real agent vs bare SQLite commits.

Run by hand:  .venv/bin/python bench/ingest.py [--senders 50] [--seconds 5] [--dir DIR] [--json]

Starts cronwrap-agent on a private socket and state dir, lets SENDERS concurrent clients each
connect, send one Finished event, wait for the ack and close (what a wrapper does), for SECONDS.
Then, in the same run and on the same filesystem, a bare sqlite3 loop does one durable commit
per event (WAL, synchronous=FULL: an applied-id insert plus a counter update) for SECONDS.
Prints both rates, the agent's p50/p99 ack latency and the ratio agent/bare (target >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cronwrap.wrapper.events import Finished, new_event_id


def finished(name: str) -> Finished:
    now = time.time()
    return Finished(new_event_id(), name, now, os.getpid(), start_time=now, duration_ms=1)


async def deliver(sock: Path, event: Finished) -> None:
    """What a wrapper does: connect, send the event, wait for the ack, close; exit unless ok."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(event.to_wire())
    reply = await reader.readline()
    writer.close()
    if reply != b'{"ok":true}\n':
        raise SystemExit(f"agent refused an event: {reply!r}")


async def sender(sock: Path, index: int, until: float, latencies: list[float]) -> None:
    while time.monotonic() < until:
        event = finished(f"bench{index % 20}")
        began = time.perf_counter()
        await deliver(sock, event)
        latencies.append(time.perf_counter() - began)


async def drive(sock: Path, senders: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    start = time.monotonic()
    until = start + seconds
    await asyncio.gather(*(sender(sock, i, until, latencies) for i in range(senders)))
    return len(latencies) / (time.monotonic() - start), latencies


def bare_sqlite(directory: Path, seconds: float) -> float:
    db = sqlite3.connect(directory / "bare.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE applied (id TEXT PRIMARY KEY, time REAL)")
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER)")
    db.execute("INSERT INTO counters VALUES ('events', 0)")
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO applied VALUES (?, ?)", (new_event_id(), time.time()))
        db.execute("UPDATE counters SET value = value + 1 WHERE name = 'events'")
        db.execute("COMMIT")
        count += 1
    rate = count / (time.monotonic() - start)
    db.close()
    return rate


def start_agent(base: Path) -> subprocess.Popen[bytes]:
    sock = base / "agent.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cronwrap.agent.main", "--event-socket", str(sock),
         "--state-dir", str(base / "state"), "--spool-dir", str(base / "spool"),
         "--crontab-root", str(base / "root"), "--log-level", "warning"])
    deadline = time.monotonic() + 30
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the agent did not start")
        time.sleep(0.05)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dir", type=Path, help="where to put the databases (default: /tmp)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        agent = start_agent(base)
        try:
            rate, latencies = asyncio.run(drive(base / "agent.sock", args.senders, args.seconds))
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait()
        bare = bare_sqlite(base, args.seconds)
    cuts = statistics.quantiles(latencies, n=100)
    if args.json:
        print(json.dumps({"senders": args.senders, "events": len(latencies),
                          "agent_events_per_s": round(rate), "bare_commits_per_s": round(bare),
                          "ack_p50_ms": round(cuts[49] * 1000, 3),
                          "ack_p99_ms": round(cuts[98] * 1000, 3), "ratio": round(rate / bare, 3)}))
        return 0
    print(f"agent: {rate:8.0f} acked events/s with {args.senders} senders "
          f"({len(latencies)} events), ack latency p50 {cuts[49] * 1000:.2f} ms, "
          f"p99 {cuts[98] * 1000:.2f} ms")
    print(f"bare sqlite3 (one durable commit per event): {bare:8.0f} commits/s")
    print(f"ratio agent/bare: {rate / bare:.2f} (target >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
