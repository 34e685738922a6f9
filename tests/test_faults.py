"""Fault injection (issue 7): each test breaks one real part and checks counts stay exact.

Sizes: CRONWRAP_FAULT_SCALE=ci (the default, what CI runs) or CRONWRAP_FAULT_SCALE=full (the
issue's numbers). Each test prints its figures (run with -s) and records them as properties.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from agent_support import Agent, wait_for
from cronwrap.agent import mib, mibvalues
from cronwrap.wrapper.events import MAX_MESSAGE_BYTES, Finished, Started, new_event_id
from cronwrap.wrapper.spool import spool_event
from netsnmp import SnmpdMaster, free_port, have_netsnmp, snmp
from wrapper_helpers import process_gone

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FULL = os.environ.get("CRONWRAP_FAULT_SCALE", "ci") == "full"
WRAPPER = [sys.executable, "-m", "cronwrap.wrapper.cli"]
needs_netsnmp = pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")


def scale(ci: int, full: int) -> int:
    return full if FULL else ci


def figure(record_property: Any, name: str, value: object) -> None:
    """Print one measured figure (visible with -s) and record it in the JUnit report."""
    print(f"FIGURE {name} = {value}")
    record_property(name, value)


def oid_text(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


JOB_COUNT_OID = oid_text(mib.scalar_oid(mib.Scalar.cronJobCount) + (0,))


def wrapper_argv(base: Path, agent: Agent, job: str, *command: str,
                 options: tuple[str, ...] = (), spool: Path | None = None) -> list[str]:
    """A real `cronwrap` run reporting to `agent`, with private log, lock and config paths."""
    config = base / "cronwrap.toml"
    if not config.exists():
        config.write_text("# empty: everything is a flag\n")
    return [*WRAPPER, "--socket", str(agent.socket), "--spool-dir", str(spool or agent.spool),
            "--log-dir", str(base / "log"), "--lock-dir", str(base / "lock"),
            "--config", str(config), "--keep", "2", "-n", job, *options, "--", *command]


def run_wrapper(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def spool_files(agent: Agent) -> list[Path]:
    directory = agent.spool / str(os.getuid())
    return sorted(directory.glob("*.json")) if directory.exists() else []


def log_text(agent: Agent) -> str:
    return agent.log.read_text(errors="replace") if agent.log.exists() else ""


STARTED_LINE = re.compile(r"first spool pass since the start: (\d+) spooled events applied")


def spooled_applied_at_starts(agent: Agent) -> list[int]:
    return [int(n) for n in STARTED_LINE.findall(log_text(agent))]


def restart_and_wait(agent: Agent, starts_before: int) -> None:
    """Start the agent again and wait until its start-up spool drain has been logged."""
    agent.start()
    wait_for(lambda: len(spooled_applied_at_starts(agent)) > starts_before,
             "the agent's start-up line", proc=agent.proc, log=agent.log)


# --- 1. the agent SIGKILLed during a storm of wrapped runs ----------------------------------

@pytest.mark.timeout(scale(300, 3600))
def test_agent_sigkilled_during_a_storm_of_wrapped_runs(tmp_path: Path,
                                                        record_property: Any) -> None:
    runs, kills = scale(600, 5000), scale(5, 20)
    agent = Agent(tmp_path / "agent",
                  extra=["--spool-interval", "3600", "--watch-interval", "3600"]).start()
    wait_for(lambda: spooled_applied_at_starts(agent), "the agent's start-up line")
    jobs = [f"storm-{i}" for i in range(8)]
    plan = [(jobs[i % len(jobs)], "false" if i % 3 == 0 else "true") for i in range(runs)]
    kill_after = {runs * (k + 1) // (kills + 1) for k in range(kills)}
    truth: dict[str, Counter[str]] = {job: Counter() for job in jobs}
    try:
        with ThreadPoolExecutor(20) as pool:
            futures = {pool.submit(run_wrapper, wrapper_argv(tmp_path, agent, job, command)): job
                       for job, command in plan}
            for done, future in enumerate(as_completed(futures), start=1):
                result, job = future.result(), futures[future]
                assert result.returncode in (0, 1, 75), (result.returncode, result.stderr)
                outcome = {0: "ok", 1: "failed", 75: "overlapped"}[result.returncode]
                truth[job][outcome] += 1
                if done in kill_after:
                    agent.kill()
                    restart_and_wait(agent, len(spooled_applied_at_starts(agent)))
        assert agent.stop() == 0
        restart_and_wait(agent, len(spooled_applied_at_starts(agent)))  # the final drain
        assert spool_files(agent) == []
        got = agent.status()
    finally:
        agent.close()
    lost = doubled = 0
    for job, counts in truth.items():
        row = got[f"root/{job}"]
        expected = {"runs": counts["ok"] + counts["failed"], "failures": counts["failed"],
                    "overlaps": counts["overlapped"]}
        for field, value in expected.items():
            lost += max(0, value - row[field])
            doubled += max(0, row[field] - value)
    total_events = sum(2 * (c["ok"] + c["failed"]) + c["overlapped"] for c in truth.values())
    spooled = sum(spooled_applied_at_starts(agent))
    figure(record_property, "storm_runs", runs)
    figure(record_property, "storm_agent_kills", kills)
    figure(record_property, "storm_events", total_events)
    figure(record_property, "storm_events_spooled", spooled)
    figure(record_property, "storm_events_delivered_live", total_events - spooled)
    figure(record_property, "storm_lost", lost)
    figure(record_property, "storm_double_counted", doubled)
    assert (lost, doubled) == (0, 0)
    assert spooled > 0  # the kills did make wrappers spool


# --- 2. snmpd restarted during walks -------------------------------------------------------

@dataclass(frozen=True)
class Walk:
    began: float
    ended: float
    ok: bool
    output: str


def subtree_answers(address: str) -> bool:
    probe = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "1", "-r", "0", address,
                 JOB_COUNT_OID, check=False)
    return probe.returncode == 0 and f"{JOB_COUNT_OID} = Gauge32" in probe.stdout


def walk_until(address: str, row_oid: str, stop: threading.Event, walks: list[Walk]) -> None:
    """Walk the subtree in a loop; a walk is good when it ends with the job's row in it."""
    root = oid_text(mib.ROOT)
    while not stop.is_set():
        began = time.monotonic()
        proc = snmp("snmpwalk", "-On", "-v2c", "-c", "public", "-t", "2", "-r", "1", address,
                    root, check=False)
        ok = proc.returncode == 0 and JOB_COUNT_OID in proc.stdout and row_oid in proc.stdout
        walks.append(Walk(began, time.monotonic(), ok, "" if ok else proc.stdout + proc.stderr))


