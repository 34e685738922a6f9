"""Time-driven states with a real agent: missed and overrunning runs, lost wrappers, crontabs."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, request, wait_for
from croniter import croniter
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\nmin_every = 1.0\n")  # a 1 s cadence, below the 60 s floor
    running = Agent(tmp_path, extra=["--watch-interval", "0.1", "--config", str(config)]).start()
    yield running
    running.close()


def test_a_job_that_stops_starting_is_missed_once_per_missed_slot(agent: Agent) -> None:
    start = time.time() - 3598.0  # the next start is due in two seconds
    cadence = Cadence(every=3600.0, grace=0.3)
    request(agent.socket, Started(new_event_id(), "hourly", start, os.getpid(),
                                  cadence=cadence).to_wire())
    request(agent.socket, Finished(new_event_id(), "hourly", start, os.getpid(),
                                   start_time=start, duration_ms=10, cadence=cadence).to_wire())
    assert agent.status()["root/hourly"]["next_expected"] == pytest.approx(start + 3600)
    job = wait_for(lambda: _state(agent, "hourly", "missed"), "the job to be missed")
    assert job["misses"] == 1
    assert job["next_expected"] > start + 3600  # the next slot, not the missed one
    time.sleep(1.0)  # ten more watch passes
    assert agent.status()["root/hourly"]["misses"] == 1
    now = time.time()
    request(agent.socket, Finished(new_event_id(), "hourly", now, os.getpid(), start_time=now,
                                   duration_ms=10, cadence=cadence).to_wire())
    job = agent.status()["root/hourly"]
    assert (job["state"], job["misses"]) == ("ok", 1)


def test_a_short_cadence_is_missed_again_every_slot(agent: Agent) -> None:
    start = time.time()
    cadence = Cadence(every=1.0, grace=0.2)
    request(agent.socket, Started(new_event_id(), "tick", start, os.getpid(),
                                  cadence=cadence).to_wire())
    request(agent.socket, Finished(new_event_id(), "tick", start, os.getpid(), start_time=start,
                                   duration_ms=10, cadence=cadence).to_wire())
    wait_for(lambda: _state(agent, "tick", "missed"), "the first miss")
    job = wait_for(lambda: _misses_at_least(agent, 2), "a second miss, one slot later")
    assert job["state"] == "missed"


def _state(agent: Agent, name: str, state: str) -> dict | None:
    job = agent.status().get(f"root/{name}")
    return job if job and job["state"] == state else None


def _misses_at_least(agent: Agent, count: int) -> dict | None:
    job = agent.status()["root/tick"]
    return job if job["misses"] >= count else None


def test_a_run_past_its_max_runtime_is_overrunning(agent: Agent) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        request(agent.socket, Started(new_event_id(), "long", time.time(), sleeper.pid,
                                      cadence=Cadence(max_runtime=1.0)).to_wire())
        assert agent.status()["root/long"]["state"] == "running"
        job = wait_for(lambda: _state(agent, "long", "overrunning"), "overrunning")
        assert job["running_pid"] == sleeper.pid and job["misses"] == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_vanished_wrapper_does_not_stay_running(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\n# seconds a wrapper pid may be gone\ndead_pid_grace = 0.2\n")
    agent = Agent(tmp_path, extra=["--watch-interval", "0.1", "--config", str(config)]).start()
    try:
        gone = subprocess.Popen(["true"])
        gone.wait()
        request(agent.socket, Started(new_event_id(), "lost", time.time(), gone.pid).to_wire())
        job = wait_for(lambda: _state(agent, "lost", "wrapperLost"), "state wrapperLost")
        assert job["running_pid"] == gone.pid and job["runs"] == 0
        assert "is gone without a finish event; state set to wrapperLost" in agent.log.read_text()
    finally:
        agent.close()


def write_crontabs(root: Path) -> None:
    (root / "etc/cron.d").mkdir(parents=True)
    (root / "var/spool/cron/crontabs").mkdir(parents=True)
    (root / "etc/crontab").write_text(
        "SHELL=/bin/sh\n# m h dom mon dow user command\n"
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
        "*/5 * * * * root /usr/bin/cronwrap -n sys-sync -- /usr/bin/true\n")
    (root / "etc/cron.d/backup").write_text(
        "@daily root cronwrap --name nightly-backup --timeout 3600 -- /usr/local/bin/backup\n"
        "@reboot root cronwrap --name=on-boot -- /bin/true\n"
        "0 3 * * * nosuchuser cronwrap -n ghost -- /bin/true\n")
    (root / "etc/cron.d/ignored.dpkg-old").write_text("* * * * * root cronwrap -n old -- true\n")
    (root / "var/spool/cron/crontabs/nobody").write_text(
        "# user crontab: no user field\n@hourly cronwrap -n report -- /home/report.sh\n"
        "*/10 * * * * /bin/echo not wrapped\n")
    os.chmod(root / "var/spool/cron/crontabs/nobody", 0o600)  # as crontab(1) leaves it


def test_crontab_discovery_from_a_fixture_tree(tmp_path: Path) -> None:
    write_crontabs(tmp_path / "root")
    agent = Agent(tmp_path).start()
    try:
        jobs = agent.status()
    finally:
        agent.close()
    assert sorted(jobs) == ["nobody/report", "root/nightly-backup", "root/sys-sync"]
    now = time.time()
    expected = {
        "root/sys-sync": croniter("*/5 * * * *", now).get_next(float),
        "root/nightly-backup": croniter("0 0 * * *", now).get_next(float),
        "nobody/report": croniter("0 * * * *", now).get_next(float),
    }
    for name, job in jobs.items():
        assert job["state"] == "unknown" and job["runs"] == 0
        assert job["next_expected"] == pytest.approx(expected[name], abs=1)
    assert jobs["nobody/report"]["owner_uid"] == pwd.getpwnam("nobody").pw_uid
    assert jobs["root/sys-sync"]["cadence"] == {"schedule": "*/5 * * * *"}
