"""The real agent process over its real socket: counts, rejections, slow clients, restarts."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_support import Agent, request, send_or_spool, spool, wait_for
from cronwrap.wrapper.events import (
    MAX_MESSAGE_BYTES,
    Cadence,
    Finished,
    Overlapped,
    Started,
    new_event_id,
)

pytestmark = pytest.mark.integration


def stats_of(agent: Agent) -> tuple[int, int]:
    """(events_accepted, events_rejected) as persisted: read from the agent's database."""
    import sqlite3
    with sqlite3.connect(agent.state / "agent.db") as db:
        rows = dict(db.execute("SELECT name, value FROM counters"))
    return rows["events_accepted"], rows["events_rejected"]


def run_events(job: str, runs: int, exit_status: int = 0) -> list[Started | Finished]:
    events: list[Started | Finished] = []
    for _ in range(runs):
        start = time.time()
        events.append(Started(new_event_id(), job, start, os.getpid()))
        events.append(Finished(new_event_id(), job, start + 0.001, os.getpid(), start_time=start,
                               exit_status=exit_status, duration_ms=1))
    return events


def test_exact_counts_from_concurrent_clients(agent: Agent) -> None:
    def client(index: int) -> None:
        for event in run_events(f"job{index % 4}", 25, exit_status=index % 2):
            assert request(agent.socket, event.to_wire()) == {"ok": True}

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(client, range(16)))
    jobs = agent.status()
    assert sorted(jobs) == [f"root/job{i}" for i in range(4)]
    for i in range(4):
        job = jobs[f"root/job{i}"]
        assert job["runs"] == 100
        assert job["failures"] == (100 if i % 2 else 0)
        assert job["state"] == ("failed" if i % 2 else "ok")
        assert job["running_pid"] is None
    assert stats_of(agent) == (800, 0)


