"""The cron daemon's outages: reported once, the misses they cause held with their cause, cleared
when cron runs again, kept across a restart of the agent.

The transition is driven directly; the core and watcher on an injected clock, watching a real
process named cron through a pid file as Debian's cron writes it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import wait_for
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore
from cronwrap.agent.lifeevents import CronDaemonSeen
from cronwrap.agent.model import (
    AnyNotification,
    CronDaemon,
    CronDaemonState,
    DaemonNotification,
    JobKey,
    JobState,
    NotificationKind,
)
from cronwrap.agent.sources.crondaemon import CronDaemonWatch, parse_show, unit_state
from cronwrap.agent.store import Store
from cronwrap.agent.transitions import crond
from cronwrap.agent.transitions.outcome import Context
from cronwrap.agent.views import job_json
from cronwrap.agent.watch import Watcher
from cronwrap.wrapper import status
from cronwrap.wrapper.events import Cadence, Finished, new_event_id

T = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a minute's start
CONFIG = Config(cron_timezone="UTC")
MINUTELY = Cadence(schedule="* * * * *")
KEY = JobKey(4000, "backup")
RUNNING, STOPPED = CronDaemonState.running, CronDaemonState.stopped


def seen(daemon: CronDaemon, state: CronDaemonState, now: float, since: float | None = None
         ) -> crond.DaemonOutcome:
    return crond.daemon_seen(daemon, CronDaemonSeen(state, since, now),
                             Context(now, CONFIG, lambda job: MINUTELY, daemon))


def test_an_outage_is_reported_once_after_a_minute_and_cleared_when_cron_runs() -> None:
    out = seen(CronDaemon(), RUNNING, T, since=T - 3600)
    assert out.raised == () and out.daemon.state == RUNNING and out.daemon.since == T - 3600
    out = seen(out.daemon, STOPPED, T + 10, since=T + 2)  # systemd's time of the stop
    assert out.raised == () and out.daemon.down_since == T + 2
    out = seen(out.daemon, STOPPED, T + 61)  # 59 s: not yet
    assert out.raised == () and not out.daemon.reported
    reported = seen(out.daemon, CronDaemonState.failed, T + 62)  # 60 s, now failed: same outage
    assert reported.raised == (NotificationKind.cron_not_running,)
    assert (reported.daemon.outages, reported.daemon.down_since) == (1, T + 2)
    assert reported.daemon.since == T + 62  # when it entered `failed`
    out = seen(reported.daemon, CronDaemonState.failed, T + 300)
    assert out.raised == () and out.daemon == reported.daemon
    back = seen(out.daemon, RUNNING, T + 310, since=T + 305)
    assert back.raised == (NotificationKind.cron_running,)
    assert (back.daemon.up_again, back.daemon.since, back.daemon.outages) == (T + 305, T + 305, 1)
    assert back.daemon.caused(T + 2) and back.daemon.caused(T + 304)
    assert not back.daemon.caused(T + 1) and not back.daemon.caused(T + 305)


def test_a_short_outage_without_a_miss_raises_nothing_and_a_miss_in_it_raises_it_at_once() -> None:
    down = seen(seen(CronDaemon(), RUNNING, T).daemon, STOPPED, T + 10)
    assert seen(down.daemon, RUNNING, T + 50).raised == ()  # a restart: 40 s, no miss
    held = crond.misses_held(down.daemon, 2)  # a job missed two starts in it: tell it now
    assert held.raised == (NotificationKind.cron_not_running,) and held.daemon.misses == 2
    again = crond.misses_held(held.daemon, 1)
    assert again.raised == () and again.daemon.misses == 3
    assert seen(again.daemon, STOPPED, T + 200).raised == ()  # reported already
    assert seen(again.daemon, RUNNING, T + 210).raised == (NotificationKind.cron_running,)


def test_absent_and_unknown_are_no_outage() -> None:
    for state in (CronDaemonState.absent, CronDaemonState.unknown):
        out = seen(CronDaemon(), state, T + 600)
        assert out.raised == () and out.daemon.down_since is None and not state.down
    assert all(s.down for s in (STOPPED, CronDaemonState.failed, CronDaemonState.masked))


def test_the_state_kept_reads_back_and_junk_reads_as_none() -> None:
    daemon = CronDaemon(CronDaemonState.masked, T, T - 5, None, True, 4, 2)
    assert CronDaemon.from_json(daemon.to_json()) == daemon
    assert CronDaemon.from_json("{junk") == CronDaemon() == CronDaemon.from_json(None)


@pytest.mark.parametrize(("shown", "state"), [
    ("LoadState=loaded\nActiveState=active\n", RUNNING),
    ("LoadState=masked\nActiveState=active\n", RUNNING),  # masked while it runs: it runs
    ("LoadState=masked\nActiveState=inactive\n", CronDaemonState.masked),
    ("LoadState=loaded\nActiveState=failed\n", CronDaemonState.failed),
    ("LoadState=loaded\nActiveState=inactive\n", STOPPED),
    ("LoadState=loaded\nActiveState=activating\n", STOPPED),  # Restart=on-failure's wait
    ("LoadState=not-found\nActiveState=inactive\n", CronDaemonState.absent),
    ("", CronDaemonState.unknown),
])
def test_a_units_state(shown: str, state: CronDaemonState) -> None:
    assert unit_state(parse_show(shown)) == state


def test_the_config_keys_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    for good in ("auto", "off", "cron.service", "cronie.service", "/run/crond.pid"):
        path.write_text(f'[agent]\ncron_daemon = "{good}"\ncron_down_after = 120\n')
        assert load(path).cron_daemon == good and load(path).cron_down_after == 120.0
    for bad in ("cron", "--help.service", "run/crond.pid", ""):
        path.write_text(f'[agent]\ncron_daemon = "{bad}"\n')
        with pytest.raises(ConfigError, match="cron_daemon must be"):
            load(path)


class FakeCron:
    """A process named cron and its pid file, as Debian's cron leaves them."""

    def __init__(self, base: Path) -> None:
        self.binary = base / "cron"
        shutil.copy("/bin/sleep", self.binary)
        self.pid_file = base / "crond.pid"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, when: float | None = None) -> None:
        """Start it; its pid file's mtime (when it started) is `when` (None: now)."""
        self.proc = subprocess.Popen([str(self.binary), "600"])
        comm = Path(f"/proc/{self.proc.pid}/comm")  # exec closes the fds before it renames
        wait_for(lambda: comm.read_text().strip() == "cron", "the process named cron")
        self.pid_file.write_text(f"{self.proc.pid}\n")
        if when is not None:
            os.utime(self.pid_file, (when, when))

    def stop(self) -> None:  # cron leaves its pid file behind
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fake_cron(tmp_path: Path) -> Iterator[FakeCron]:
    cron = FakeCron(tmp_path)
    yield cron
    cron.stop()


