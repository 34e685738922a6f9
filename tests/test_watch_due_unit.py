"""The watcher looks only at the jobs due a look: a pass after nothing happened examines no job,
and a day of passes leaves every row exactly as a watcher looking at every job each pass does.

These drive the real core and watcher on an injected clock; the count is of `check` calls.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey, JobRecord
from cronwrap.agent.store import Store
from cronwrap.agent.transitions import clock
from cronwrap.agent.watch import WORK_PER_UPDATE, DueQueue, Watcher
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

pytestmark = pytest.mark.slow

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC
CONFIG = Config(cron_timezone="UTC", max_jobs_per_owner=2000)
HOURLY = Cadence(schedule="0 * * * *")
MINUTELY = Cadence(schedule="* * * * *")
UID = 4000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def finished(job: str, start: float, cadence: Cadence, status: int = 0) -> Finished:
    return Finished(new_event_id(), job, start + 1, 4242, start_time=start, exit_status=status,
                    duration_ms=1000, cadence=cadence)


Scenario = Callable[[AgentCore, Watcher, Clock], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, config: Config = CONFIG) -> dict[JobKey, JobRecord]:
    tmp_path.mkdir(exist_ok=True)

    async def main() -> dict[JobKey, JobRecord]:
        time_now = Clock()
        core = AgentCore(Store(tmp_path), config, clock=time_now)
        watcher = Watcher(core, config, wall=time_now, mono=time_now)
        writer = asyncio.create_task(core.run())
        try:
            await scenario(core, watcher, time_now)
        finally:
            core.stop()
            await writer
        return {record.key: record for record in core.records()}

    return asyncio.run(main())


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[JobKey]:
    """The key of every job `check` looks at, in order."""
    seen: list[JobKey] = []
    real = clock.check

    def counted(job, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - a spy
        seen.append(job.record.key)
        return real(job, *args, **kwargs)

    monkeypatch.setattr(clock, "check", counted)
    return seen


def test_a_pass_looks_only_at_the_jobs_due(tmp_path: Path, checks: list[JobKey]) -> None:
    """1,000 hourly jobs and 3 minutely ones: the first pass looks at all, the next none, the
    one after the minutely slots' grace the 3 minutely jobs, and a run reported for one hourly
    job makes the next pass look at that job alone."""
    counts: list[int] = []
    grace = 60 * CONFIG.grace_fraction  # the minutely jobs' grace: half their period

    async def scenario(core: AgentCore, watcher: Watcher, time_now: Clock) -> None:
        await asyncio.gather(*(core.submit(UID, "u", finished(f"hourly-{n}", NOW - 60, HOURLY))
                               for n in range(1000)))
        await asyncio.gather(*(core.submit(UID, "u", finished(f"minutely-{n}", NOW - 30,
                                                              MINUTELY)) for n in range(3)))
        for at in (NOW, NOW + 5, NOW + 60 + grace + 1):
            time_now.now = at
            checks.clear()
            await watcher.tick()
            counts.append(len(checks))
        await core.submit(UID, "u", finished("hourly-7", time_now.now - 2, HOURLY))
        checks.clear()
        time_now.now += 5
        await watcher.tick()
        counts.append(len(checks))
        assert checks == [JobKey(UID, "hourly-7")]

    records = run(tmp_path, scenario)
    assert counts == [1003, 0, 3, 1]
    # the slots at NOW and NOW + 60, both past their grace at NOW + 91
    assert [records[JobKey(UID, f"minutely-{n}")].misses for n in range(3)] == [2, 2, 2]
    assert sum(records[JobKey(UID, f"hourly-{n}")].misses for n in range(1000)) == 0


def busy_day(every_job_each_pass: bool) -> Scenario:
    """Two simulated hours of 5-second passes over jobs of every kind the watcher handles:
    cron and --every grids missed and run, a pause that ends, a run whose wrapper vanished, a
    run that overruns, and a far backlog spread over passes by the owner's slot budget."""
    async def scenario(core: AgentCore, watcher: Watcher, time_now: Clock) -> None:
        await core.submit(UID, "u", finished("minutely", NOW - 30, MINUTELY))
        await core.submit(UID, "u", finished("hourly", NOW - 60, HOURLY))
        await core.submit(UID, "u", finished("every-7m", NOW - 60, Cadence(every=420.0)))
        await core.submit(UID, "u", finished("graced", NOW - 60,
                                             Cadence(schedule="*/5 * * * *", grace=20.0), 1))
        await core.submit(UID, "u", finished("paused", NOW - 60, MINUTELY))
        await core.pause(JobKey(UID, "paused"), 1800, "root")
        await core.submit(UID, "u", Started(new_event_id(), "lost", NOW, 2**22 + 7,
                                            cadence=HOURLY))
        await core.submit(UID, "u", Started(new_event_id(), "overrun", NOW, 1,
                                            cadence=Cadence(schedule="0 * * * *",
                                                            max_runtime=600.0)))
        await core.submit(UID, "u", finished("backlog", NOW - 3 * 86400, MINUTELY))
        while time_now.now < NOW + 2 * 3600:
            if every_job_each_pass:
                for key in core.jobs():
                    watcher.due.set(key, -math.inf)
            await watcher.tick()
            if time_now.now == NOW + 1800:
                await core.submit(UID, "u", finished("minutely", NOW + 1795, MINUTELY))
            time_now.now += 5
    return scenario