def send_without_reading(path: Path, wire: bytes) -> None:
    """Send an event as a wrapper whose time ran out: it stops reading first (SHUT_RD)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        sock.shutdown(socket.SHUT_RD)
        sock.sendall(wire)


def test_same_event_twice_counts_once(agent: Agent) -> None:
    """An event whose reply the wrapper did not read, sent again: acknowledged, counted once."""
    events = run_events("backup", 3)
    for event in events:
        send_without_reading(agent.socket, event.to_wire())
    for event in events:
        assert request(agent.socket, event.to_wire())["ok"]
    assert agent.status()["root/backup"]["runs"] == 3
    assert stats_of(agent)[0] == 6


def test_malformed_and_oversized_events_are_refused_and_counted(agent: Agent) -> None:
    good = Started(new_event_id(), "good", time.time(), os.getpid())
    bad_name = good.to_wire().replace(b'"good"', b'"../etc"')
    oversized = b'{"v":1,"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}\n'
    replies = [request(agent.socket, line) for line in (
        b"not json\n", b"[1,2]\n", b'{"v":99}\n', bad_name, oversized)]
    assert all(reply["ok"] is False for reply in replies)
    assert "not valid JSON" in replies[0]["error"]
    assert "schema version" in replies[2]["error"]
    assert "invalid job name" in replies[3]["error"]
    assert "byte limit" in replies[4]["error"]
    assert request(agent.socket, good.to_wire()) == {"ok": True}
    assert list(agent.status()) == ["root/good"]
    wait_for(lambda: stats_of(agent) == (1, 5), "five rejections persisted")
    assert agent.proc is not None and agent.proc.poll() is None


def test_slow_client_does_not_block_others(agent: Agent) -> None:
    with socket.socket(socket.AF_UNIX) as slow:
        slow.connect(str(agent.socket))
        slow.sendall(b'{"v":1,"type":"sta')  # and then nothing
        event = Started(new_event_id(), "quick", time.time(), os.getpid())
        assert request(agent.socket, event.to_wire(), timeout=5) == {"ok": True}
        slow.sendall(b'tus","jobs":[]}\n')
        reply = json.loads(slow.makefile("rb").readline())
    assert reply["ok"] is True and [job["name"] for job in reply["jobs"]] == ["quick"]


def test_many_idle_connections_do_not_stall_the_agent(tmp_path: Path) -> None:
    agent = Agent(tmp_path, extra=["--config", str(write_config(tmp_path, max_connections=20))])
    agent.start()
    try:
        idle = [socket.socket(socket.AF_UNIX) for _ in range(200)]
        for sock in idle:
            sock.connect(str(agent.socket))
        time.sleep(0.2)  # let the agent accept (and refuse) them
        for sock in idle:
            sock.close()
        event = Started(new_event_id(), "after", time.time(), os.getpid())
        wait_for(lambda: _try(agent, event), "the agent answers again")
        assert "root/after" in agent.status()
    finally:
        agent.close()


def _try(agent: Agent, event: Started) -> bool:
    try:
        return request(agent.socket, event.to_wire(), timeout=5)["ok"]
    except OSError:
        return False


def write_config(base: Path, **agent: object) -> Path:
    path = base / "agent.toml"
    lines = ["# test settings", "[agent]"] + [f"{k} = {v!r}" for k, v in agent.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_per_owner_job_cap(tmp_path: Path) -> None:
    agent = Agent(tmp_path, extra=["--config", str(write_config(tmp_path, max_jobs_per_owner=3))])
    agent.start()
    try:
        replies = [request(agent.socket, Started(new_event_id(), f"j{i}", time.time(),
                                                 os.getpid()).to_wire()) for i in range(5)]
        assert [r["ok"] for r in replies] == [True, True, True, False, False]
        assert "job limit reached" in replies[3]["error"]
        assert len(agent.status()) == 3
        assert request(agent.socket, Started(new_event_id(), "j0", time.time(),
                                             os.getpid()).to_wire())["ok"]
    finally:
        agent.close()


def test_state_machine_over_the_socket(agent: Agent) -> None:
    start = time.time()
    cadence = Cadence(every=3600, timeout=60)
    send = [
        Started(new_event_id(), "sync", start, 4242, cadence=cadence),
        Overlapped(new_event_id(), "sync", start + 1, 4343, holder_pid=4242, cadence=cadence),
        Finished(new_event_id(), "sync", start + 2, 4242, start_time=start, exit_status=124,
                 signal=15, duration_ms=2000, timed_out=True, log_path="/var/log/x.log"),
    ]
    seen = []
    for event in send:
        assert request(agent.socket, event.to_wire())["ok"]
        seen.append(dict(agent.status()["root/sync"]))
    assert seen[0]["state"] == "running" and seen[0]["running_pid"] == 4242
    assert seen[0]["next_expected"] == pytest.approx(start + 3600)
    assert seen[1]["state"] == "overlapped" and seen[1]["overlaps"] == 1
    final = seen[2]
    assert final["state"] == "timedOut"
    assert (final["runs"], final["failures"], final["timeouts"]) == (1, 1, 1)
    assert (final["last_exit_status"], final["last_signal"]) == (124, 15)
    assert final["last_duration_ms"] == 2000 and final["last_log_path"] == "/var/log/x.log"
    assert final["last_success"] is None and final["running_pid"] is None
    assert final["cadence"] == {"every": 3600, "timeout": 60}
    ok_start = start + 10
    success = Finished(new_event_id(), "sync", ok_start + 1, 9, start_time=ok_start,
                       duration_ms=5)
    assert request(agent.socket, success.to_wire())["ok"]
    final = agent.status()["root/sync"]
    assert final["state"] == "ok" and final["last_success"] == pytest.approx(ok_start)


def test_restart_keeps_counts(agent: Agent) -> None:
    for event in run_events("nightly", 7, exit_status=1):
        request(agent.socket, event.to_wire())
    request(agent.socket, b"junk\n")
    before = agent.status()
    wait_for(lambda: stats_of(agent) == (14, 1), "counters persisted")
    assert agent.stop() == 0
    assert not agent.socket.exists() or not agent.ready()
    agent.start()
    assert agent.status() == before
    assert stats_of(agent) == (14, 1)


def test_sigkill_during_burst_loses_nothing(agent: Agent) -> None:
    """Clients that spool what was not acked, an agent killed mid-burst: exact after drain."""
    outcomes: list[str] = []
    lock = threading.Lock()
    stop_sending = threading.Event()

    def client(index: int) -> None:
        for event in run_events(f"burst{index % 5}", 40):
            result = send_or_spool(agent.socket, agent.spool, event)
            with lock:
                outcomes.append(result)
        stop_sending.set()

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(client, i) for i in range(20)]
        wait_for(lambda: len(outcomes) > 300, "the burst under way")
        agent.kill()
        for future in futures:
            future.result()
    assert len(outcomes) == 20 * 80
    assert outcomes.count("spooled") > 0
    agent.start()
    wait_for(lambda: not list(agent.spool.glob("*/*.json")), "the spool drained")
    jobs = agent.status()
    assert {name: job["runs"] for name, job in jobs.items()} == {
        f"root/burst{i}": 160 for i in range(5)}
    assert all(job["state"] == "ok" for job in jobs.values())
    assert stats_of(agent) == (1600, 0)


def test_spool_finished_without_started_counts_and_applies_in_time_order(agent: Agent) -> None:
    now = time.time()
    older = Finished(new_event_id(), "late", now - 100, 77, start_time=now - 101, exit_status=2,
                     duration_ms=1000)
    newer = Finished(new_event_id(), "late", now - 10, 78, start_time=now - 11, duration_ms=1000)
    spool(agent.spool, 0, newer)
    spool(agent.spool, 0, older)
    wait_for(lambda: "root/late" in agent.status() and agent.status()["root/late"]["runs"] == 2,
             "spool drained (every 10 s)", timeout=40)
    job = agent.status()["root/late"]
    assert job["state"] == "ok" and job["failures"] == 1
    assert job["last_start"] == pytest.approx(now - 11)
    assert not list(agent.spool.glob("*/*.json"))
