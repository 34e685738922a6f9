"""Late (spooled) events: notifications marked late, with the run's time, coalesced per job."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey, Notification, NotificationKind
from cronwrap.agent.store import Store
from cronwrap.wrapper.events import Finished, Overlapped, new_event_id

T0 = 1_800_000_000.0


def failure(name: str, start: float) -> Finished:
    return Finished(new_event_id(), name, start + 1, 10, start_time=start, exit_status=2,
                    duration_ms=1000)


def published(core: AgentCore, queue: asyncio.Queue[Notification]) -> list[Notification]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_late_runs_notify_with_their_own_time_and_floods_coalesce(tmp_path: Path) -> None:
    async def scenario() -> list[Notification]:
        core = AgentCore(Store(tmp_path), Config(late_notifications_per_job=3),
                         clock=lambda: T0 + 10_000)
        writer = asyncio.create_task(core.run())
        queue = core.notifications.subscribe()
        for i in range(50):
            await core.submit(0, "root", failure("flood", T0 + i), late=True)
        await core.submit(0, "root", failure("other", T0), late=True)
        await core.submit(0, "root", Overlapped(new_event_id(), "flood", T0 + 60, 11, 10),
                          late=True)
        await core.submit(0, "root", failure("live", T0 + 9_999))  # not late: never held
        before_flush = published(core, queue)
        core.flush_late()
        writer.cancel()
        return before_flush + published(core, queue)

    notes = asyncio.run(scenario())
    flood = [n for n in notes if n.job.key == JobKey(0, "flood")]
    assert [(n.kind, n.run_count, n.run_time) for n in flood] == [
        (NotificationKind.failed, 1, T0), (NotificationKind.failed, 1, T0 + 1),
        (NotificationKind.failed, 1, T0 + 2),
        # held: 47 failures, then one overlap, each summarised by kind at the flush
        (NotificationKind.failed, 47, T0 + 49), (NotificationKind.overlapped, 1, T0 + 60)]
    assert all(n.late for n in flood)
    assert flood[3].job.failures == 50  # the row as it was after the newest held run
    other = [n for n in notes if n.job.key.name == "other"]
    assert [(n.late, n.run_count, n.run_time) for n in other] == [(True, 1, T0)]
    live = [n for n in notes if n.job.key.name == "live"]
    assert [(n.late, n.run_time) for n in live] == [(False, T0 + 9_999)]
    assert notes.index(live[0]) < notes.index(flood[3])  # a live one is not held back


def test_a_second_drain_starts_counting_again(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        core = AgentCore(Store(tmp_path), Config(late_notifications_per_job=1))
        writer = asyncio.create_task(core.run())
        queue = core.notifications.subscribe()
        counts = []
        for drain in range(2):
            for i in range(3):
                await core.submit(0, "root", failure("job", T0 + 10 * drain + i), late=True)
            core.flush_late()
            counts.append([n.run_count for n in published(core, queue)])
        writer.cancel()
        return counts

    assert asyncio.run(scenario()) == [[1, 2], [1, 2]]


def test_late_notifications_per_job_is_a_whole_number(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[agent]\nlate_notifications_per_job = 0\n")
    assert load(path).late_notifications_per_job == 0
    path.write_text("[agent]\nlate_notifications_per_job = 2.5\n")
    with pytest.raises(ConfigError, match="late_notifications_per_job must be a non-negative"):
        load(path)


def test_a_spooled_overlap_older_than_the_last_run_still_notifies(tmp_path: Path) -> None:
    """The holder's finish was delivered live, the skipped start's overlap was spooled."""
    async def scenario() -> list[Notification]:
        core = AgentCore(Store(tmp_path), Config())
        writer = asyncio.create_task(core.run())
        queue = core.notifications.subscribe()
        await core.submit(0, "root", Finished(new_event_id(), "long", T0 + 60, 10,
                                              start_time=T0, duration_ms=60_000))
        await core.submit(0, "root", Overlapped(new_event_id(), "long", T0 + 30, 11, 10),
                          late=True)
        core.flush_late()
        writer.cancel()
        return published(core, queue)

    notes = asyncio.run(scenario())
    assert [(n.kind, n.late, n.run_time, n.job.overlaps, n.job.state.name) for n in notes] == [
        (NotificationKind.overlapped, True, T0 + 30, 1, "ok")]
