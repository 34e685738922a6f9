"""A real agent process whose TZ is not UTC expects starts in cron's local time; --tz end to end."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from agent_support import Agent, cronwrap_command, request, run_cronwrap, wait_for
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

pytestmark = pytest.mark.integration


def next_wall_time(zone: str, hour: int, minute: int, after: float) -> float:
    """The first instant after `after` whose wall-clock time in `zone` is hour:minute."""
    today = datetime.fromtimestamp(after, ZoneInfo(zone)).date().toordinal()
    for ordinal in range(today, today + 3):
        day = date.fromordinal(ordinal)
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
        if moment.timestamp() > after:
            return moment.timestamp()
    raise AssertionError("no such time in three days")


def fields(moment: float, zone: str) -> str:
    """A yearly cron expression for the wall-clock minute of `moment` in `zone`."""
    t = datetime.fromtimestamp(moment, ZoneInfo(zone))
    return f"{t.minute} {t.hour} {t.day} {t.month} *"


@pytest.fixture(params=["America/New_York", "Asia/Kolkata"])
def zoned_agent(request: pytest.FixtureRequest, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Agent, str]]:
    monkeypatch.setenv("TZ", request.param)  # the agent's environment, as cron.service's
    crontabs = tmp_path / "root/var/spool/cron/crontabs"
    crontabs.mkdir(parents=True)
    (crontabs / "root").write_text("47 10 * * * cronwrap -- /usr/local/bin/report\n")
    os.chmod(crontabs / "root", 0o600)  # as crontab(1) leaves it
    running = Agent(tmp_path, extra=["--watch-interval", "0.1"]).start()
    yield running, request.param
    running.close()


def test_next_expected_and_misses_follow_the_agents_local_zone(
        zoned_agent: tuple[Agent, str]) -> None:
    agent, zone = zoned_agent
    jobs = agent.status()
    # the crontab line without -n is expected under the wrapper's name, at 10:47 local time
    # (the agent read the crontab a moment ago: if 10:47 just passed, it expects tomorrow's)
    slot = next_wall_time(zone, 10, 47, time.time() - 60)
    assert jobs["root/report"]["next_expected"] in (slot, next_wall_time(zone, 10, 47, slot))

    last_minute = (time.time() // 60) * 60 - 60  # a minute that has passed everywhere
    local = Cadence(schedule=fields(last_minute, zone), grace=0.5)
    utc_fields = Cadence(schedule=fields(last_minute, "UTC"), grace=0.5)
    for name, cadence in (("local", local), ("utc-fields", utc_fields)):
        begun = last_minute - 60
        for event in (Started(new_event_id(), name, begun, os.getpid(), cadence),
                      Finished(new_event_id(), name, begun + 1, os.getpid(), start_time=begun,
                               duration_ms=1000, cadence=cadence)):
            assert request(agent.socket, event.to_wire())["ok"]
    # the slot that passed in local time is missed once...
    missed = wait_for(lambda: _missed(agent, "local"), "the local-time slot to be missed")
    assert missed["misses"] == 1
    # ...while the same fields read as UTC are hours away: no miss, expected in local time
    job = agent.status()["root/utc-fields"]
    assert (job["state"], job["misses"]) == ("ok", 0)
    t = datetime.fromtimestamp(last_minute, ZoneInfo("UTC"))
    walls = [datetime(year, t.month, t.day, t.hour, t.minute, tzinfo=ZoneInfo(zone)).timestamp()
             for year in (t.year, t.year + 1)]
    assert job["next_expected"] == min(w for w in walls if w > last_minute - 60) != last_minute


def _missed(agent: Agent, name: str) -> dict | None:
    job = agent.status()[f"root/{name}"]
    return job if job["state"] == "missed" else None


@pytest.mark.skipif(cronwrap_command() is None, reason="cronwrap is not installed")
def test_the_wrapper_carries_the_schedules_zone(tmp_path: Path) -> None:
    agent = Agent(tmp_path).start()
    try:
        for args in (["-n", "kolkata", "--tz", "Asia/Kolkata", "--schedule", "30 9 * * *"],
                     ["-n", "kolkata2", "--schedule", "CRON_TZ=Asia/Kolkata 30 9 * * *"]):
            done = run_cronwrap(agent, *args, "--", "true")
            assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
        jobs = agent.status()
        for name in ("root/kolkata", "root/kolkata2"):
            assert jobs[name]["cadence"] == {"schedule": "30 9 * * *", "tz": "Asia/Kolkata"}
            assert datetime.fromtimestamp(jobs[name]["next_expected"],
                                          ZoneInfo("Asia/Kolkata")).strftime("%H:%M") == "09:30"
        for args, problem in (
                (["--tz", "Mars/Olympus", "--schedule", "0 3 * * *"], "unknown time zone"),
                (["--tz", "../../etc/passwd"], "unknown time zone"),
                (["--tz", "UTC", "--schedule", "CRON_TZ=Asia/Kolkata 0 3 * * *"], "conflicts"),
                (["--schedule", "CRON_TZ=Asia/Kolkata"], "five-field cron expression")):
            done = run_cronwrap(agent, "-n", "bad", *args, "--", "true")
            assert done.returncode == 64 and problem in done.stderr, done.stderr
            assert done.stderr.count("\n") == 1
        assert "root/bad" not in agent.status()
    finally:
        agent.close()