def two_more(walks: list[Walk]) -> Any:
    count = len(walks)
    return lambda: len(walks) >= count + 2


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@needs_netsnmp
def test_snmpd_restarted_during_walks(tmp_path: Path, record_property: Any) -> None:
    restarts = scale(3, 10)
    master = SnmpdMaster(tmp_path / "snmpd")
    master.start()
    agent = Agent(tmp_path / "agent", extra=["--agentx", f"unix:{master.agentx_socket}"])
    walks: list[Walk] = []
    windows: list[tuple[float, float]] = []
    reregister: list[float] = []
    stop = threading.Event()
    try:
        agent.start()
        assert run_wrapper(wrapper_argv(tmp_path, agent, "walked", "true")).returncode == 0
        row_oid = oid_text(mib.column_oid(mib.Column.cronJobRuns)
                           + mibvalues.row_index("root", "walked"))
        wait_for(lambda: subtree_answers(master.address), "the subtree registered")
        walker = threading.Thread(target=walk_until, args=(master.address, row_oid, stop, walks))
        walker.start()
        for _ in range(restarts):
            wait_for(two_more(walks), "two walks between restarts")
            killed = time.monotonic()
            master.restart()
            ready = time.monotonic()
            wait_for(lambda: subtree_answers(master.address), "the subtree re-registered", 60)
            answering = time.monotonic()
            windows.append((killed, answering))
            reregister.append(answering - ready)
        wait_for(two_more(walks), "two walks after the last restart")
        stop.set()
        walker.join(timeout=60)  # before anything is stopped: the last walk must end cleanly
    finally:
        stop.set()
        agent.close()
        master.stop()

    def in_window(walk: Walk) -> bool:
        return any(walk.began <= end and walk.ended >= start for start, end in windows)

    outside = [walk for walk in walks if not walk.ok and not in_window(walk)]
    figure(record_property, "snmpd_restarts", restarts)
    figure(record_property, "walks", len(walks))
    figure(record_property, "walks_failed_in_restart_windows",
           sum(not walk.ok for walk in walks if in_window(walk)))
    figure(record_property, "walks_failed_outside_restart_windows", len(outside))
    figure(record_property, "reregister_seconds_p50", round(percentile(reregister, 0.5), 3))
    figure(record_property, "reregister_seconds_max", round(max(reregister), 3))
    assert outside == []
    assert sum(walk.ok for walk in walks) >= 2 * restarts


