"""`cronwrap logs JOB --user U`: root finds any user's logs where their runs wrote them; other
users get "permission denied" (77) and not a byte; a planted symlink is not followed (issue 12).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from agent_support import Agent, cronwrap_command

from .support import User, cronwrap_as, run_as


def logs(*args: str, user: User | None = None) -> subprocess.CompletedProcess[str]:
    command = cronwrap_command()
    assert command is not None
    if user is not None:
        return run_as(user, command, "logs", *args)
    return subprocess.run([command, "logs", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": "/root"}, check=False)


def job_with_output(user: User, agent: Agent, text: str) -> str:
    """A run of a fresh job of `user` printing `text`, logged where its runs log by default."""
    job = f"job-{uuid.uuid4().hex[:8]}"
    result = cronwrap_as(user, agent, "-n", job, "--", "echo", text)
    assert (result.returncode, result.stderr) == (0, "")
    return job


def test_root_finds_a_users_logs_in_their_home(attackers: tuple[User, ...],
                                               root_agent: Agent) -> None:
    owner = attackers[0]
    job = job_with_output(owner, root_agent, "output of the owner's job")
    newest = logs(job, "--user", owner.name)
    assert (newest.returncode, newest.stdout) == (0, "output of the owner's job\n"), newest.stderr
    listing = logs(job, "--user", owner.name, "--list")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 1
    missing = logs("no-such-job", "--user", owner.name)
    assert missing.returncode == 66
    assert f"{owner.home}/.local/state/cronwrap/{owner.name}/no-such-job" in missing.stderr


def test_another_user_gets_permission_denied_and_nothing_else(attackers: tuple[User, ...],
                                                             root_agent: Agent) -> None:
    owner, other = attackers[0], attackers[1]
    job = job_with_output(owner, root_agent, "the owner's secret output")
    result = logs(job, "--user", owner.name, user=other)
    assert result.returncode == 77, result.stderr
    assert "permission denied" in result.stderr and result.stdout == ""
    own = logs(job, user=owner)  # the owner reads its own, with no --user
    assert (own.returncode, own.stdout) == (0, "the owner's secret output\n")


def test_a_symlink_planted_for_a_job_directory_is_not_followed(
        attackers: tuple[User, ...], root_agent: Agent, shared_base: Path) -> None:
    owner = attackers[0]
    decoy = shared_base / "decoy"
    decoy.mkdir()
    (decoy / "20260101T000000.000Z.log").write_text("root's eyes only\n")
    job = f"job-{uuid.uuid4().hex[:8]}"
    user_dir = Path(owner.home) / ".local" / "state" / "cronwrap" / owner.name
    planted = run_as(owner, "sh", "-c", f"mkdir -p {user_dir} && ln -s {decoy} {user_dir / job}")
    assert planted.returncode == 0, planted.stderr
    result = logs(job, "--user", owner.name)
    assert result.returncode == 66 and "root's eyes only" not in result.stdout


def test_logs_another_user_planted_under_a_users_name_are_not_shown_as_theirs(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    """In a shared log root (01733, like /var/log/cronwrap/users, where `cronwrap logs` looks
    for every user) anyone may make the directory named after another user first: what is in
    it is not that user's logs, and neither root nor the user is shown it as theirs."""
    attacker, victim, _ = attackers
    shared = shared_base / "logs"
    shared.mkdir()
    shared.chmod(0o1733)
    job = f"job-{uuid.uuid4().hex[:8]}"
    forged = shared / victim.name / job / "20260101T000000.000Z.log"
    planted = run_as(attacker, "sh", "-c", f"umask 022 && mkdir -p {forged.parent} && "
                                           f"echo 'backup OK, nothing to see' > {forged}")
    assert planted.returncode == 0, planted.stderr
    for asked in (logs(job, "--user", victim.name, "--log-dir", str(shared)),
                  logs(job, "--user", victim.name, "--log-dir", str(shared), "--list"),
                  logs(job, "--log-dir", str(shared), user=victim)):
        assert (asked.returncode, asked.stdout) == (66, ""), asked
        assert f"owned by uid {attacker.uid}" in asked.stderr, asked.stderr
