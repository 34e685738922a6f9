"""The wrapper around a real job: exit status, signals, timeouts, overlap, output, logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cronwrap.wrapper.events import Finished, Overlapped, Started
from wrapper_helpers import CRONWRAP, Dirs, dirs, process_gone, run, start, wait_for

__all__ = ["dirs"]


@pytest.mark.parametrize("status", [0, 1, 3, 42, 255])
def test_exit_status_is_the_jobs(dirs: Dirs, status: int) -> None:
    result = run(dirs, "-n", "job", "--", "sh", "-c", f"exit {status}")
    assert result.returncode == status
    finished = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert [e.exit_status for e in finished] == [status]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_job_killed_by_signal_exits_128_plus_n(dirs: Dirs, sig: signal.Signals) -> None:
    result = run(dirs, "-n", "job", "--", "sh", "-c", f"kill -{int(sig)} $$")
    assert result.returncode == 128 + sig
    assert f"killed by signal {int(sig)}" in result.stderr
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.signal == sig and finished.exit_status == 128 + sig


def test_command_not_found_and_not_executable(dirs: Dirs, tmp_path: Path) -> None:
    missing = run(dirs, "-n", "job", "--", str(tmp_path / "no-such-program"))
    assert missing.returncode == 127
    assert "command not found" in missing.stderr
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(0o644)
    denied = run(dirs, "-n", "job", "--", str(script))
    assert denied.returncode == 126
    assert "cannot execute" in denied.stderr


def test_timeout_kills_the_whole_process_group(dirs: Dirs, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    job = f"sleep 300 & echo $! > {pid_file}; wait"
    result = run(dirs, "-n", "slow", "--timeout", "1", "--kill-after", "2s", "--", "sh", "-c", job)
    assert result.returncode == 124
    assert "timed out" in result.stderr
    grandchild = int(pid_file.read_text())
    wait_for(lambda: process_gone(grandchild), f"grandchild {grandchild} to be gone")
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.timed_out and finished.exit_status == 124
    assert finished.cadence.timeout == 1.0


def test_timeout_escalates_to_sigkill_when_term_is_ignored(dirs: Dirs, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    job = f"trap '' TERM; touch {ready}; while :; do sleep 0.1; done"
    result = run(dirs, "-n", "stubborn", "--timeout", "0.5", "--kill-after", "0.5",
                 "--", "sh", "-c", job)
    assert result.returncode == 124
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.timed_out and finished.signal == signal.SIGKILL


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_to_the_wrapper_reach_the_job_and_its_children(
    dirs: Dirs, tmp_path: Path, sig: signal.Signals
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    wrapper = start(dirs, "-n", "victim", "--", "sh", "-c",
                    f"sleep 300 & echo $! > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}; wait")
    wait_for(pid_file.exists, "the job to start its child")
    grandchild = int(pid_file.read_text())
    wrapper.send_signal(sig)
    _, stderr = wrapper.communicate(timeout=30)
    assert wrapper.returncode == 128 + sig
    assert f"stopped by signal {int(sig)}" in stderr
    wait_for(lambda: process_gone(grandchild), f"grandchild {grandchild} to be gone")
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.signal == sig and finished.exit_status == 128 + sig


def test_leftover_background_processes_are_killed_when_the_job_exits(
    dirs: Dirs, tmp_path: Path
) -> None:
    pid_file = tmp_path / "orphan.pid"
    result = run(dirs, "-n", "leaky", "--", "sh", "-c", f"sleep 300 & echo $! > {pid_file}")
    assert result.returncode == 0
    orphan = int(pid_file.read_text())
    wait_for(lambda: process_gone(orphan), f"left-behind process {orphan} to be gone")


def test_overlapping_run_is_refused_and_names_the_holder_quiet_with_exit_0(
        dirs: Dirs, tmp_path: Path) -> None:
    release = tmp_path / "release"
    started = tmp_path / "started"
    first = start(dirs, "-n", "nightly", "--", "sh", "-c",
                  f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done")
    try:
        wait_for(started.exists, "the first run to start")
        second = run(dirs, "-n", "nightly", "--", "touch", str(tmp_path / "second-ran"))
        quiet = run(dirs, "-n", "nightly", "--overlap-exit", "0", "--", "true")
        told = run(dirs, "-n", "nightly", "--overlap-exit", "0", "-v", "--", "true")
    finally:
        release.touch()
        first.communicate(timeout=30)
    assert first.returncode == 0
    assert second.returncode == 75
    assert not (tmp_path / "second-ran").exists()
    lines = second.stderr.splitlines()
    assert len(lines) == 1
    assert "'nightly'" in lines[0] and f"pid {first.pid}" in lines[0] and "since 20" in lines[0]
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")  # cron mails nothing
    assert told.returncode == 0 and f"pid {first.pid}" in told.stderr  # -v: say it all
    overlaps = [e for e in dirs.spooled() if isinstance(e, Overlapped)]
    assert [e.holder_pid for e in overlaps] == [first.pid, first.pid, first.pid]
    again = run(dirs, "-n", "nightly", "--", "true")
    assert again.returncode == 0 and again.stderr == ""


def test_lock_wait_waits_for_the_previous_run(dirs: Dirs, tmp_path: Path) -> None:
    started = tmp_path / "started"
    first = start(dirs, "-n", "waity", "--", "sh", "-c", f"touch {started}; sleep 0.5")
    wait_for(started.exists, "the first run to start")
    second = run(dirs, "-n", "waity", "--lock-wait", "30s", "--", "true")
    first.communicate(timeout=30)
    assert second.returncode == 0 and second.stderr == ""


# Measures the peak RSS of the wrapper and what it waited for.  It runs in a fresh process:
# a child forked straight from pytest would carry pytest's own peak RSS (Linux records the
# pre-exec peak of a forked child in its rusage), so the figure would measure the test runner.
MAX_RSS_PROBE = """
import os, subprocess, sys
with open(os.devnull, "wb") as null:
    proc = subprocess.Popen(sys.argv[1:], stdout=null, stderr=null)
    _, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def test_huge_output_streams_in_bounded_memory_and_the_log_is_capped(dirs: Dirs) -> None:
    job = "echo FIRST; head -c 200000000 /dev/zero | tr '\\0' x; echo; echo LAST"
    probe = subprocess.run(
        [sys.executable, "-c", MAX_RSS_PROBE, *CRONWRAP, *dirs.options(), "-n", "big",
         "--max-log-size", "1M", "--", "sh", "-c", job],
        capture_output=True, text=True, check=True, timeout=120)
    returncode, max_rss_kib = map(int, probe.stdout.split())
    assert returncode == 0
    assert max_rss_kib < 100 * 1024  # the wrapper and everything it waited for
    (log,) = dirs.job_logs("big")
    data = log.read_bytes()
    assert len(data) < (1 << 20) + 200
    assert data.startswith(b"FIRST\nxxxx")
    assert data.endswith(b"xxxx\nLAST\n")
    marker = b"[cronwrap: "
    assert data.count(marker) == 1
    omitted = int(data.split(marker)[1].split()[0])
    assert len(b"FIRST\n") + 200_000_000 + len(b"\nLAST\n") == omitted + (1 << 20)


