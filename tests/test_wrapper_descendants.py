"""Nothing the job started is left behind: setsid and double-forked descendants, at a timeout and
at the job's normal end; orphans the wrapper inherits are reaped while the job runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronwrap.wrapper.events import Finished
from cronwrap.wrapper.reaper import Process, descendants, send
from wrapper_helpers import Dirs, dirs, process_gone, run, start, wait_for

__all__ = ["dirs"]


def escapee(pid_file: Path, body: str = "exec sleep 300") -> str:
    """Shell that starts a process in a new session, orphaned at once (its parent subshell
    exits), which writes its pid to `pid_file` and then runs `body`."""
    inner = f"echo $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; {body}"
    return f"(setsid sh -c '{inner}' &)"


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where an escapee writes its pid; whatever it names is killed after the test."""
    path = tmp_path / "escapee.pid"
    yield path
    if path.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(path.read_text()), signal.SIGKILL)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("body", ["exec sleep 300", "trap '' TERM; while :; do sleep 0.1; done"])
def test_timeout_kills_a_descendant_that_called_setsid(
        dirs: Dirs, pid_file: Path, body: str) -> None:
    job = f"{escapee(pid_file, body)}; while [ ! -e {pid_file} ]; do sleep 0.05; done; sleep 300"
    result = run(dirs, "-n", "slow", "--timeout", "2", "--kill-after", "1s", "--", "sh", "-c", job)
    assert result.returncode == 124, result.stderr
    escaped = int(pid_file.read_text())
    wait_for(lambda: process_gone(escaped), f"the setsid descendant {escaped} to be gone")
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.timed_out and finished.exit_status == 124


def test_a_daemon_left_running_at_the_jobs_end_is_killed_quietly_and_logged(
        dirs: Dirs, pid_file: Path) -> None:
    # the job ends once the escapee runs `sleep` and its parent subshell is gone: it is then
    # the wrapper's child (the job's $PPID is the wrapper) and the only process left
    # (bounded: without a subreaper the parent never becomes the wrapper)
    settled = (f'e=$(cat {pid_file}); n=0; until [ "$(cut -d" " -f4 /proc/$e/stat)" = "$PPID" ] '
               f'&& [ "$(cat /proc/$e/comm)" = sleep ] || [ $n -ge 600 ]; '
               'do n=$((n+1)); sleep 0.05; done')
    job = (f"{escapee(pid_file)}; while [ ! -e {pid_file} ]; do sleep 0.05; done; {settled}; "
           "echo done")
    result = run(dirs, "-n", "daemonizer", "--", "sh", "-c", job)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    escaped = int(pid_file.read_text())
    wait_for(lambda: process_gone(escaped), f"the daemonized descendant {escaped} to be gone")
    (log,) = dirs.job_logs("daemonizer")
    assert log.read_text().splitlines() == [
        "done", f"cronwrap: killed 1 process(es) the job left running: {escaped} (sleep)"]


def test_the_wrapper_inherits_and_reaps_orphans_while_the_job_runs(
        dirs: Dirs, pid_file: Path, tmp_path: Path) -> None:
    release, orphan_may_exit = tmp_path / "release", tmp_path / "orphan-may-exit"
    orphan_body = f"while [ ! -e {orphan_may_exit} ]; do sleep 0.05; done"
    job = f"{escapee(pid_file, orphan_body)}; while [ ! -e {release} ]; do sleep 0.05; done"
    wrapper = start(dirs, "-n", "parent", "--", "sh", "-c", job)
    try:
        wait_for(pid_file.exists, "the orphan to start")
        orphan = int(pid_file.read_text())
        wait_for(lambda: parent_of(orphan) == wrapper.pid, "the wrapper to adopt the orphan")
        orphan_may_exit.touch()
        wait_for(lambda: not Path(f"/proc/{orphan}").exists(),
                 f"the exited orphan {orphan} to be reaped, not left a zombie")
    finally:
        release.touch()
        wrapper.communicate(timeout=60)
    assert wrapper.returncode == 0


def test_a_process_is_signalled_only_while_it_is_the_one_the_walk_saw() -> None:
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        (seen,) = [p for p in descendants(os.getpid()) if p.pid == sleeper.pid]
        reused = Process(seen.pid, seen.pgid, b"0")  # the same pid, another process's start
        assert send(reused, signal.SIGKILL)
        assert sleeper.poll() is None
        assert send(seen, signal.SIGTERM)
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
    finally:
        sleeper.kill()
        sleeper.wait()
