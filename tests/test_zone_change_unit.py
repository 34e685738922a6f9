"""A change of cron's zone (issue 19): expected starts recomputed in the new zone, no false miss,
seen while the agent runs and across its restart, with Debian cron's rules for small moves."""

from __future__ import annotations

import asyncio
import os
import time
from calendar import timegm
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronwrap.agent import cronclock
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey, NotificationKind
from cronwrap.agent.sources import hostzone
from cronwrap.agent.store import Store
from cronwrap.agent.watch import Watcher
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

ZONEINFO = Path("/usr/share/zoneinfo")
KEY = JobKey(1000, "hourly")
HOURLY = Cadence(schedule="17 * * * *")
DAILY = Cadence(schedule="30 6 * * *")
# 10:00:00 UTC on 2027-01-15 (no DST anywhere near, in any of the zones used)
T0 = float(timegm((2027, 1, 15, 10, 0, 0)))


def utc(hour: int, minute: int, day: int = 15) -> float:
    return float(timegm((2027, 1, day, hour, minute, 0)))


@pytest.fixture
def localtime(tmp_path: Path) -> Iterator[Path]:
    """A private /etc/localtime: the process's zone is read from it (TZ=:FILE), as the
    agent reads the host's."""
    link = tmp_path / "localtime"
    link.symlink_to(ZONEINFO / "UTC")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = f":{link}"
    cronclock.reload_local_zone()
    yield link
    if saved is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = saved
    cronclock.reload_local_zone()


def relink(link: Path, zone: str) -> None:
    """What `timedatectl set-timezone ZONE` does to /etc/localtime: a new link, renamed over.

    glibc's tzset() reads a zone file named by TZ again only when TZ's text changes (with TZ
    unset, as on a host, it reads /etc/localtime again when that changed): the process's TZ
    names the same file by another path each time.
    """
    new = link.with_name("localtime.new")
    new.symlink_to(ZONEINFO / zone)
    new.replace(link)
    if os.environ.get("TZ", "").startswith(":"):
        other = f"{link.parent}/./{link.name}"
        os.environ["TZ"] = f":{link}" if os.environ["TZ"] == f":{other}" else f":{other}"


class Agent:
    """The core, its watcher and notifications on an injected clock, with a zone file."""

    def __init__(self, state: Path, link: Path) -> None:
        self.now = T0
        self.core = AgentCore(Store(state), Config(watch_interval=60), clock=lambda: self.now)
        self.queue = self.core.notifications.subscribe()
        zone = hostzone.HostZone(self.core.source_state(hostzone.NAME), path=str(link),
                                 environ={})
        self.watcher = Watcher(self.core, self.core.config, wall=lambda: self.now,
                               mono=lambda: self.now, zone=zone)

    async def ran(self, key: JobKey, cadence: Cadence, at: float) -> None:
        for event in (Started(new_event_id(), key.name, at, 10, cadence),
                      Finished(new_event_id(), key.name, at + 1, 10, start_time=at,
                               duration_ms=1000, cadence=cadence)):
            await self.core.submit(key.owner_uid, "alice", event)

    async def until(self, end: float) -> None:
        """Watcher passes every minute up to `end`."""
        while self.now < end:
            self.now += 60
            await self.watcher.tick()

    def expected(self, key: JobKey) -> float | None:
        (record,) = [r for r in self.core.records() if r.key == key]
        return record.next_expected

    def kinds(self) -> list[NotificationKind]:
        return [self.queue.get_nowait().kind for _ in range(self.queue.qsize())]


def test_a_zone_change_while_running_moves_every_slot_and_misses_nothing(
        tmp_path: Path, localtime: Path, caplog: pytest.LogCaptureFixture) -> None:
    daily = JobKey(1000, "daily")

    async def scenario() -> None:
        agent = Agent(tmp_path, localtime)
        writer = asyncio.create_task(agent.core.run())
        await agent.ran(KEY, HOURLY, utc(9, 17))
        await agent.ran(daily, DAILY, utc(6, 30))
        await agent.until(T0 + 300)
        assert (agent.expected(KEY), agent.expected(daily)) == (utc(10, 17), utc(6, 30, day=16))
        relink(localtime, "Asia/Kolkata")  # 10:05 UTC is 15:35 IST
        await agent.until(utc(10, 40))  # past 10:17 UTC + grace: the old zone's slot
        # :17 IST is :47 UTC; 06:30 IST is 01:00 UTC
        assert (agent.expected(KEY), agent.expected(daily)) == (utc(10, 47), utc(1, 0, day=16))
        assert agent.kinds() == []
        await agent.until(utc(11, 0))  # cron did not run it at 10:47 UTC: now that is a miss
        assert agent.kinds() == [NotificationKind.missed]
        agent.core.stop()
        await writer

    asyncio.run(scenario())
    assert "changed from UTC (UTC+0 h) to Asia/Kolkata (UTC+5.5 h)" in caplog.text


