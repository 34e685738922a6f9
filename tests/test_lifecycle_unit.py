"""A job's life in the core, on an injected clock: forget, pause (and its end), retirement."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agent_support import cronwrap_command
from cronwrap.agent import schedule
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore, NoSuchJob, job_json
from cronwrap.agent.model import JobKey, JobRecord, JobState, Notification, NotificationKind
from cronwrap.agent.store import Store
from cronwrap.agent.watch import Watcher
from cronwrap.wrapper import status
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

T0 = 1_800_000_000.0
KEY = JobKey(1000, "backup")
EVERY_MINUTE = Cadence(every=60, grace=10)


class Clock:
    """Wall and monotonic time moving together (no jumps)."""

    def __init__(self) -> None:
        self.wall, self.mono = T0, 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Harness:
    """A core on a real SQLite store, its notifications, and a watcher, on one clock."""

    def __init__(self, path: Path, clock: Clock, config: Config | None = None) -> None:
        self.clock = clock
        self.core = AgentCore(Store(path), config or Config(min_every=1.0),
                              clock=lambda: clock.wall)
        self.queue = self.core.notifications.subscribe()
        self.watcher = Watcher(self.core, self.core.config, wall=lambda: clock.wall,
                               mono=lambda: clock.mono)

    def notes(self) -> list[Notification]:
        return [self.queue.get_nowait() for _ in range(self.queue.qsize())]

    def kinds(self) -> list[NotificationKind]:
        return [n.kind for n in self.notes()]

    def row(self) -> JobRecord:
        (record,) = [r for r in self.core.records() if r.key == KEY]
        return record

    async def run(self, start: float, status: int = 0, cadence: Cadence = EVERY_MINUTE) -> None:
        await self.core.submit(KEY.owner_uid, "alice", Started(new_event_id(), KEY.name, start,
                                                               10, cadence))
        await self.core.submit(KEY.owner_uid, "alice", finished(start, status, cadence))

    async def ticks(self, seconds: float, step: float = 5.0) -> None:
        """Let `seconds` pass, the watcher looking every `step` seconds."""
        for _ in range(int(seconds / step)):
            self.clock.advance(step)
            await self.watcher.tick()


def finished(start: float, status: int = 0, cadence: Cadence = EVERY_MINUTE) -> Finished:
    return Finished(new_event_id(), KEY.name, start + 1, 10, start_time=start, exit_status=status,
                    duration_ms=1000, cadence=cadence)


def scenario(path: Path, body: Callable[[Harness], Awaitable[Any]],
             config: Config | None = None, clock: Clock | None = None) -> Any:
    async def main() -> Any:
        harness = Harness(path, clock or Clock(), config)
        writer = asyncio.create_task(harness.core.run())
        try:
            return await body(harness)
        finally:
            harness.core.stop()
            await writer

    return asyncio.run(main())


# --- forget ---------------------------------------------------------------------------------


def test_forget_drops_the_row_and_old_runs_but_not_new_ones(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.run(T0, status=1)
        h.notes()
        h.clock.advance(100)
        forgotten = await h.core.forget(KEY, "root")
        assert forgotten.record.failures == 1 and h.core.records() == []
        (note,) = h.notes()
        assert (note.kind, note.job.failures, note.requester) == (
            NotificationKind.forgotten, 1, "root")
        await h.core.submit(KEY.owner_uid, "alice", finished(T0 + 50, status=2))  # spooled
        assert h.core.records() == [] and h.notes() == []
        with pytest.raises(NoSuchJob):
            await h.core.forget(KEY, "root")
        with pytest.raises(NoSuchJob):
            await h.core.pause(KEY, 60, "root")

    scenario(tmp_path, body)

    async def after_restart(h: Harness) -> None:  # the tombstone is durable
        await h.core.submit(KEY.owner_uid, "alice", finished(T0 + 60, status=2))
        assert h.core.records() == []
        await h.run(T0 + 200)  # a run after the forget: a new row from zero
        assert (h.row().runs, h.row().failures) == (1, 0)

    clock = Clock()
    clock.advance(300)
    scenario(tmp_path, after_restart, clock=clock)


# --- pause ----------------------------------------------------------------------------------


def test_a_paused_job_is_silent_counts_runs_and_misses_nothing(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.run(T0)
        await h.core.pause(KEY, 3600, "alice")
        assert h.row().shown_state == JobState.paused and h.row().paused_until == T0 + 3600
        await h.run(T0 + 60, status=3)
        assert (h.row().runs, h.row().failures, h.row().state) == (2, 1, JobState.failed)
        await h.ticks(600)  # ten one-minute slots pass without a start
        assert h.row().misses == 0 and h.row().next_expected >= h.clock.wall
        assert h.kinds() == []  # neither the failure nor a miss
        job, was_paused = await h.core.resume(KEY, "alice")
        assert was_paused and job.record.shown_state == JobState.failed
        assert job.record.next_expected == h.clock.wall + 60  # expected from now on
        await h.ticks(80)
        assert h.kinds() == [NotificationKind.missed] and h.row().misses == 1
        _, was_paused = await h.core.resume(KEY, "alice")
        assert not was_paused

    scenario(tmp_path, body)


def test_a_pause_ends_by_itself_also_across_a_restart(tmp_path: Path) -> None:
    clock = Clock()

    async def before(h: Harness) -> None:
        await h.run(T0)
        await h.core.pause(KEY, 120, "alice")

    scenario(tmp_path, before, clock=clock)
    clock.advance(90)

    async def restarted(h: Harness) -> None:
        assert h.row().shown_state == JobState.paused  # still paused after the restart
        await h.ticks(20)  # the first slot (T0 + 60) passed during the pause: not a miss
        assert h.row().shown_state == JobState.paused
        await h.ticks(20)  # T0 + 130: the pause has ended
        assert h.row().paused_until is None and h.row().shown_state == JobState.ok
        assert h.row().misses == 0 and h.kinds() == []
        await h.ticks(75)  # the next slot, T0 + 190, and its 10 s of grace
        assert h.row().misses == 1 and h.kinds() == [NotificationKind.missed]

    scenario(tmp_path, restarted, clock=clock)


def test_an_event_after_the_pause_ended_notifies_before_the_watcher_looks(
        tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.run(T0)
        await h.core.pause(KEY, 30, "alice")
        h.clock.advance(40)
        await h.run(T0 + 40, status=1)
        assert h.kinds() == [NotificationKind.failed] and h.row().paused_until is None

    scenario(tmp_path, body)


# --- retirement -----------------------------------------------------------------------------


def test_a_stopped_job_without_a_crontab_line_retires_after_three_misses(
        tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.run(T0)
        await h.ticks(4 * 60 + 15)  # three missed slots, each after its 10 s of grace
        assert h.kinds() == [NotificationKind.missed] * 3 + [NotificationKind.retired]
        assert (h.row().state, h.row().misses, h.row().next_expected) == (
            JobState.retired, 3, None)
        await h.ticks(3600)  # an hour more: no more misses
        assert h.kinds() == [] and h.row().misses == 3
        await h.run(h.clock.wall)  # a new run: back
        assert h.row().state == JobState.ok and h.row().next_expected is not None
        await h.ticks(2 * 60 + 35)
        assert h.kinds() == [NotificationKind.missed] * 2  # counting again from zero
        assert h.row().state == JobState.missed

    scenario(tmp_path, body)


def test_a_job_in_a_crontab_or_with_retiring_off_is_never_retired(tmp_path: Path) -> None:
    async def in_crontab(h: Harness) -> None:
        await h.core.set_discovered([schedule.Discovered(KEY, "alice", "* * * * *")])
        await h.run(T0)
        await h.ticks(10 * 60)
        assert h.row().state == JobState.missed and h.row().misses > 3
        assert NotificationKind.retired not in h.kinds()

    (tmp_path / "a").mkdir()
    scenario(tmp_path / "a", in_crontab)

    async def off(h: Harness) -> None:
        await h.run(T0)
        await h.ticks(10 * 60)
        assert h.row().state == JobState.missed and h.row().misses > 3

    (tmp_path / "b").mkdir()
    scenario(tmp_path / "b", off, config=Config(min_every=1.0, retire_after_periods=0))


CRONTAB = "/var/spool/cron/crontabs/alice"
LINE = [schedule.Discovered(KEY, "alice", "*/10 * * * *", crontab=CRONTAB)]


def test_a_job_whose_line_is_gone_stays_expected_on_it_until_it_retires(tmp_path: Path) -> None:
    """No declared schedule, the line removed (or `crontab -r`): the job stays expected on its
    line's schedule (issue 19: it used to go silent); its first missed slot raises cronJobMissed
    with the cause in the row, the third retires it; the line coming back un-retires it."""
    clock = Clock()
    clock.wall = 1_800_000_600.0  # on a ten-minute boundary

    async def body(h: Harness) -> None:
        await h.core.set_discovered(LINE)
        await h.run(h.clock.wall, cadence=Cadence())
        await h.core.set_discovered([])  # the line is removed
        assert (h.row().line_gone or "").startswith(f"line gone from {CRONTAB} (seen ")
        shown = status.notes([job_json(j, h.core.cadence_of(j)) for j in h.core.jobs().values()],
                             h.clock.wall)
        assert shown == [f"alice/backup: {h.row().line_gone}: still expected on its schedule "
                         "until it retires (cronwrap forget ends it now)"]
        await h.ticks(14 * 60)
        assert h.row().state == JobState.ok and h.kinds() == []
        await h.ticks(2 * 60)  # its next slot (+10 min) and grace (5 min) have passed
        (missed,) = h.notes()
        assert missed.kind == NotificationKind.missed and missed.job.line_gone == h.row().line_gone
        await h.ticks(20 * 60)  # the third slot and its grace: retired
        assert h.kinds() == [NotificationKind.missed, NotificationKind.missed,
                             NotificationKind.retired]
        assert h.row().state == JobState.retired and h.row().misses == 3
        await h.core.set_discovered(LINE)  # the line is back
        assert h.row().state == JobState.unknown and h.row().next_expected is not None
        assert h.row().line_gone is None

    scenario(tmp_path, body, clock=clock)


def test_a_line_gone_while_the_agent_was_down_is_seen_at_its_first_scan(tmp_path: Path) -> None:
    """The first scan after a start compares with the lines the rows were seen on: a run job
    stays expected with the cause, a never-run row of a removed line goes (docs/agent.md)."""
    never_run = JobKey(1000, "never-run")
    lines = [*LINE, schedule.Discovered(never_run, "alice", "0 3 * * *", crontab=CRONTAB)]

    async def before(h: Harness) -> None:
        await h.core.set_discovered(lines)
        await h.run(T0, cadence=Cadence())

    async def after(h: Harness) -> None:
        assert {r.key for r in h.core.records()} == {KEY, never_run}
        await h.core.set_discovered([])  # `crontab -r` while the agent was stopped
        assert [r.key for r in h.core.records()] == [KEY]
        assert (h.row().line_gone or "").startswith(f"line gone from {CRONTAB}")
        assert h.row().next_expected is not None

    scenario(tmp_path, before)
    scenario(tmp_path, after)


def test_a_job_declaring_its_schedule_says_why_it_is_missed_too(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.core.set_discovered(LINE)
        await h.run(T0)
        await h.core.set_discovered([])
        await h.ticks(60 + 15)
        (missed,) = h.notes()
        assert missed.kind == NotificationKind.missed
        assert (missed.job.line_gone or "").startswith(f"line gone from {CRONTAB}")

    scenario(tmp_path, body)


def test_a_paused_job_is_not_retired_and_a_retired_one_is_not_expected_after_a_pause(
        tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.run(T0)
        await h.core.pause(KEY, 3600, "alice")
        await h.ticks(1800)
        assert h.row().state == JobState.ok and h.row().misses == 0
        await h.core.resume(KEY, "alice")
        await h.ticks(4 * 60 + 15)
        assert h.row().state == JobState.retired
        await h.core.pause(KEY, 60, "alice")
        await h.core.resume(KEY, "alice")
        assert h.row().state == JobState.retired and h.row().next_expected is None

    scenario(tmp_path, body)


# --- the command line's own mistakes --------------------------------------------------------


@pytest.mark.parametrize(("args", "status", "said"), [
    (["pause", "backup"], 64, "the following arguments are required: --for"),
    (["pause", "backup", "--for", "soon"], 64, "--for: 'soon' is not a duration"),
    (["pause", "backup", "--for", "0.5"], 64, "shorter than a second"),
    (["forget", "../etc"], 64, "invalid job name '../etc'"),
    (["resume", "backup", "--user", "no-such-user-here"], 67, "no user named"),
    (["forget", "backup"], 69, "cannot reach the agent at"),
])
def test_mistakes_are_one_line_and_an_exit_status(tmp_path: Path, args: list[str], status: int,
                                                  said: str) -> None:
    command = cronwrap_command()
    assert command is not None
    done = subprocess.run([command, *args, "--socket", str(tmp_path / "no-agent.sock")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == status and said in done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""


def test_a_catch_up_pass_retires_nothing_by_itself(tmp_path: Path) -> None:
    """Ten slots missed while the agent was down are ten misses, but one pass towards
    retirement: the job is missed, not silenced; two more passes with misses retire it."""
    async def body(h: Harness) -> None:
        await h.run(T0)
        h.clock.wall += 10 * 60  # the agent was down for ten minutes
        await h.ticks(5)
        assert h.row().state == JobState.missed and h.row().misses >= 9
        assert NotificationKind.retired not in h.kinds()
        await h.ticks(2 * 60 + 15)  # two more slots, each missed in a pass of its own
        assert h.row().state == JobState.retired

    scenario(tmp_path, body)


def test_the_line_of_a_forgotten_job_can_go(tmp_path: Path) -> None:
    """A scan that no longer finds the line of a job forgotten since is adopted (the scan used
    to fail as an internal error), and the line coming back makes a row again."""
    line = [schedule.Discovered(KEY, "alice", "*/10 * * * *")]

    async def body(h: Harness) -> None:
        await h.core.set_discovered(line)
        await h.run(T0)
        await h.core.forget(KEY, "alice")
        await h.core.set_discovered([])
        assert h.core.records() == [] and h.core.discovered == {}
        await h.core.set_discovered(line)
        assert h.row().runs == 0 and h.row().next_expected is not None

    scenario(tmp_path, body)
