"""Issue 13 item 4: a lock directory planted by another user can neither stop nor hide a job.

The attacker creates (or symlinks) the victim's lock directory before the victim's first run,
as anyone can in /tmp (`/tmp/cronwrap-UID`) or in /run/lock before the package's tmpfiles
entry made `/run/lock/cronwrap`. The victim's job then runs under a lock in its own log
directory (LOGDIR/<user>/.locks), still one run at a time; only when that is unusable too is
the run refused, with exit 73, one line on stderr, and a failed run the agent counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_support import Agent

from .support import User, cronwrap_as, owned_dir
from .wrapping import (
    cronwrap_root,
    empty_config,
    files_under,
    held_job,
    plant,
    release,
    start_cronwrap_as,
    start_cronwrap_root,
    sticky_dir,
    wait_until,
)


def squat(attacker: User, path: Path, how: str, shared_base: Path) -> None:
    if how == "directory":
        plant(attacker, "mkdir", "-m", "0777", str(path))
    else:
        trap = owned_dir(shared_base / "trap", attacker, 0o777)
        plant(attacker, "ln", "-s", str(trap), str(path))


@pytest.mark.parametrize("how", ["directory", "symlink"])
def test_a_squatted_lock_dir_neither_stops_a_users_job_nor_its_overlap_guard(
        attackers: tuple[User, ...], shared_base: Path, root_agent: Agent, how: str) -> None:
    attacker, victim, _ = attackers
    lock_dir = sticky_dir(shared_base / "tmp") / f"cronwrap-{victim.uid}"
    squat(attacker, lock_dir, how, shared_base)
    logs = owned_dir(shared_base / "victim-logs", victim)
    flags = owned_dir(shared_base / "flags", victim, 0o755)
    options = ["--config", str(empty_config(shared_base)), "--lock-dir", str(lock_dir),
               "--log-dir", str(logs), "-n", "payroll"]

    first = start_cronwrap_as(victim, root_agent, *options, "--", *held_job(flags))
    try:
        wait_until(lambda: (flags / "STARTED").exists(), "the first run to start")
        second = cronwrap_as(victim, root_agent, *options, "--", "true")
    finally:
        release(flags)
        out, err = first.communicate(timeout=60)
    assert (first.returncode, out, err) == (0, "", "")
    assert second.returncode == 75 and "still running" in second.stderr
    row = root_agent.status()[f"{victim.name}/payroll"]
    assert (row["runs"], row["failures"], row["overlaps"]) == (1, 0, 1)
    assert (logs / victim.name / ".locks" / f"payroll.{victim.uid}.lock").is_file()
    if how == "symlink":
        assert files_under(shared_base / "trap") == []


def test_a_squatted_lock_dir_cannot_stop_roots_job(attackers: tuple[User, ...],
                                                   shared_base: Path, root_agent: Agent) -> None:
    attacker = attackers[0]
    lock_dir = sticky_dir(shared_base / "run-lock") / "cronwrap"
    squat(attacker, lock_dir, "directory", shared_base)
    flags = shared_base / "flags"
    flags.mkdir()
    options = ["--config", str(empty_config(shared_base)), "--lock-dir", str(lock_dir),
               "--log-dir", str(shared_base / "root-logs"), "-n", "backup"]
    first = start_cronwrap_root(root_agent, *options, "--", *held_job(flags))
    try:
        wait_until(lambda: (flags / "STARTED").exists(), "root's first run to start")
        second = cronwrap_root(root_agent, *options, "--", "true")
    finally:
        release(flags)
        out, err = first.communicate(timeout=60)
    assert (first.returncode, out, err) == (0, "", "")
    assert second.returncode == 75
    row = root_agent.status()["root/backup"]
    assert (row["runs"], row["failures"], row["overlaps"]) == (1, 0, 1)
    assert files_under(lock_dir) == []


def test_with_no_safe_place_for_the_lock_the_run_is_refused_and_reported(
        attackers: tuple[User, ...], nobody: User, shared_base: Path,
        root_agent: Agent) -> None:
    attacker = attackers[0]
    tmp = sticky_dir(shared_base / "tmp")
    logs = shared_base / "logs"
    logs.mkdir()
    logs.chmod(0o1733)  # like /var/log/cronwrap/users, where nobody's logs go
    squat(attacker, tmp / f"cronwrap-{nobody.uid}", "directory", shared_base)
    squat(attacker, logs / nobody.name, "directory", shared_base)
    marker = tmp / "ran"
    result = cronwrap_as(nobody, root_agent, "--config", str(empty_config(shared_base)),
                         "--lock-dir", str(tmp / f"cronwrap-{nobody.uid}"),
                         "--log-dir", str(logs), "-n", "cleanup", "--", "touch", str(marker))
    assert result.returncode == 73 and not marker.exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("cronwrap: job 'cleanup' not run: no safe place for its lock: ")
    assert f"owned by uid {attacker.uid}" in line
    row = root_agent.status()[f"{nobody.name}/cleanup"]
    assert (row["state"], row["runs"], row["failures"], row["last_exit_status"]) == (
        "failed", 1, 1, 73)
