"""The spool drain's slices, turns and per-owner budget, on the real core and store with an
injected clock (tests/attacks/test_spool_backlog.py is the attack against a real root agent)."""

from __future__ import annotations

import asyncio
import os
import tracemalloc
from pathlib import Path

import pytest
from agent_support import spool
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobKey
from cronwrap.agent.sources.wrapper_spool import (
    MAX_DIRS_PER_OWNER,
    SLICE,
    OwnerTurn,
    SpoolDrain,
)
from cronwrap.agent.store import Store
from cronwrap.wrapper.events import Finished, new_event_id
from cronwrap.wrapper.spool import Spool

pytestmark = pytest.mark.slow

CONFIG = Config(spool_events_per_second=100, spool_interval=2.0)  # 200 a pass, 100 a second


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spool_runs(root: Path, uid: int, job: str, count: int) -> None:
    for number in range(count):
        spool(root, uid, Finished(new_event_id(), job, 1e9 + number + 0.5, 10,
                                  start_time=1e9 + number, duration_ms=500))


def runs(core: AgentCore, uid: int, job: str) -> int:
    job_row = core.jobs().get(JobKey(uid, job))
    return 0 if job_row is None else job_row.record.runs


def files(root: Path, uid: int) -> int:
    return len(list((root / str(uid)).glob("*.json")))


def test_an_owner_over_budget_is_deferred_and_nothing_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    spool_runs(root, uid, "flood", 450)

    async def scenario() -> list[tuple[int, int, int, int]]:
        core = AgentCore(Store(tmp_path), CONFIG)
        writer = asyncio.create_task(core.run())
        clock = Clock()
        drain = SpoolDrain(core, root, CONFIG, clock)
        seen = []
        for advance in (0.0, 0.0, 1.0, 10.0):  # seconds of the injected clock before a pass
            clock.now += advance
            applied = await drain.drain()
            seen.append((applied, runs(core, uid, "flood"), files(root, uid),
                         sum(core.spool_backlog.values())))
        core.stop()
        await writer
        return seen

    assert asyncio.run(scenario()) == [
        (200, 200, 250, 250),  # a full bucket: one spool interval's worth, the rest stays
        (0, 200, 250, 250),  # no time passed: deferred again, nothing dropped
        (100, 300, 150, 150),  # a second refills 100
        (150, 450, 0, 0),  # the rest, and the backlog is gone
    ]
    deferred = [r.getMessage() for r in caplog.records if "spool drain deferred" in r.getMessage()]
    assert len(deferred) == 1 and f"250 spooled events of uid {uid}" in deferred[0]


def drain_recording_slices(tmp_path: Path, root: Path, config: Config
                           ) -> tuple[AgentCore, list[tuple[int, list[str]]], int]:
    """One pass of a drain on a fresh core; the core, each slice as (uid, file names) in the
    order applied, and how many events the pass applied."""
    slices: list[tuple[int, list[str]]] = []

    async def scenario() -> tuple[AgentCore, int]:
        core = AgentCore(Store(tmp_path), config)
        writer = asyncio.create_task(core.run())
        drain = SpoolDrain(core, root, config, Clock())
        real_apply = drain._apply

        async def apply(where: str, dir_fd: int, uid: int, events: list) -> tuple[int, bool]:
            slices.append((uid, [item.name for item in events]))
            return await real_apply(where, dir_fd, uid, events)

        drain._apply = apply  # type: ignore[method-assign]
        applied = await drain.drain()
        core.stop()
        await writer
        return core, applied

    core, applied = asyncio.run(scenario())
    return core, slices, applied


