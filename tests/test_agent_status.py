"""`cronwrap status` (table, --json, --nagios) against a real agent, and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_support import Agent, cronwrap_command, request, run_cronwrap
from cronwrap.wrapper.events import Finished, Overlapped, Started, new_event_id

pytestmark = pytest.mark.integration


def status(agent: Agent | None, *args: str, socket: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    path = socket or (agent.socket if agent else Path("/nonexistent/agent.sock"))
    return subprocess.run([sys.executable, "-m", "cronwrap.wrapper.status", *args],
                          env={**os.environ, "CRONWRAP_SOCKET": str(path)},
                          capture_output=True, text=True, timeout=60, check=False)


def finish(agent: Agent, job: str, exit_status: int = 0, timed_out: bool = False) -> None:
    start = time.time()
    request(agent.socket, Finished(new_event_id(), job, start + 1.5, 4242, start_time=start,
                                   exit_status=exit_status, duration_ms=1500,
                                   timed_out=timed_out).to_wire())


def test_table_lists_the_jobs(agent: Agent) -> None:
    finish(agent, "backup")
    finish(agent, "sync", exit_status=3)
    result = status(agent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["OWNER", "NAME", "STATE"]
    assert lines[1].split()[:3] == ["root", "backup", "ok"]
    assert lines[2].split()[:3] == ["root", "sync", "failed"]
    assert "1.5s" in lines[2] and "1/1/0" in lines[2]


def test_json_and_names(agent: Agent) -> None:
    finish(agent, "backup")
    finish(agent, "sync")
    result = status(agent, "--json", "sync")
    jobs = json.loads(result.stdout)
    assert [job["name"] for job in jobs] == ["sync"] and result.returncode == 0
    assert jobs[0]["runs"] == 1 and jobs[0]["last_duration_ms"] == 1500
    missing = status(agent, "nosuch")
    assert missing.returncode == 1 and "no job named nosuch" in missing.stderr


@pytest.mark.parametrize(("outcome", "code", "word"), [
    ("ok", 0, "OK"), ("failed", 2, "CRITICAL"), ("timedOut", 2, "CRITICAL"),
    ("overlapped", 1, "WARNING"),
])
def test_nagios_exit_codes(agent: Agent, outcome: str, code: int, word: str) -> None:
    finish(agent, "fine")
    if outcome == "failed":
        finish(agent, "job", exit_status=1)
    elif outcome == "timedOut":
        finish(agent, "job", exit_status=124, timed_out=True)
    elif outcome == "overlapped":
        request(agent.socket, Started(new_event_id(), "job", time.time(), 4242).to_wire())
        request(agent.socket, Overlapped(new_event_id(), "job", time.time(), 4343,
                                         holder_pid=4242).to_wire())
    else:
        finish(agent, "job")
    result = status(agent, "--nagios")
    assert result.returncode == code
    line = result.stdout.strip()
    assert line.startswith(f"CRONWRAP {word} - ") and "\n" not in line
    assert " | jobs=2;;;0 " in line
    if code:
        assert f"root/job {outcome}" in line


def test_nagios_unknown_job_and_unreachable_agent(agent: Agent) -> None:
    finish(agent, "fine")
    unknown = status(agent, "--nagios", "fine", "ghost")
    assert unknown.returncode == 3 and "unknown job ghost" in unknown.stdout
    assert "'fine_duration'=1.500s" in unknown.stdout
    down = status(None, "--nagios")
    assert down.returncode == 3 and down.stdout.startswith("CRONWRAP UNKNOWN - cannot reach")


def test_unreachable_agent_and_bad_names_are_one_line_errors() -> None:
    down = status(None)
    assert down.returncode == 69 and len(down.stderr.splitlines()) == 1
    assert "cannot reach the agent" in down.stderr
    bad = status(None, "../etc")
    assert bad.returncode == 64 and "invalid job name" in bad.stderr
    assert "Traceback" not in down.stderr + bad.stderr


@pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed yet")
def test_cronwrap_status_dispatches_here(agent: Agent) -> None:
    finish(agent, "backup")
    command = cronwrap_command()
    assert command is not None
    result = subprocess.run([command, "status", "--json", "--socket", str(agent.socket)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert [job["name"] for job in json.loads(result.stdout)] == ["backup"]


@pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed yet")
def test_wrapper_runs_reach_the_agent(agent: Agent, tmp_path: Path) -> None:
    logs = str(tmp_path / "logs")
    assert run_cronwrap(agent, "-n", "good", "--log-dir", logs, "--", "true").returncode == 0
    assert run_cronwrap(agent, "-n", "bad", "--log-dir", logs, "--", "false").returncode == 1
    jobs = agent.status()
    assert (jobs["root/good"]["state"], jobs["root/good"]["runs"]) == ("ok", 1)
    assert (jobs["root/bad"]["state"], jobs["root/bad"]["last_exit_status"]) == ("failed", 1)
