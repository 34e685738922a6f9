"""Config and env files: another user's file never steers a job; an unreadable system config,
a FIFO or a device never stops or hangs one (issue 13 items 11 and 12).

The threat: the wrapper reads --config, --env-file, /etc/cronwrap/cronwrap.toml and the
user's own config before it runs a job; an env file sets the job's PATH.  An attacker plants
files that another user's (or root's) crontab line names, or makes them world-writable, a
FIFO or a symlink.  The system config is swapped in a private mount namespace (an overlay on
/etc), so the host's /etc is never touched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from agent_support import Agent, cronwrap_command
from etc_overlay import with_etc_files

from .support import User, as_user, cronwrap_as, owned_dir, run_as, user_environment

ROOT = User("root", 0, 0, "/root")


def wrapper() -> str:
    command = cronwrap_command()
    assert command is not None, "cronwrap is not installed in this venv"
    return command


def run_wrapper(user: User, agent: Agent, work: Path, *args: str
                ) -> subprocess.CompletedProcess[str]:
    """`cronwrap` as `user` with private log and lock dirs under `work`, reporting to `agent`."""
    return cronwrap_as(user, agent, "--log-dir", str(work / "log"), "--lock-dir",
                       str(work / "lock"), *args, timeout=30)


def plant(path: Path, text: str, owner: User, mode: int) -> Path:
    path.write_text(text)
    os.chown(path, owner.uid, owner.gid)
    path.chmod(mode)
    return path


def evil_path(base: Path, attacker: User) -> tuple[Path, Path]:
    """A directory of the attacker's with a `sh` that leaves a mark: what a planted PATH runs."""
    evil = owned_dir(base / "evilbin", attacker, 0o755)
    mark = base / "owned"
    plant(evil / "sh", f"#!/bin/sh\necho pwned > {mark}\n", attacker, 0o755)
    return evil, mark


@pytest.mark.parametrize("victim_index", [None, 0], ids=["root", "user"])
def test_an_env_file_owned_by_another_user_is_refused(
        attackers: tuple[User, ...], root_agent: Agent, shared_base: Path,
        victim_index: int | None) -> None:
    victim = ROOT if victim_index is None else attackers[victim_index]
    attacker = attackers[1]
    evil, mark = evil_path(shared_base, attacker)
    env_file = plant(shared_base / "job.env", f"PATH={evil}:/usr/bin:/bin\n", attacker, 0o644)
    work = owned_dir(shared_base / "victim", victim)
    result = run_wrapper(victim, root_agent, work, "--env-file", str(env_file), "-n", "job",
                         "--", "sh", "-c", "true")
    assert result.returncode == 78, result.stderr
    assert f"owned by uid {attacker.uid}" in result.stderr.splitlines()[0]
    assert not mark.exists()
    row = root_agent.status()[f"{victim.name}/job"]  # reported: the NMS sees a failed run
    assert (row["runs"], row["failures"], row["last_exit_status"]) == (1, 1, 78)


@pytest.mark.parametrize("mode", [0o666, 0o646], ids=["0666", "0646"])
def test_a_world_writable_env_file_is_refused(attackers: tuple[User, ...], root_agent: Agent,
                                              shared_base: Path, mode: int) -> None:
    victim = attackers[0]
    work = owned_dir(shared_base / "victim", victim)
    env_file = plant(work / "job.env", "GREETING=hello\n", victim, mode)
    marker = work / "ran"
    result = run_wrapper(victim, root_agent, work, "--env-file", str(env_file), "-n", "job",
                         "--", "touch", str(marker))
    assert result.returncode == 78 and "writable by every user" in result.stderr
    assert not marker.exists()


def test_a_group_writable_env_file_is_refused_unless_the_group_is_the_users_own(
        attackers: tuple[User, ...], root_agent: Agent, shared_base: Path) -> None:
    victim, attacker = attackers[0], attackers[1]
    work = owned_dir(shared_base / "victim", victim)
    shared = plant(work / "shared.env", "GREETING=hello\n", victim, 0o664)
    os.chown(shared, victim.uid, attacker.gid)  # the attacker's group may write it
    marker = work / "ran"
    refused = run_wrapper(victim, root_agent, work, "--env-file", str(shared), "-n", "job",
                          "--", "touch", str(marker))
    assert refused.returncode == 78 and f"writable by group {attacker.gid}" in refused.stderr
    assert not marker.exists()
    private = plant(work / "private.env", "GREETING=hello\n", victim, 0o664)  # Debian's UPG
    accepted = run_wrapper(victim, root_agent, work, "--env-file", str(private), "-n", "job",
                           "--", "touch", str(marker))
    assert (accepted.returncode, accepted.stderr) == (0, "")
    assert marker.exists()


