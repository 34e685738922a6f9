"""A squatter who removes their squat while the victim's job runs must not open a second lock.

tests/attacks/test_locks.py shows a squatted lock directory (`/tmp/cronwrap-UID`, or
`/run/lock/cronwrap` for root) sends the victim's lock to LOGDIR/<user>/.locks. The squat is
the attacker's own directory, so the attacker may remove it at any time: here while the
victim's first run holds the fallback lock. The victim's next run then finds the usual lock
directory free, creates it, and must still see that the first run is running: a run that
locks in the usual directory also takes the fallback lock whenever its file exists.
"""

from __future__ import annotations

from pathlib import Path

from agent_support import Agent

from .support import User, cronwrap_as, owned_dir, run_as
from .wrapping import (
    empty_config,
    held_job,
    plant,
    release,
    start_cronwrap_as,
    sticky_dir,
    wait_until,
)


def test_removing_the_squat_mid_run_does_not_let_a_second_run_start(
        attackers: tuple[User, ...], shared_base: Path, root_agent: Agent) -> None:
    attacker, victim, _ = attackers
    lock_dir = sticky_dir(shared_base / "tmp") / f"cronwrap-{victim.uid}"
    plant(attacker, "mkdir", "-m", "0777", str(lock_dir))
    logs = owned_dir(shared_base / "victim-logs", victim)
    flags = owned_dir(shared_base / "flags", victim, 0o755)
    options = ["--config", str(empty_config(shared_base)), "--lock-dir", str(lock_dir),
               "--log-dir", str(logs), "-n", "payroll"]

    first = start_cronwrap_as(victim, root_agent, *options, "--", *held_job(flags))
    try:
        wait_until(lambda: (flags / "STARTED").exists(), "the first run to start")
        removed = run_as(attacker, "rmdir", str(lock_dir))
        assert removed.returncode == 0, removed.stderr
        second = cronwrap_as(victim, root_agent, *options, "--", "true")
    finally:
        release(flags)
        out, err = first.communicate(timeout=60)
    assert (first.returncode, out, err) == (0, "", "")
    assert second.returncode == 75 and "still running" in second.stderr, second
    row = root_agent.status()[f"{victim.name}/payroll"]
    assert (row["runs"], row["overlaps"]) == (1, 1)
