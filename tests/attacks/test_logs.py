"""Run logs against local users: accounts without a home, squatters, --log-group, path swaps.

Issue 11 item 3 (an account with no writable home gets its logs in /var/log/cronwrap/users and
cronwrap prints nothing on success) and issue 13 items 9 (--log-group is for the named job only)
and 10 (the prune never leaves the run's own directory; planted symlinks are not followed).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from .support import User, cronwrap_as, owned_dir, run_as
from .wrapping import (
    cronwrap_root,
    dead_agent,
    empty_config,
    files_under,
    held_job,
    plant,
    release,
    root_command,
    start_cronwrap_root,
    sticky_dir,
    wait_until,
)

SYSTEM_LOG_ROOT = Path("/var/log/cronwrap")
USERS_LOG_ROOT = SYSTEM_LOG_ROOT / "users"  # packaging/tmpfiles.d/cronwrap.conf: 1733 root


def system_users_log_root() -> Path:
    """/var/log/cronwrap/users as the package's tmpfiles entry makes it (01733, root)."""
    SYSTEM_LOG_ROOT.mkdir(mode=0o755, exist_ok=True)
    USERS_LOG_ROOT.mkdir(exist_ok=True)
    USERS_LOG_ROOT.chmod(0o1733)
    return USERS_LOG_ROOT


@pytest.mark.parametrize("home", ["/nonexistent", "root-owned"])
def test_an_account_without_a_writable_home_logs_under_var_log_and_prints_nothing(
        nobody: User, attackers: tuple[User, ...], shared_base: Path, home: str) -> None:
    agent = dead_agent(shared_base / "agent")
    job = f"nohome-{os.getpid()}-{'x' if home == '/nonexistent' else 'y'}"
    job_dir = system_users_log_root() / nobody.name / job
    home_dir = home if home.startswith("/") else str(shared_base)  # exists, root's, 0755
    try:
        result = cronwrap_as(nobody, agent, "--config", str(empty_config(shared_base)),
                             "-n", job, "--", "echo", "from a system account",
                             env={"HOME": home_dir})
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        (log,) = job_dir.glob("*.log")
        assert log.read_text() == "from a system account\n"
        user_dir = job_dir.parent
        assert (user_dir.stat().st_uid, stat.S_IMODE(user_dir.stat().st_mode)) == (nobody.uid,
                                                                                    0o700)
        reader = run_as(attackers[0], "cat", str(log))
        assert reader.returncode != 0 and "Permission denied" in reader.stderr
        lister = run_as(attackers[0], "ls", str(user_dir))
        assert lister.returncode != 0 and "Permission denied" in lister.stderr
        own = cronwrap_as(nobody, agent, "logs", job, env={"HOME": home_dir})
        by_root = subprocess.run([*root_command("logs"), "--user", nobody.name, job],
                                 capture_output=True, text=True, timeout=60, check=False)
        for shown in (own, by_root):
            assert (shown.returncode, shown.stdout) == (0, "from a system account\n")
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def test_an_account_with_its_own_home_still_logs_there(attackers: tuple[User, ...],
                                                        shared_base: Path) -> None:
    user = attackers[2]
    job = f"homed-{os.getpid()}"
    job_dir = Path(user.home) / ".local" / "state" / "cronwrap" / user.name / job
    try:
        result = cronwrap_as(user, dead_agent(shared_base / "agent"), "--config",
                             str(empty_config(shared_base)), "-n", job, "--", "echo", "at home")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        (log,) = job_dir.glob("*.log")
        assert log.read_text() == "at home\n" and log.stat().st_uid == user.uid
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


