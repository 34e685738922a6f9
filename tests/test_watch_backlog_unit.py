"""The watcher's work on far backlogs of missed slots: counted exactly, bounded per owner and pass,
and done in writer items small enough that other events are answered in between.

tests/attacks/test_watcher_backlog.py is the attack against a real root agent; these drive the
real core and watcher on an injected clock.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey, JobRecord, JobState, NotificationKind
from cronwrap.agent.store import Job, Store
from cronwrap.agent.watch import (
    MAX_SLOTS_PER_PASS,
    SLOTS_PER_OWNER_PER_PASS,
    SlotBudget,
    Watcher,
    check,
    missed_slots,
)
from cronwrap.wrapper.events import Cadence, Finished, new_event_id

NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a Friday
MINUTELY = Cadence(schedule="* * * * *")
CONFIG = Config(cron_timezone="UTC")


def test_an_every_backlog_is_counted_in_one_step_exactly_as_slot_by_slot() -> None:
    for every, grace, late in [(60.0, 10.0, 3600 + 5), (60.0, 10.0, 3600 + 10),
                               (90.0, None, 7 * 86400), (3600.0, 0.5, 86400 + 0.5)]:
        cadence = Cadence(every=every, grace=grace)
        slot = NOW - late
        expected, upcoming = 0, slot
        while upcoming + (grace if grace is not None else min(300.0, every / 2)) < NOW:
            expected, upcoming = expected + 1, upcoming + every
        assert missed_slots(cadence, slot, NOW, CONFIG, limit=1) == (expected, upcoming)


def test_an_every_job_56_years_behind_is_counted_at_once() -> None:
    cadence = Cadence(every=60.0, grace=10.0)
    job = Job(JobRecord(JobKey(1, "old"), "u", state=JobState.ok, next_expected=60.0), cadence)
    job, kinds = check(job, cadence, NOW, CONFIG, False)
    assert kinds == [NotificationKind.missed]
    assert job.record.misses == (NOW - 60.0 - 10.0) // 60 + 1
    assert NOW - 10.0 <= job.record.next_expected < NOW + 60 - 10.0


def test_a_cron_backlog_spends_its_owners_budget_and_at_least_one_slot() -> None:
    job = Job(JobRecord(JobKey(1, "old"), "u", state=JobState.ok, next_expected=NOW - 86400),
              MINUTELY)
    budget = SlotBudget(200)  # less than a job's own cap (MAX_SLOTS_PER_PASS)
    job, _ = check(job, MINUTELY, NOW, CONFIG, False, budget=budget)
    assert (job.record.misses, budget.left) == (200, 0)
    assert job.record.next_expected == NOW - 86400 + 200 * 60
    job, _ = check(job, MINUTELY, NOW, CONFIG, False, budget=budget)
    assert (job.record.misses, budget.left) == (201, -1)  # one slot even with nothing left
    job, _ = check(job, MINUTELY, NOW, CONFIG, False, budget=SlotBudget())
    assert job.record.misses == 201 + MAX_SLOTS_PER_PASS  # a job's own cap still holds


def test_one_owners_far_backlogs_cost_a_bounded_pass_and_leave_others_exact(
        tmp_path: Path) -> None:
    """1,000 jobs of uid 2000 last ran in 1970; uid 3000's job last ran 10 minutes ago. One
    pass counts the victim's 9 misses exactly, spends about the attacker's budget (not 1,000
    slots per job) in many small writer items, and an event sent during the pass is applied."""
    async def scenario() -> tuple[dict[JobKey, JobRecord], int]:
        core = AgentCore(Store(tmp_path), CONFIG, clock=lambda: NOW)
        watcher = Watcher(core, CONFIG, wall=lambda: NOW, mono=lambda: NOW)
        writer = asyncio.create_task(core.run())
        await core.submit(3000, "victim", _finished("report", NOW - 600))
        await asyncio.gather(*(core.submit(2000, "attacker", _finished(f"old{index}", 60.0))
                               for index in range(1000)))
        items = 0
        update = core.update

        async def counted(change):  # noqa: ANN001, ANN202 - a spy on the writer items
            nonlocal items
            items += 1
            if items == 2:  # the pass has begun: another user's run arrives
                await core.submit(3000, "victim", _finished("live", NOW - 1))
            return await update(change)

        core.update = counted  # type: ignore[method-assign]
        await watcher.tick()
        core.stop()
        await writer
        return {record.key: record for record in core.records()}, items

    records, items = asyncio.run(scenario())
    victim = records[JobKey(3000, "report")]
    assert (victim.state, victim.misses) == (JobState.missed, 9)  # NOW-540 ... NOW-60
    assert records[JobKey(3000, "live")].state == JobState.ok
    attackers = [record for key, record in records.items() if key.owner_uid == 2000]
    counted = sum(record.misses for record in attackers)
    assert 1000 <= counted <= SLOTS_PER_OWNER_PER_PASS + 1000
    assert items > 4  # the pass was split: events are answered between its items


def _finished(job: str, start: float) -> Finished:
    return Finished(new_event_id(), job, start + 1, 4242, start_time=start, exit_status=0,
                    duration_ms=1000, cadence=MINUTELY)