def test_the_pid_file_says_whether_cron_runs(tmp_path: Path, fake_cron: FakeCron) -> None:
    watch = CronDaemonWatch(str(fake_cron.pid_file), 10.0, mono=lambda: 0.0)

    def look() -> CronDaemonState:
        watch._next = 0.0  # noqa: SLF001 - due again
        event = asyncio.run(watch.look())
        assert event is not None
        return event.state

    assert look() == CronDaemonState.absent  # no pid file: no cron started here
    fake_cron.start()
    assert look() == RUNNING
    fake_cron.stop()
    assert look() == STOPPED  # its pid file is left, its pid gone
    fake_cron.pid_file.write_text(f"{os.getpid()}\n")  # a live pid that is not cron
    assert look() == STOPPED


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> float:
        return self.now


class Agent:
    """The real core and watcher on one state directory, an injected clock, and the fake cron."""

    def __init__(self, state: Path, cron: FakeCron, clock: Clock) -> None:
        state.mkdir(exist_ok=True)
        self.core = AgentCore(Store(state), CONFIG, clock=clock)
        watch = CronDaemonWatch(str(cron.pid_file), CONFIG.cron_daemon_interval, clock, clock)
        self.watcher = Watcher(self.core, CONFIG, wall=clock, mono=clock, daemon=watch)
        self.queue = self.core.notifications.subscribe()
        self.clock = clock

    def sent(self) -> list[AnyNotification]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def ticks(self, until: float) -> list[AnyNotification]:
        """Watcher passes every 5 s up to `until`; the notifications they raised."""
        while self.clock.now < until:
            self.clock.now += 5
            await self.watcher.tick()
        return self.sent()


def kinds(sent: list[AnyNotification]) -> list[NotificationKind]:
    return [n.kind for n in sent]


def run_with(agent: Agent, scenario):  # noqa: ANN001, ANN201 - a test's coroutine
    async def main():  # noqa: ANN202
        writer = asyncio.create_task(agent.core.run())
        try:
            return await scenario(agent)
        finally:
            agent.core.stop()
            await writer

    return asyncio.run(main())