def test_a_symlinked_env_file_is_refused(attackers: tuple[User, ...], root_agent: Agent,
                                         shared_base: Path) -> None:
    victim, attacker = attackers[0], attackers[1]
    work = owned_dir(shared_base / "victim", victim)
    real = plant(work / "real.env", "GREETING=hello\n", victim, 0o600)
    link_dir = owned_dir(shared_base / "attacker", attacker, 0o755)
    link = link_dir / "job.env"
    link.symlink_to(real)
    os.lchown(link, attacker.uid, attacker.gid)
    result = run_wrapper(victim, root_agent, work, "--env-file", str(link), "-n", "job",
                         "--", "true")
    assert result.returncode == 78 and "symlink" in result.stderr.splitlines()[0]


@pytest.mark.parametrize("option", ["--env-file", "--config"])
def test_a_fifo_or_a_device_never_hangs_the_wrapper(attackers: tuple[User, ...],
                                                   root_agent: Agent, shared_base: Path,
                                                   option: str) -> None:
    victim = attackers[0]
    work = owned_dir(shared_base / "victim", victim)
    fifo = work / "job.fifo"
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, victim.uid, victim.gid)
    marker = work / "ran"
    for path in (str(fifo), "/dev/zero"):
        # subprocess's timeout is the bound: the old wrapper blocked in open() on the FIFO
        result = run_wrapper(victim, root_agent, work, option, path, "-n", "job", "--",
                             "touch", str(marker))
        assert result.returncode == 78, result.stderr
        assert "not a regular file" in result.stderr.splitlines()[0]
        assert not marker.exists()


def test_a_config_owned_by_another_user_is_refused(attackers: tuple[User, ...],
                                                   root_agent: Agent, shared_base: Path) -> None:
    victim, attacker = attackers[0], attackers[1]
    evil, mark = evil_path(shared_base, attacker)
    config = plant(shared_base / "cronwrap.toml", f'log_dir = "{evil}"\n', attacker, 0o644)
    work = owned_dir(shared_base / "victim", victim)
    for who in (victim, ROOT):
        result = run_wrapper(who, root_agent, work, "--config", str(config), "-n", "job",
                             "--", "touch", str(work / "ran"))
        assert result.returncode == 78
        assert f"config {config}: refused: owned by uid {attacker.uid}" in result.stderr
    assert not (work / "ran").exists() and not mark.exists()


def with_system_config(base: Path, text: str, mode: int, argv: list[str]) -> list[str]:
    """`argv` run in a private mount namespace whose /etc/cronwrap/cronwrap.toml is `text`."""
    return with_etc_files(base, {"cronwrap/cronwrap.toml": (text, mode)}, argv)


def test_a_system_config_only_root_may_read_is_skipped_quietly(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    """Root keeps the SMTP password in /etc/cronwrap/cronwrap.toml at 0600 (as documented)."""
    user = attackers[0]
    root_logs = shared_base / "root-logs"
    config = (f'log_dir = "{root_logs}"\nmail_to = "ops@example.org"\n'
              'mail_smtp = "127.0.0.1:1"\nmail_starttls = true\nmail_username = "cron"\n'
              'mail_password = "hunter2"\n')
    work = owned_dir(shared_base / "user", user)
    marker = work / "ran"
    job = [wrapper(), "--socket", str(shared_base / "no-agent.sock"), "--spool-dir",
           str(work / "spool"), "--lock-dir", str(work / "lock"), "-n", "job", "--",
           "touch", str(marker)]
    result = subprocess.run(with_system_config(shared_base, config, 0o600, as_user(user, job)),
                            capture_output=True, text=True, env=user_environment(user),
                            timeout=60, check=False)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")
    assert marker.exists()
    logs = Path(user.home) / ".local" / "state" / "cronwrap" / user.name / "job"
    assert logs.is_dir() and not root_logs.exists()  # the user ran without root's settings


def test_root_still_reads_its_private_system_config(shared_base: Path) -> None:
    root_logs = shared_base / "root-logs"
    job = [wrapper(), "--socket", str(shared_base / "no-agent.sock"), "--spool-dir",
           str(shared_base / "spool"), "--lock-dir", str(shared_base / "lock"), "-n", "job",
           "--", "true"]
    result = subprocess.run(
        with_system_config(shared_base, f'log_dir = "{root_logs}"\n', 0o600, job),
        capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert len(list((root_logs / "root" / "job").glob("*.log"))) == 1


def test_a_user_can_keep_their_own_mail_secret(attackers: tuple[User, ...], root_agent: Agent,
                                               shared_base: Path) -> None:
    """Per-user secrets live in the user's own file: others may not read it, the job uses it."""
    owner, other = attackers[0], attackers[1]
    work = owned_dir(shared_base / "owner", owner, 0o711)
    config = plant(work / "cronwrap.toml", 'mail_to = "me@example.org"\nmail_smtp = "mx"\n'
                   'mail_starttls = true\nmail_username = "me"\nmail_password = "s3cret"\n',
                   owner, 0o600)
    assert run_as(other, "cat", str(config)).returncode != 0
    result = run_wrapper(owner, root_agent, work, "--config", str(config),
                         "-n", "job", "--", "true")
    assert (result.returncode, result.stderr) == (0, "")