def test_a_zone_changed_while_the_agent_was_down_is_seen_at_its_start(
        tmp_path: Path, localtime: Path) -> None:
    async def first_run() -> None:
        agent = Agent(tmp_path, localtime)
        writer = asyncio.create_task(agent.core.run())
        await agent.ran(KEY, HOURLY, utc(9, 17))
        await agent.until(T0 + 60)
        assert agent.expected(KEY) == utc(10, 17)
        agent.core.stop()
        await writer

    async def after_restart() -> None:
        agent = Agent(tmp_path, localtime)
        writer = asyncio.create_task(agent.core.run())
        agent.now = T0 + 120
        await agent.until(utc(10, 40))
        assert agent.expected(KEY) == utc(10, 47)  # :17 IST
        assert agent.kinds() == []
        assert '"name":"Asia/Kolkata"' in (agent.core.source_state(hostzone.NAME) or "")
        agent.core.stop()
        await writer

    asyncio.run(first_run())
    relink(localtime, "Asia/Kolkata")
    cronclock.reload_local_zone()  # the new process reads the new zone
    asyncio.run(after_restart())


def test_a_small_move_back_holds_fixed_time_jobs_as_cron_does(localtime: Path) -> None:
    """Europe/Berlin (UTC+1) to UTC at 10:30 Berlin: cron's minute counter goes back an hour,
    and fixed-time jobs wait until it passes 10:30 again (cron.c, case 0), so 10:00 UTC that day
    does not run; wildcard jobs keep running."""
    relink(localtime, "UTC")
    cronclock.reload_local_zone()
    at = utc(9, 30)
    shift = cronclock.Change(int(at), 3600, 0)
    zone = cronclock.zone_named("")
    fixed, wildcard = cronclock.CronSpec("0 10 * * *"), cronclock.CronSpec("*/15 * * * *")
    assert cronclock.next_start(fixed, at, zone, True, shift) == utc(10, 0, day=16)
    assert cronclock.next_start(wildcard, at, zone, True, shift) == utc(9, 45)
    # a change of more than three hours is a clock correction: cron follows the new time
    far = cronclock.Change(int(at), 5 * 3600 + 1800, 0)
    assert cronclock.next_start(fixed, at, zone, True, far) == utc(10, 0)


def test_jobs_with_a_zone_or_period_of_their_own_keep_their_expectation(
        tmp_path: Path, localtime: Path) -> None:
    own_zone = JobKey(1000, "tokyo")
    periodic = JobKey(1000, "every")

    async def scenario() -> None:
        agent = Agent(tmp_path, localtime)
        writer = asyncio.create_task(agent.core.run())
        await agent.ran(own_zone, Cadence(schedule="0 20 * * *", tz="Asia/Tokyo"), utc(9, 0))
        await agent.ran(periodic, Cadence(every=3600), utc(9, 50))
        await agent.until(T0 + 60)
        before = agent.expected(own_zone), agent.expected(periodic)
        assert before == (utc(11, 0), utc(10, 50))
        relink(localtime, "Asia/Kolkata")
        await agent.until(T0 + 180)
        assert (agent.expected(own_zone), agent.expected(periodic)) == before
        agent.core.stop()
        await writer

    asyncio.run(scenario())


def test_the_zone_file_is_read_only_when_it_changed(tmp_path: Path) -> None:
    link = tmp_path / "localtime"
    link.symlink_to(ZONEINFO / "UTC")
    zone = hostzone.HostZone(None, path=str(link), environ={})
    assert zone.look(time.time()) is None and zone.seen == hostzone.ZoneSeen(
        "UTC", zone.seen.digest if zone.seen else "")
    assert zone.look(time.time()) is None
    kept = hostzone.HostZone(zone.seen.to_json() if zone.seen else None, path=str(link),
                             environ={})
    assert kept.look(time.time()) is None  # the same zone after a restart: no change
    relink(link, "Etc/UTC")  # the same rules under another name: not a change
    assert zone.look(time.time()) is None and zone.seen is not None
    assert zone.seen.name == "Etc/UTC"
    named = hostzone.HostZone(None, cron_timezone="Europe/London", path=str(link), environ={})
    relink(link, "Asia/Kolkata")
    assert named.look(time.time()) is None
    assert named.look(time.time()) is None  # cron_timezone names the zone: the file is not it
    shift = zone.look(time.time())
    assert shift is not None and (shift.old.name, shift.new.name) == ("Etc/UTC", "Asia/Kolkata")