def test_a_three_minute_outage_gives_one_alarm_its_misses_and_one_clear(
        tmp_path: Path, fake_cron: FakeCron) -> None:
    """A minutely job; cron stops for three minutes: one cronDaemonNotRunning, the job's misses
    counted in state cronNotRunning with no cronJobMissed, one cronDaemonRunning carrying
    them; then a miss with cron running is an ordinary cronJobMissed again. An agent restarted
    in the outage sends nothing again."""
    clock = Clock()
    fake_cron.start(T - 3600)

    async def before(agent: Agent) -> None:
        await agent.core.submit(KEY.owner_uid, "alice", Finished(
            new_event_id(), KEY.name, T + 1, 4242, start_time=T, exit_status=0,
            duration_ms=1000, cadence=MINUTELY))
        assert kinds(await agent.ticks(T + 20)) == []
        assert agent.core.cron_daemon.state == RUNNING
        assert agent.core.cron_daemon.since == T - 3600  # the pid file's time
        fake_cron.stop()  # at T + 20: the next look (every 10 s from T + 5) sees it
        sent = await agent.ticks(T + 100)
        assert kinds(sent) == [NotificationKind.cron_not_running]  # at T + 85: 60 s
        assert isinstance(sent[0], DaemonNotification)
        assert sent[0].daemon.down_since == T + 25 and sent[0].daemon.state == STOPPED
        assert sent[0].time == T + 85 and sent[0].daemon.misses == 0
        assert agent.core.jobs()[KEY].record.misses == 1  # the T + 60 slot, held at T + 95

    run_with(Agent(tmp_path / "state", fake_cron, clock), before)

    async def restarted(agent: Agent) -> None:  # the agent restarted in the outage
        sent = await agent.ticks(T + 200)
        assert kinds(sent) == []  # reported already; the T + 60.. slots: held
        row = agent.core.jobs()[KEY].record
        assert row.state == JobState.cronNotRunning == row.last_result
        assert row.misses == 2 == agent.core.cron_daemon.misses  # 60 and 120 (30 s grace)
        shown = status.notes([job_json(job, agent.core.cadence_of(job))
                              for job in agent.core.jobs().values()], clock.now)
        assert shown == ["alice/backup: missed while the cron daemon was not running (cron does "
                         "not run it afterwards; the agent's cronDaemonNotRunning stands for it)"]
        fake_cron.start(T + 200)  # looked at T + 205
        sent = await agent.ticks(T + 210)
        assert kinds(sent) == [NotificationKind.cron_running]
        assert isinstance(sent[0], DaemonNotification)
        assert sent[0].daemon.misses == 2 and sent[0].daemon.up_again == T + 200
        assert sent[0].daemon.outages == 1 and sent[0].daemon.down_since == T + 25
        # the T + 180 slot's miss, judged at T + 215 after cron came back: still the outage's
        assert kinds(await agent.ticks(T + 220)) == []
        assert agent.core.jobs()[KEY].record.misses == 3 == agent.core.cron_daemon.misses
        sent = await agent.ticks(T + 275)  # the 240 slot: cron ran, the job did not
        assert kinds(sent) == [NotificationKind.missed]
        assert agent.core.jobs()[KEY].record.state == JobState.missed
        stats = agent.core.stats()
        assert stats.cron_daemon.state == RUNNING and stats.cron_daemon.misses == 3

    run_with(Agent(tmp_path / "state", fake_cron, clock), restarted)


def test_cron_back_while_the_agent_was_down_is_cleared_by_the_restarted_agent(
        tmp_path: Path, fake_cron: FakeCron) -> None:
    """The outage was reported, then the agent stopped; cron came back meanwhile: the agent's
    first look after its start sends the clear, once."""
    clock = Clock()

    async def reported(agent: Agent) -> None:
        assert kinds(await agent.ticks(T + 70)) == [NotificationKind.cron_not_running]

    fake_cron.start(T - 3600)
    fake_cron.stop()  # its pid file left: stopped from the first look at T + 5
    run_with(Agent(tmp_path / "state", fake_cron, clock), reported)
    fake_cron.start(T + 100)
    clock.now = T + 300

    async def restarted(agent: Agent) -> None:
        sent = await agent.ticks(T + 330)
        assert kinds(sent) == [NotificationKind.cron_running]
        assert isinstance(sent[0], DaemonNotification)
        assert (sent[0].daemon.down_since, sent[0].daemon.up_again) == (T + 5, T + 100)

    run_with(Agent(tmp_path / "state", fake_cron, clock), restarted)
