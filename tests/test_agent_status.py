"""`cronwrap status` (table, --json, --nagios) against a real agent, and its exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_support import Agent, cronwrap_command, request, run_cronwrap, wait_for
from cronwrap.wrapper.events import Cadence, Finished, Overlapped, Started, new_event_id

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


def table_rows(text: str) -> list[dict[str, str]]:
    """The status table as one dict per job, keyed by the header (cells are 2+ spaces apart)."""
    header, *lines = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
    assert all(len(cells) == len(header) for cells in lines), text
    return [dict(zip(header, cells, strict=True)) for cells in lines]


def test_table_lists_the_jobs(agent: Agent) -> None:
    finish(agent, "backup")
    finish(agent, "sync", exit_status=3)
    result = status(agent)
    assert result.returncode == 0, result.stderr
    backup, sync = table_rows(result.stdout)
    assert (backup["OWNER"], backup["NAME"], backup["STATE"]) == ("root", "backup", "ok")
    assert (sync["NAME"], sync["STATE"], sync["EXIT"], sync["DURATION"]) == (
        "sync", "failed", "3", "1.5s")
    assert [sync[column] for column in ("RUNS", "FAILED", "TIMEOUTS", "OVERLAPS", "MISSES")] == [
        "1", "1", "0", "0", "0"]


def test_table_shows_timeouts_and_misses(tmp_path: Path) -> None:
    """A job with a timeout and a miss must not read as a plain `ok` with runs/failures."""
    agent = Agent(tmp_path, extra=["--watch-interval", "0.1"]).start()
    try:
        start = time.time() - 3598.0  # hourly; the next start is due in two seconds
        cadence = Cadence(every=3600.0, grace=0.3)
        request(agent.socket, Finished(new_event_id(), "hourly", start + 1, 4242,
                                       start_time=start, exit_status=124, timed_out=True,
                                       duration_ms=1000, cadence=cadence).to_wire())
        wait_for(lambda: agent.status()["root/hourly"]["misses"] == 1, "the miss")
        now = time.time()
        request(agent.socket, Finished(new_event_id(), "hourly", now, 4242, start_time=now,
                                       duration_ms=10, cadence=cadence).to_wire())
        result = status(agent)
    finally:
        agent.close()
    (row,) = table_rows(result.stdout)
    assert row["STATE"] == "ok"
    assert [row[column] for column in ("RUNS", "FAILED", "TIMEOUTS", "OVERLAPS", "MISSES")] == [
        "2", "1", "1", "0", "1"]


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
    assert "'root/fine duration'=1.500s;;;0" in unknown.stdout  # perfdata names the owner
    other_owner = status(agent, "--nagios", "alice/fine")
    assert other_owner.returncode == 3 and "unknown job alice/fine" in other_owner.stdout
    named = status(agent, "--nagios", "root/fine")
    assert named.returncode == 0 and named.stdout.startswith("CRONWRAP OK - 1 jobs fine |")
    down = status(None, "--nagios")
    assert down.returncode == 3 and down.stdout.startswith("CRONWRAP UNKNOWN - cannot reach")


def test_unreachable_agent_and_bad_names_are_one_line_errors() -> None:
    down = status(None)
    assert down.returncode == 69 and len(down.stderr.splitlines()) == 1
    assert "cannot reach the agent" in down.stderr
    bad = status(None, "../etc")
    assert bad.returncode == 64 and "invalid job '../etc'" in bad.stderr
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


def test_nagios_with_no_jobs_at_all_is_unknown(agent: Agent) -> None:
    result = status(agent, "--nagios")
    assert result.returncode == 3
    assert result.stdout.startswith("CRONWRAP UNKNOWN - no jobs visible to root (uid 0)")
    assert result.stdout.rstrip().endswith("| jobs=0;;;0 ok=0;;;0 failed=0;;;0 running=0;;;0 "
                                           "overlapped=0;;;0 timedOut=0;;;0 missed=0;;;0 "
                                           "overrunning=0;;;0 unknown=0;;;0 paused=0;;;0 "
                                           "retired=0;;;0 wrapperLost=0;;;0 "
                                           "durationAnomaly=0;;;0")


def test_the_nagios_line_fits_in_an_nrpe_packet(agent: Agent) -> None:
    names = [f"job{number:02d}-" + "x" * 58 for number in range(60)]
    for name in names:
        finish(agent, name, exit_status=1)
    every = status(agent, "--nagios")
    named = status(agent, "--nagios", *names[:30])
    for result, total in ((every, 60), (named, 30)):
        line = result.stdout.rstrip("\n")
        assert result.returncode == 2 and "\n" not in line
        assert len(line.encode()) <= 1000, len(line.encode())
        summary, perfdata = line.split(" | ")
        assert summary.startswith(f"CRONWRAP CRITICAL - {total} of {total} jobs need attention: "
                                  f"root/{names[0]} failed, ")
        shown = summary.count(" failed")
        assert shown >= 1 and summary.endswith(f"and {total - shown} more")
        assert perfdata.startswith(f"jobs={total};;;0 ok=0;;;0 failed={total};;;0 ")
        assert all(re.fullmatch(r"'[^']+'=[0-9.]+s?;;;0|[A-Za-z]+=[0-9]+;;;0", item)
                   for item in re.findall(r"'[^']*'=\S+|\S+", perfdata)), perfdata


def test_status_of_a_named_job_shows_its_crontab_line(tmp_path: Path) -> None:
    """`cronwrap status JOB` says which crontab line the job is (cronJobCommandLine): the line
    as cron logs it, a long one cut to 255 characters; not for jobs the caller did not name."""
    agent = Agent(tmp_path)
    etc = agent.crontabs / "etc"
    etc.mkdir(parents=True)
    long_line = "cronwrap -n long -- /usr/local/bin/report " + "--flag " * 60
    (etc / "crontab").write_text("0 3 * * * root cronwrap -n backup -- /usr/local/bin/backup\n"
                                 f"0 4 * * * root {long_line}\n")
    agent.start()
    try:
        wait_for(lambda: {"root/backup", "root/long"} <= set(agent.status()), "the lines' rows")
        named = status(agent, "backup", "long")
        everything = status(agent)
    finally:
        agent.close()
    notes = named.stdout.splitlines()[3:]
    assert notes[0] == "root/backup: crontab line: cronwrap -n backup -- /usr/local/bin/backup"
    assert notes[1].startswith(f"root/long: crontab line: {long_line[:200]}")
    assert notes[1].endswith("[...]") and len(notes[1]) == len("root/long: crontab line: ") + 255
    assert "crontab line" not in everything.stdout
