"""A wrapper killed with SIGKILL: its job keeps the lock (as under flock(1)) for as long as any of
its processes holding it lives, and the next run reports an overlap naming the live holder."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from cronwrap.wrapper.events import Overlapped, decode_message, new_event_id
from wrapper_helpers import Dirs, dirs, process_gone, run, start, wait_for

__all__ = ["dirs"]


def test_a_killed_wrappers_job_keeps_the_lock_until_it_ends(dirs: Dirs, tmp_path: Path) -> None:
    job_pid_file, release = tmp_path / "job.pid", tmp_path / "release"
    wrapper = start(dirs, "-n", "orphaned", "--", "sh", "-c",
                    f"echo $$ > {job_pid_file}.tmp; mv {job_pid_file}.tmp {job_pid_file}; "
                    f"while [ ! -e {release} ]; do sleep 0.05; done")
    wait_for(job_pid_file.exists, "the job to start")
    job_pid = int(job_pid_file.read_text())
    try:
        wrapper.kill()
        wrapper.communicate(timeout=30)
        second = run(dirs, "-n", "orphaned", "--", "touch", str(tmp_path / "second-ran"))
        assert not process_gone(job_pid), "the orphaned job was expected to outlive its wrapper"
    finally:
        release.touch()
    assert second.returncode == 75, second.stderr
    assert not (tmp_path / "second-ran").exists()
    (line,) = second.stderr.splitlines()
    assert f"still running (pid {job_pid} since 20" in line
    assert f"left running by cronwrap pid {wrapper.pid}, which is gone" in line
    (overlap,) = [e for e in dirs.spooled() if isinstance(e, Overlapped)]
    assert (overlap.holder_pid, overlap.lost_wrapper_pid) == (job_pid, wrapper.pid)
    wait_for(lambda: process_gone(job_pid), f"the orphaned job {job_pid} to end")
    third = run(dirs, "-n", "orphaned", "--", "true")
    assert (third.returncode, third.stderr) == (0, "")


def test_the_lock_is_held_by_any_process_of_the_run_still_alive(
        dirs: Dirs, tmp_path: Path) -> None:
    # the job's main process has ended; a child it started in the background still runs,
    # holding the inherited lock: the next run names that child
    child_pid_file, release = tmp_path / "child.pid", tmp_path / "release"
    child = (f"sh -c 'echo $$ > {child_pid_file}.tmp; mv {child_pid_file}.tmp {child_pid_file}; "
             f"while [ ! -e {release} ]; do sleep 0.05; done' &")
    wrapper = start(dirs, "-n", "leftover", "--", "sh", "-c",
                    f"{child} while [ ! -e {child_pid_file} ]; do sleep 0.05; done; "
                    f"while [ ! -e {release} ]; do sleep 0.05; done")
    wait_for(child_pid_file.exists, "the job's child to start")
    child_pid = int(child_pid_file.read_text())
    try:
        wrapper.kill()
        wrapper.communicate(timeout=30)
        job_main = _parent(child_pid)
        os.kill(job_main, signal.SIGKILL)
        wait_for(lambda: _parent(child_pid) != job_main, "the child to lose its parent")
        second = run(dirs, "-n", "leftover", "--", "true")
    finally:
        release.touch()
    assert second.returncode == 75, second.stderr
    assert f"(pid {child_pid} since" in second.stderr
    assert f"cronwrap pid {wrapper.pid}, which is gone" in second.stderr
    wait_for(lambda: process_gone(child_pid), f"the child {child_pid} to end")


def _parent(pid: int) -> int:
    with contextlib.suppress(FileNotFoundError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return 0


def test_lost_wrapper_pid_is_on_the_wire_only_when_there_is_one() -> None:
    lost = Overlapped(new_event_id(), "job", 1.0, 5, 77, lost_wrapper_pid=66)
    assert decode_message(lost.to_wire()) == lost
    plain = Overlapped(new_event_id(), "job", 1.0, 5, 77)
    assert b"lost_wrapper_pid" not in plain.to_wire()
    assert decode_message(plain.to_wire()) == plain