def test_owners_take_turns_one_slice_each(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    root.mkdir()
    big, small = 0, 1  # root's directory sorts first, as it did before turns
    spool_runs(root, big, "flood", 5 * SLICE)
    spool_runs(root, small, "mine", SLICE // 2)
    (root / str(small)).chmod(0o700)
    os.chown(root / str(small), small, small)
    for path in (root / str(small)).iterdir():
        os.chown(path, small, small)
    core, slices, applied = drain_recording_slices(
        tmp_path, root, Config(spool_events_per_second=10_000))
    assert applied == 5 * SLICE + SLICE // 2
    assert (runs(core, big, "flood"), runs(core, small, "mine")) == (5 * SLICE, SLICE // 2)
    # the small owner's events come right after the first slice of the big owner's backlog
    assert [(uid, len(names)) for uid, names in slices] == [
        (big, SLICE), (small, SLICE // 2), *[(big, SLICE)] * 4]


def test_retries_are_drained_before_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    spool_runs(root, uid, "flood", 10 * SLICE)  # without the rule, 1 chance in 10 to be first
    retry = Finished(new_event_id(), "flood", 1.0, 10, start_time=0.5, duration_ms=500)
    Spool(str(root), uid).write(retry.id, retry.to_wire(), retry=True)
    _, slices, applied = drain_recording_slices(
        tmp_path, root, Config(spool_events_per_second=10_000))
    assert applied == 10 * SLICE + 1
    assert slices[0][1][0] == f"r-{retry.id}.json"  # the earliest event of the first slice


def test_one_pass_takes_a_small_spool_with_a_retry_whole(tmp_path: Path) -> None:
    """The retry is listed once: a directory smaller than a slice is emptied by one pass."""
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    spool_runs(root, uid, "flood", 20)
    retry = Finished(new_event_id(), "flood", 1.0, 10, start_time=0.5, duration_ms=500)
    Spool(str(root), uid).write(retry.id, retry.to_wire(), retry=True)
    core, slices, applied = drain_recording_slices(tmp_path, root, Config())
    assert (applied, runs(core, uid, "flood")) == (21, 21)
    assert not list((root / str(uid)).iterdir())



# ---- the census of the spool root: junk counted, never kept --------------------------------


def census_peak(tmp_path: Path, root: Path) -> tuple[list[OwnerTurn], int]:
    """The drain's census of `root` and the most memory (bytes, tracemalloc) it held at once."""
    drain = SpoolDrain(AgentCore(Store(tmp_path), CONFIG), root, CONFIG)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    tracemalloc.start()
    try:
        owners = drain._census(root_fd)
        return owners, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        os.close(root_fd)


def plant(root: Path, names: list[str]) -> None:
    for name in names:
        os.close(os.open(root / name, os.O_CREAT | os.O_WRONLY, 0o644))


def test_junk_in_the_spool_root_is_counted_not_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """100,000 junk names (and 1,000 named like uids, not directories) next to one user's
    spool: the census keeps that user's one directory and less than a byte a junk name."""
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    spool_runs(root, uid, "mine", 3)
    _, clean_peak = census_peak(tmp_path / "clean", root)
    plant(root, [f"junk-{n}" for n in range(100_000)] + [str(4_000_000 + n) for n in range(1000)])
    owners, junk_peak = census_peak(tmp_path / "junk", root)
    assert [(o.uid, list(o.names), o.left) for o in owners] == [(uid, [str(uid)], 3)]
    assert junk_peak - clean_peak < 100_000  # a list of the names: over 6,000,000 bytes
    said = [r.getMessage() for r in caplog.records if "junk in the spool root" in r.getMessage()]
    assert len(said) == 1 and "skipped 101000 entries" in said[0]


def test_an_owners_many_fallback_directories_wait_for_later_passes(tmp_path: Path) -> None:
    """<uid> and 150 fallback directories, an event in each: a pass keeps <uid> and the first
    MAX_DIRS_PER_OWNER fallbacks, counts the rest in the backlog, and the next pass takes them."""
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    spool_runs(root, uid, "mine", 1)
    for number in range(150):
        fallback = root / f"{uid}.{number:016x}"
        fallback.mkdir(mode=0o700)
        event = Finished(new_event_id(), "mine", 2e9 + number, 10, start_time=2e9,
                         duration_ms=1)
        (fallback / f"{event.id}.json").write_bytes(event.to_wire())
    owners, _ = census_peak(tmp_path / "census", root)
    assert [(len(o.names), o.left, o.dirs_left_out) for o in owners] == [
        (1 + MAX_DIRS_PER_OWNER, 151, 150 - MAX_DIRS_PER_OWNER)]

    async def two_passes() -> tuple[list[int], int]:
        config = Config(spool_events_per_second=10_000)
        core = AgentCore(Store(tmp_path), config)
        writer = asyncio.create_task(core.run())
        drain = SpoolDrain(core, root, config, Clock())
        applied = [await drain.drain(), await drain.drain()]
        core.stop()
        await writer
        return applied, runs(core, uid, "mine")

    assert asyncio.run(two_passes()) == ([1 + MAX_DIRS_PER_OWNER, 150 - MAX_DIRS_PER_OWNER], 151)
    assert [p.name for p in root.iterdir()] == [str(uid)]  # the drained fallbacks are removed


def test_a_retry_drained_before_its_line_keeps_its_id_and_a_drained_file_settles_its_own(
        tmp_path: Path) -> None:
    """docs/protocol.md, Exactly once: a retry applied from the spool may still have its
    wrapper's line unread in the agent (a slow accept): its id stays in doubt, so that line is
    acknowledged and changes nothing; a plain spooled file, once unlinked, was the last copy:
    its id is forgotten (nothing more is remembered for it)."""
    root = tmp_path / "spool"
    root.mkdir()
    uid = os.getuid()
    retry = Finished(new_event_id(), "flood", 1.0, 10, start_time=0.5, duration_ms=500)
    Spool(str(root), uid).write(retry.id, retry.to_wire(), retry=True)
    plain = Finished(new_event_id(), "flood", 2.0, 11, start_time=1.5, duration_ms=500)
    spool(root, uid, plain)

    async def scenario() -> tuple[int, bool, int, int]:
        core = AgentCore(Store(tmp_path), CONFIG)
        writer = asyncio.create_task(core.run())
        await SpoolDrain(core, root, CONFIG, Clock()).drain()
        kept = core.ids_in_doubt(uid)  # the retry's: the plain file's was settled
        line_applied = await core.submit(uid, "me", retry)  # the retry's line, read late
        core.settle(uid, [retry.id])  # as the socket does once both copies came
        core.stop()
        await writer
        return kept, line_applied, runs(core, uid, "flood"), core.ids_in_doubt(uid)

    assert asyncio.run(scenario()) == (1, False, 2, 0)
    assert not list((root / str(uid)).iterdir())