@pytest.mark.parametrize("squat", ["directory", "symlink"])
def test_a_squatted_log_dir_costs_the_log_silently_and_the_failure_report_says_why(
        attackers: tuple[User, ...], shared_base: Path, squat: str) -> None:
    attacker, victim, _ = attackers
    agent = dead_agent(shared_base / "agent")
    logs = shared_base / "logs"
    logs.mkdir()
    logs.chmod(0o1733)  # a shared log root like /var/log/cronwrap/users
    trap = owned_dir(shared_base / "trap", attacker, 0o777)
    if squat == "directory":
        plant(attacker, "mkdir", "-m", "0777", str(logs / victim.name))
    else:
        plant(attacker, "ln", "-s", str(trap), str(logs / victim.name))
    options = ["--config", str(empty_config(shared_base)), "--log-dir", str(logs), "-n", "job"]

    quiet = cronwrap_as(victim, agent, *options, "--", "echo", "fine")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")

    loud = cronwrap_as(victim, agent, *options, "--", "sh", "-c", "echo broken; exit 3")
    assert loud.returncode == 3
    assert "Bad file descriptor" not in loud.stderr
    why = "symlink" if squat == "symlink" else f"owned by uid {attacker.uid}"
    (log_line,) = [line for line in loud.stderr.splitlines() if line.startswith("cronwrap: log:")]
    assert "none" in log_line and why in log_line, loud.stderr
    assert "broken" in loud.stderr
    assert files_under(trap) == []
    if squat == "directory":
        assert files_under(logs / victim.name) == []


def test_log_group_is_given_the_named_job_only(attackers: tuple[User, ...],
                                              shared_base: Path) -> None:
    reader = attackers[0]
    agent = dead_agent(shared_base / "agent")
    logs = shared_base / "root-logs"
    options = ["--config", str(empty_config(shared_base)), "--log-dir", str(logs)]
    shared = cronwrap_root(agent, *options, "-n", "report", "--log-group", str(reader.gid),
                           "--", "echo", "for the auditors")
    secret = cronwrap_root(agent, *options, "-n", "secret", "--", "echo", "DB_PASSWORD=hunter2")
    assert (shared.returncode, shared.stderr, secret.returncode, secret.stderr) == (0, "", 0, "")

    (report_log,) = (logs / "root" / "report").glob("*.log")
    (secret_log,) = (logs / "root" / "secret").glob("*.log")
    allowed = run_as(reader, "cat", str(report_log))
    assert (allowed.returncode, allowed.stdout) == (0, "for the auditors\n")
    for attempt in (["cat", str(secret_log)], ["ls", str(secret_log.parent)],
                    ["ls", str(logs / "root")]):
        denied = run_as(reader, *attempt)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, attempt
    user_dir = (logs / "root").stat()
    assert user_dir.st_gid != reader.gid and not user_dir.st_mode & stat.S_ISGID