def test_quiet_on_success_with_output_in_the_log(dirs: Dirs) -> None:
    result = run(dirs, "-n", "chatty", "--", "sh", "-c", "echo out; echo err >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (log,) = dirs.job_logs("chatty")
    assert log.read_text() == "out\nerr\n"
    assert oct(log.stat().st_mode & 0o777) == "0o640"
    assert log.name.endswith("Z.log") and log.name[8] == "T"


def test_failure_prints_header_and_the_tail_of_output(dirs: Dirs) -> None:
    job = "i=1; while [ $i -le 100 ]; do echo line$i; i=$((i+1)); done; exit 2"
    result = run(dirs, "-n", "broken", "--", "sh", "-c", job)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    (log,) = dirs.job_logs("broken")
    assert lines[0].startswith("cronwrap: job 'broken' failed with exit status 2 after ")
    assert lines[1] == f"cronwrap: log: {log}"
    assert lines[3:] == [f"line{i}" for i in range(51, 101)]


def test_verbose_tees_output(dirs: Dirs) -> None:
    result = run(dirs, "-n", "loud", "-v", "--", "sh", "-c", "echo out; echo err >&2")
    assert result.returncode == 0
    assert result.stdout == "out\nerr\n" and result.stderr == ""


def test_retention_by_count(dirs: Dirs) -> None:
    for number in range(4):
        assert run(dirs, "-n", "rot", "--keep", "2", "--", "echo", f"run{number}").returncode == 0
    logs = dirs.job_logs("rot")
    assert [p.read_text() for p in logs] == ["run2\n", "run3\n"]


def test_retention_by_age(dirs: Dirs) -> None:
    assert run(dirs, "-n", "aged", "--", "true").returncode == 0
    job_dir = dirs.log / "root" / "aged"
    old, recent = job_dir / "20200101T000000.000Z.log", job_dir / "20200102T000000.000Z.log"
    for path, days in ((old, 10), (recent, 2)):
        path.write_text("x")
        stamp = time.time() - days * 86400
        os.utime(path, (stamp, stamp))
    unrelated = job_dir / "notes.txt"
    unrelated.write_text("keep me")
    os.utime(unrelated, (0, 0))
    assert run(dirs, "-n", "aged", "--keep", "0", "--keep-days", "7", "--", "true").returncode == 0
    assert not old.exists() and recent.exists() and unrelated.exists()
    assert len(dirs.job_logs("aged")) == 3


def test_unwritable_log_dir_still_runs_the_job_and_says_so_only_on_failure(
        dirs: Dirs, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    marker = tmp_path / "ran"
    result = subprocess.run(
        [*CRONWRAP, "--log-dir", str(blocker / "logs"), "--lock-dir", str(dirs.lock),
         "--spool-dir", str(dirs.spool), "--socket", str(dirs.socket), "--config", str(dirs.config),
         "-n", "nolog", "--", "touch", str(marker)],
        capture_output=True, text=True, timeout=60,
    )
    # a success prints nothing (cron would mail it on every run): the agent hears of it
    assert result.returncode == 0 and marker.exists() and result.stderr == ""
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.log_path is None
    assert finished.log_problem is not None and str(blocker) in finished.log_problem
    failed = subprocess.run(
        [*CRONWRAP, "--log-dir", str(blocker / "logs"), "--lock-dir", str(dirs.lock),
         "--spool-dir", str(dirs.spool), "--socket", str(dirs.socket), "--config", str(dirs.config),
         "-n", "nolog", "--", "sh", "-c", "exit 3"],
        capture_output=True, text=True, timeout=60,
    )
    assert failed.returncode == 3
    assert f"cronwrap: log: (none) (cannot write a log under {blocker}/logs: " in failed.stderr


def test_symlink_planted_at_the_lock_path_is_not_followed(dirs: Dirs, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("do not touch")
    dirs.lock.mkdir(mode=0o700)
    (dirs.lock / f"guarded.{os.getuid()}.lock").symlink_to(target)
    marker = tmp_path / "ran"
    result = run(dirs, "-n", "guarded", "--", "touch", str(marker))
    assert (result.returncode, result.stderr) == (0, "")  # under the fallback lock
    assert target.read_text() == "do not touch" and marker.exists()
    assert (dirs.log / "root" / ".locks" / f"guarded.{os.getuid()}.lock").is_file()


def test_symlinked_lock_dir_is_not_followed(dirs: Dirs, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    dirs.lock.symlink_to(real)
    result = run(dirs, "-n", "guarded", "--", "sh", "-c", "exit 2")
    assert result.returncode == 2
    (lock_line,) = [line for line in result.stderr.splitlines() if "lock:" in line]
    assert "symlink" in lock_line and str(dirs.log / "root" / ".locks") in lock_line
    assert list(real.iterdir()) == []


def test_a_run_in_the_usual_lock_dir_also_takes_the_fallback_lock(
        dirs: Dirs, tmp_path: Path) -> None:
    """The lock dir was unsafe for the first run and is fine for the later ones (its symlink
    removed meanwhile): they still find the first run through the fallback lock, and wait for
    it with --lock-wait."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dirs.lock.symlink_to(elsewhere)
    release, started = tmp_path / "release", tmp_path / "started"
    first = start(dirs, "-n", "moved", "--", "sh", "-c",
                  f"touch {started}; while [ ! -e {release} ]; do sleep 0.05; done")
    try:
        wait_for(started.exists, "the first run to start")
        dirs.lock.unlink()
        second = run(dirs, "-n", "moved", "--", "touch", str(tmp_path / "second-ran"))
        waiting = start(dirs, "-n", "moved", "--lock-wait", "60s", "--", "true")
        usual = dirs.lock / f"moved.{os.getuid()}.lock"
        wait_for(lambda: _flock_holders(usual) == [waiting.pid],
                 "the waiting run to hold the usual lock while it waits for the fallback")
    finally:
        release.touch()
        first.communicate(timeout=30)
    assert waiting.communicate(timeout=60) == ("", "") and waiting.returncode == 0
    assert first.returncode == 0
    assert second.returncode == 75 and f"pid {first.pid}" in second.stderr
    assert not (tmp_path / "second-ran").exists()


def _flock_holders(path: Path) -> list[int]:
    """The pids /proc/locks names for flocks on `path` (an inode of this file system)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return []
    inode = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    lines = Path("/proc/locks").read_text().splitlines()
    return [int(line.split()[4]) for line in lines
            if "FLOCK" in line and "->" not in line and line.split()[5] == inode]


def test_a_lock_dir_that_is_the_fallback_dir_is_locked_once(dirs: Dirs) -> None:
    fallback = dirs.log / "root" / ".locks"
    results = [run(dirs, "-n", "same", "--lock-dir", str(fallback), "--", "true")
               for _ in range(2)]
    assert [(r.returncode, r.stderr) for r in results] == [(0, ""), (0, "")]
    assert (fallback / f"same.{os.getuid()}.lock").is_file()


def test_no_safe_lock_anywhere_refuses_the_run_and_reports_it(dirs: Dirs, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    dirs.lock.symlink_to(real)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    marker = tmp_path / "ran"
    result = run(dirs, "--log-dir", str(blocker), "-n", "stuck", "--", "touch", str(marker))
    assert result.returncode == 73 and not marker.exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("cronwrap: job 'stuck' not run: no safe place for its lock: ")
    assert "symlink" in line and str(blocker) in line
    (finished,) = dirs.spooled()
    assert isinstance(finished, Finished)
    assert (finished.job, finished.exit_status, finished.log_path) == ("stuck", 73, None)
    assert list(real.iterdir()) == []


@pytest.mark.parametrize("level", ["user", "job"])
def test_symlink_planted_in_the_log_tree_is_not_followed(
    dirs: Dirs, tmp_path: Path, level: str
) -> None:
    target = tmp_path / "victim-dir"
    target.mkdir()
    planted = dirs.log / "root" if level == "user" else dirs.log / "root" / "logged"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(target)
    marker = tmp_path / "ran"
    result = run(dirs, "-n", "logged", "--", "touch", str(marker))
    assert result.returncode == 0 and marker.exists() and result.stderr == ""
    assert list(target.iterdir()) == []
    (finished,) = [e for e in dirs.spooled() if isinstance(e, Finished)]
    assert finished.log_path is None and "symlink" in (finished.log_problem or "")


def test_started_event_precedes_the_job_and_finished_carries_the_log(dirs: Dirs) -> None:
    result = run(dirs, "-n", "evented", "--schedule", "0 3 * * *", "--every", "1d",
                 "--grace", "15m", "--max-runtime", "2h", "--", "true")
    assert result.returncode == 0
    started, finished = dirs.spooled()
    assert isinstance(started, Started) and isinstance(finished, Finished)
    assert started.id != finished.id and started.job == finished.job == "evented"
    assert started.cadence.schedule == "0 3 * * *" and started.cadence.every == 86400
    assert finished.cadence.grace == 900 and finished.cadence.max_runtime == 7200
    (log,) = dirs.job_logs("evented")
    assert finished.log_path == str(log)
    assert finished.start_time <= started.time <= finished.time