@pytest.mark.parametrize("retire_after_periods", [3, 0])
def test_looking_only_at_due_jobs_leaves_every_row_as_looking_at_all_of_them(
        tmp_path: Path, checks: list[JobKey], retire_after_periods: int) -> None:
    config = Config(cron_timezone="UTC", retire_after_periods=retire_after_periods)
    due_only = run(tmp_path / "due", busy_day(every_job_each_pass=False), config)
    looked_at_due = len(checks)
    checks.clear()
    every_job = run(tmp_path / "all", busy_day(every_job_each_pass=True), config)
    assert due_only == every_job
    assert looked_at_due < len(checks) / 5
    states = {key.name: record.state.name for key, record in every_job.items()}
    assert states["overrun"] == "overrunning" and states["lost"] != "running"
    if retire_after_periods:
        assert states["backlog"] == "retired"
    else:  # 3 days of minutely slots, spread over passes by the owner's budget
        assert every_job[JobKey(UID, "backlog")].misses > 3 * 1440


def test_the_due_queue_gives_each_key_once_at_its_latest_time() -> None:
    due = DueQueue()
    a, b, c = JobKey(1, "a"), JobKey(1, "b"), JobKey(1, "c")
    due.set(a, 10.0)
    due.set(b, 5.0)
    due.set(a, 3.0)  # moved earlier
    due.set(c, 4.0)
    due.set(c, math.inf)  # not until set again
    assert due.pop_due(2.0) == []
    assert due.pop_due(10.0) == [a, b]
    assert due.pop_due(100.0) == []
    due.set(b, 20.0)
    due.drop(b)
    assert due.pop_due(100.0) == []
    for n in range(1000):  # superseded entries do not pile up
        due.set(a, float(n))
    assert len(due._heap) <= 2 * len(due) + 64
    assert due.pop_due(1e9) == [a]


def test_a_jobs_far_backlog_is_split_between_writer_items(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Five minutely jobs last run ten days ago: the pass spends the owner's slot budget, but no
    writer item evaluates more than WORK_PER_UPDATE slots, so events are answered in between
    (one job once took the whole budget in one item)."""
    per_item: list[int] = []

    async def scenario(core: AgentCore, watcher: Watcher, time_now: Clock) -> None:
        await asyncio.gather(*(core.submit(UID, "u", finished(f"old-{n}", NOW - 10 * 86400,
                                                              MINUTELY)) for n in range(5)))
        real = core.update

        async def counted(change):  # noqa: ANN001, ANN202 - a spy
            before = sum(job.record.misses for job in core.jobs().values())
            result = await real(change)
            per_item.append(sum(job.record.misses for job in core.jobs().values()) - before)
            return result

        monkeypatch.setattr(core, "update", counted)
        await watcher.tick()

    run(tmp_path, scenario)
    assert 0 < max(per_item) <= WORK_PER_UPDATE, per_item
    assert sum(per_item) >= clock.SLOTS_PER_OWNER_PER_PASS, per_item
