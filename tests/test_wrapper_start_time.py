"""One run, one start time: the lock record, the log's name and both events carry the same one."""

from __future__ import annotations

import os
from pathlib import Path

from cronwrap.wrapper.events import Finished, Started
from cronwrap.wrapper.logs import log_name
from wrapper_helpers import Dirs, dirs, holds_open, start, wait_for

__all__ = ["dirs"]


def events_of(dirs: Dirs, pid: int) -> tuple[Started, Finished]:
    """The started and finished events the wrapper with `pid` spooled (exactly one of each)."""
    (started,) = [e for e in dirs.spooled() if isinstance(e, Started) and e.pid == pid]
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished) and e.pid == pid]
    return started, finished


def lock_record(dirs: Dirs, job: str) -> tuple[int, float]:
    pid, start_time = (dirs.lock / f"{job}.{os.getuid()}.lock").read_text().split()
    return int(pid), float(start_time)


def assert_one_start_time(dirs: Dirs, job: str, pid: int) -> None:
    started, finished = events_of(dirs, pid)
    assert finished.start_time == started.time
    assert Path(finished.log_path or "").name == log_name(started.time)
    assert started.time <= finished.time


def test_a_run_has_one_start_time_in_its_events_and_its_log_name(dirs: Dirs) -> None:
    done = start(dirs, "-n", "plain", "--", "sh", "-c", "exit 3")
    done.communicate(timeout=60)
    assert done.returncode == 3
    assert_one_start_time(dirs, "plain", done.pid)
    assert lock_record(dirs, "plain") == (done.pid, round(events_of(dirs, done.pid)[0].time, 3))


def test_a_run_that_waited_for_the_lock_starts_when_it_got_it(dirs: Dirs, tmp_path: Path) -> None:
    release, running = tmp_path / "release", tmp_path / "running"
    first = start(dirs, "-n", "waity", "--", "sh", "-c",
                  f"touch {running}; while [ ! -e {release} ]; do sleep 0.05; done")
    wait_for(running.exists, "the first run to start")
    second = start(dirs, "-n", "waity", "--lock-wait", "60s", "--", "sh", "-c", "exit 3")
    lock_file = dirs.lock / f"waity.{os.getuid()}.lock"
    wait_for(lambda: holds_open(second.pid, lock_file), "the second run to wait for the lock")
    release.touch()
    first.communicate(timeout=60)
    second.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (0, 3)
    assert_one_start_time(dirs, "waity", first.pid)
    assert_one_start_time(dirs, "waity", second.pid)
    first_finished = events_of(dirs, first.pid)[1]
    second_started = events_of(dirs, second.pid)[0]
    # the waiting run started once the first had finished, not when cron launched it
    assert second_started.time >= first_finished.start_time + first_finished.duration_ms / 1000
    assert lock_record(dirs, "waity") == (second.pid, round(second_started.time, 3))