def test_roots_prune_cannot_be_steered_into_another_users_logs(attackers: tuple[User, ...],
                                                              shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = dead_agent(shared_base / "agent")
    config = str(empty_config(shared_base))
    victim_logs = owned_dir(shared_base / "victim-logs", victim, 0o755)
    for _ in range(3):
        run = cronwrap_as(victim, agent, "--config", config, "--log-dir", str(victim_logs),
                          "-n", "nightly", "--", "true")
        assert run.returncode == 0, run.stderr
    victims_job = victim_logs / victim.name / "nightly"
    before = files_under(victims_job)
    assert len(before) == 3

    home = owned_dir(shared_base / "attacker", attacker, 0o755)
    plant(attacker, "mkdir", "-m", "0755", str(home / "logs"))  # root was told to log here
    flags = owned_dir(shared_base / "flags", attacker, 0o755)
    root_run = start_cronwrap_root(agent, "--config", config, "--log-dir", str(home / "logs"),
                                   "--keep", "1", "-n", "nightly", "--", *held_job(flags))
    try:
        wait_until(lambda: (flags / "STARTED").exists(), "root's job to start")
        # Mid-run, LOGDIR/root/nightly is made to lead into the victim's job directory.
        plant(attacker, "mv", str(home / "logs"), str(home / "old"))
        plant(attacker, "mkdir", str(home / "logs"))
        plant(attacker, "ln", "-s", str(victim_logs / victim.name), str(home / "logs" / "root"))
    finally:
        release(flags)
        out, err = root_run.communicate(timeout=60)
    assert (root_run.returncode, out, err) == (0, "", "")
    assert files_under(victims_job) == before


def test_a_log_dir_symlink_planted_by_another_user_is_not_followed(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker, victim, _ = attackers
    agent = dead_agent(shared_base / "agent")
    tmp = sticky_dir(shared_base / "tmp")
    target = owned_dir(shared_base / "victim-area", victim, 0o755)
    plant(attacker, "ln", "-s", str(target), str(tmp / "cronwrap-logs"))
    result = cronwrap_root(agent, "--config", str(empty_config(shared_base)),
                           "--log-dir", str(tmp / "cronwrap-logs"), "-n", "job", "--",
                           "echo", "root's secret output")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert files_under(target) == []


def test_the_prune_works_in_the_runs_own_directory_even_if_its_path_moves(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    agent = dead_agent(shared_base / "agent")
    logs = shared_base / "logs"
    options = ["--config", str(empty_config(shared_base)), "--log-dir", str(logs),
               "-n", "moving"]
    for _ in range(2):
        assert cronwrap_root(agent, *options, "--", "true").returncode == 0
    job_dir = logs / "root" / "moving"
    flags = shared_base / "flags"
    flags.mkdir()
    run = start_cronwrap_root(agent, *options, "--keep", "1", "--", *held_job(flags))
    try:
        wait_until(lambda: (flags / "STARTED").exists(), "the job to start")
        job_dir.rename(logs / "root" / "moved")
        job_dir.mkdir()
        for name in ("20200101T000000.000Z.log", "20200102T000000.000Z.log"):
            (job_dir / name).write_text("kept: not this run's directory\n")
    finally:
        release(flags)
        run.communicate(timeout=60)
    assert run.returncode == 0
    assert len(files_under(logs / "root" / "moved")) == 1
    assert len(files_under(job_dir)) == 2


def on_a_terminal(argv: list[str]) -> bytes:
    """What `argv` writes to its stdout when that is a terminal (a pseudo-terminal's master)."""
    import pty
    import tty

    master, slave = pty.openpty()
    tty.setraw(slave)  # no newline translation: the bytes as written
    try:
        done = subprocess.run(argv, stdout=slave, stderr=subprocess.PIPE, timeout=60,
                              check=False)
        os.close(slave)
        slave = -1
        assert done.returncode == 0, done.stderr
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
        return shown
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_roots_terminal_gets_a_users_log_escaped_and_raw_only_when_asked(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    """A job's output may hold terminal escapes (retitle, clear, a fake prompt): root reading
    it with `cronwrap logs --user` sees them escaped on a terminal; --raw and pipes get bytes."""
    user = attackers[1]
    job = f"escapes-{os.getpid()}"
    job_dir = Path(user.home) / ".local" / "state" / "cronwrap" / user.name / job
    hostile = r"printf 'ok\033]0;owned\007\033[2J\r\nroot# \233''31m\377 done\n'"
    try:
        result = cronwrap_as(user, dead_agent(shared_base / "agent"), "--config",
                             str(empty_config(shared_base)), "-n", job, "--", "sh", "-c", hostile)
        assert result.returncode == 0, result.stderr
        argv = [*root_command("logs"), "--user", user.name, job]
        shown = on_a_terminal(argv)
        for byte in (b"\x1b", b"\x07", b"\x9b", b"\xff"):
            assert byte not in shown, shown
        assert b"ok\\x1b]0;owned\\x07\\x1b[2J\\r" in shown and b"\\x9b31m\\xff done" in shown
        raw = b"ok\x1b]0;owned\x07\x1b[2J\r\nroot# \x9b31m\xff done\n"
        assert on_a_terminal([*argv, "--raw"]) == raw
        piped = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        assert piped.stdout == raw
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