# --- 3. the state disk full ----------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs for the state dir (we run as root); skipped where mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the state dir: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; return it."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
        for size in (4096, 512, 1):  # the last partial blocks too
            try:
                while True:
                    fh.write(chunk[:size])
            except OSError:
                pass
    return filler


def status_json(agent: Agent) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WRAPPER, "status", "--socket", str(agent.socket), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)


@needs_netsnmp
def test_state_disk_full(tmp_path: Path, small_tmpfs: Path, record_property: Any) -> None:
    port = free_port()
    agent = Agent(tmp_path / "agent", extra=[
        "--state-dir", str(small_tmpfs / "state"), "--listen", f"udp:127.0.0.1:{port}",
        "--spool-interval", "1"])
    during = scale(10, 40)
    try:
        agent.start()
        for _ in range(3):
            assert run_wrapper(wrapper_argv(tmp_path, agent, "before", "true")).returncode == 0
        assert spool_files(agent) == []  # all acknowledged
        filler = fill(small_tmpfs)
        for i in range(during):
            command = "false" if i % 2 else "true"
            result = run_wrapper(wrapper_argv(tmp_path, agent, "during", command))
            assert result.returncode == (1 if i % 2 else 0), result.stderr
        spooled_while_full = len(spool_files(agent))
        answer = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "2", "-r", "1",
                      f"127.0.0.1:{port}", JOB_COUNT_OID)
        status = status_json(agent)
        time.sleep(2)  # let a few periodic drains fail too
        log_while_full = log_text(agent)
        filler.unlink()
        wait_for(lambda: spool_files(agent) == [], "the spool drained after space returned")
        rows = agent.status()
        wait_for(lambda: "works again" in log_text(agent), "the recovery line")
    finally:
        agent.close()
    failure_lines = [line for line in log_while_full.splitlines() if "cannot" in line]
    figure(record_property, "disk_full_events_spooled", spooled_while_full)
    figure(record_property, "disk_full_log_lines", len(failure_lines))
    print("\n".join(failure_lines[:5]))
    assert spooled_while_full == 2 * during  # every event refused and spooled, none acked
    assert answer.stdout.strip() == f"{JOB_COUNT_OID} = Gauge32: 1"
    assert status.returncode == 0 and '"before"' in status.stdout, status.stderr
    assert "Traceback" not in log_while_full
    assert len(failure_lines) == 1, failure_lines
    assert rows["root/before"]["runs"] == 3
    assert (rows["root/during"]["runs"], rows["root/during"]["failures"]) == (during, during // 2)


# --- 4. a flooded spool directory ----------------------------------------------------------

def flood(agent: Agent, runs: int, jobs: int) -> Counter[str]:
    """Spool `runs` started+finished pairs with the wrapper's own spool_event; returns truth."""
    truth: Counter[str] = Counter()
    start = time.time() - runs - 60
    with patch("os.fsync"):  # durability is not under test here; 3 ms a file is
        for i in range(runs):
            job, failed = f"flood-{i % jobs}", i % 4 == 0
            truth[f"{job} runs"] += 1
            truth[f"{job} failures"] += failed
            for event in (Started(new_event_id(), job, start + i, 100 + i),
                          Finished(new_event_id(), job, start + i + 0.5, 100 + i,
                                   start_time=start + i, exit_status=int(failed),
                                   duration_ms=500)):
                spool_event(str(agent.spool), os.getuid(), event.id, event.to_wire())
    return truth


GARBAGE = {
    "garbage.json": b"this is not JSON\n",
    "wrong-schema.json": b'{"v":1,"type":"finished","id":"x"}\n',
    "oversized.json": b'{"v":1,"pad":"' + b"x" * (MAX_MESSAGE_BYTES + 100) + b'"}\n',
    "deeply-nested.json": b"[" * 5000 + b"\n",  # once a RecursionError that stopped the drain
}
LEFT_ALONE = (".in-flight.tmp", "README.txt")  # a wrapper mid-write, not a spool file


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_flooded_spool_is_drained_exactly_while_live_events_are_acked(
        tmp_path: Path, record_property: Any) -> None:
    files = scale(5000, 20000)
    agent = Agent(tmp_path / "agent", extra=["--spool-interval", "1", "--watch-interval", "3600"])
    make_spool_root(agent)
    truth = flood(agent, files // 2, 10)
    user_dir = agent.spool / str(os.getuid())
    for name, data in {**GARBAGE, **{n: b"x\n" for n in LEFT_ALONE}}.items():
        (user_dir / name).write_bytes(data)
        (user_dir / name).chmod(0o600)
    live_spool = tmp_path / "live-spool"  # where the live run would spool: not drained
    try:
        began = time.monotonic()
        agent.start()
        live = run_wrapper(wrapper_argv(tmp_path, agent, "live", "true", spool=live_spool))
        left_during_live = len(spool_files(agent))
        wait_for(lambda: spool_files(agent) == [], "the flooded spool drained", timeout=600,
                 proc=agent.proc, log=agent.log)
        drained_after = time.monotonic() - began
        rows = agent.status()
        assert agent.proc is not None
        hwm = vm_hwm_kib(agent.proc.pid)
    finally:
        agent.close()
    log = log_text(agent)
    figure(record_property, "flood_spool_files", files)
    figure(record_property, "flood_files_left_when_live_run_acked", left_during_live)
    figure(record_property, "flood_drain_seconds", round(drained_after, 1))
    figure(record_property, "flood_agent_vmhwm_mib", round(hwm / 1024, 1))
    assert live.returncode == 0, live.stderr
    assert not live_spool.exists() or list(live_spool.rglob("*.json")) == []  # acked live
    assert rows["root/live"]["runs"] == 1
    assert left_during_live > 0  # the live run really happened during the drain
    for job in {key.split()[0] for key in truth}:
        assert (rows[f"root/{job}"]["runs"], rows[f"root/{job}"]["failures"]) == (
            truth[f"{job} runs"], truth[f"{job} failures"])
    assert not [name for name in GARBAGE if (user_dir / name).exists()]
    # docs/agent.md: spool: a user's spool: DIR: NAME refused and removed: REASON
    refusals = re.findall(r"spool: a user's spool: \S+: (\S+) refused and removed: ", log)
    assert len(refusals) == 1 and refusals[0] in GARBAGE, refusals  # one line per dir a minute
    assert all((user_dir / name).exists() for name in LEFT_ALONE)
    assert "Traceback" not in log
    assert hwm < 300 * 1024


def make_spool_root(agent: Agent) -> None:
    """The spool root as the agent creates it (01733), so the wrapper's code path is the same."""
    agent.spool.mkdir(parents=True)
    agent.spool.chmod(0o1733)


# --- 5. a job that ignores SIGTERM ----------------------------------------------------------

def _counted(agent: Agent, name: str) -> dict[str, Any] | None:
    row = agent.status(name).get(f"root/{name}")
    return row if row and row["runs"] else None


@needs_netsnmp
def test_job_ignoring_sigterm_is_killed_and_reported_as_timed_out(
        tmp_path: Path, record_property: Any) -> None:
    port = free_port()
    agent = Agent(tmp_path / "agent", extra=["--listen", f"udp:127.0.0.1:{port}",
                                             "--spool-interval", "0.2"]).start()
    pids = tmp_path / "pids"
    script = ('echo $$ >> "$1"; trap "" TERM; '
              'sh -c \'echo $$ >> "$1"; sleep 30 & echo $! >> "$1"; wait\' child "$1" & '
              'sleep 30 & echo $! >> "$1"; wait')
    try:
        began = time.monotonic()
        result = run_wrapper(wrapper_argv(tmp_path, agent, "stubborn", "sh", "-c", script,
                                          "job", str(pids),
                                          options=("--timeout", "1s", "--kill-after", "1s")))
        elapsed = time.monotonic() - began
        job_pids = [int(line) for line in pids.read_text().split()]
        # Delivered live, or spooled when a loaded machine stretched the 1 s budget: either way
        # the run is counted once the agent has it.
        row = wait_for(lambda: _counted(agent, "stubborn"), "the timed-out run to be counted")
        column = mib.column_oid(mib.Column.cronJobTimeouts) + mibvalues.row_index("root",
                                                                                  "stubborn")
        answer = snmp("snmpget", "-On", "-v2c", "-c", "public", "-t", "2", "-r", "1",
                      f"127.0.0.1:{port}", oid_text(column)).stdout
    finally:
        agent.close()
    figure(record_property, "sigterm_ignored_wrapper_seconds", round(elapsed, 2))
    assert result.returncode == 124, result.stderr
    assert "timed out (exit 124)" in result.stderr
    assert len(job_pids) == 4  # the shell, its sleep, a child shell and its sleep (grandchild)
    assert [pid for pid in job_pids if not process_gone(pid)] == []
    assert (row["timeouts"], row["runs"], row["state"]) == (1, 1, "timedOut")
    assert answer.strip().endswith("Counter32: 1"), answer
