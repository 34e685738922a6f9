"""The wrapper's command line: parsing, names, durations, config files, env files, `logs`, help."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from cronwrap.wrapper.cli import build_settings, job_name
from cronwrap.wrapper.config import read_env_file
from cronwrap.wrapper.durations import parse_duration, parse_size
from cronwrap.wrapper.errors import ConfigError, UsageError
from cronwrap.wrapper.events import is_valid_job_name
from cronwrap.wrapper.names import derive_job_name
from etc_overlay import can_overlay_etc, with_etc_files
from wrapper_helpers import CRONWRAP, Dirs, dirs, run

__all__ = ["dirs"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("1.5", 1.5), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
     ("1h30m", 5400), ("250ms", 0.25), (" 2H ", 7200)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "5x", "m5", "1h 30m", "-1", "1e3", "٣", "99999999999"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("65536", 65536), ("512K", 512 << 10), ("10M", 10 << 20), ("1G", 1 << 30),
     ("10MiB", 10 << 20), ("10mb", 10 << 20), ("1.5K", 1536)],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "10Q", "-5", "1 0M"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


@pytest.mark.parametrize(
    ("command", "name"),
    [("/usr/local/bin/backup", "backup"), ("backup.sh", "backup.sh"),
     ("/opt/x/" + "a" * 64, "a" * 64)],
)
def test_a_valid_file_name_is_the_job_name(command: str, name: str) -> None:
    assert job_name(None, command) == name


@pytest.mark.parametrize(
    ("command", "readable"),
    [("./run job!", "runjob"), ("/opt/x/.hidden", "hidden"), ("/usr/bin/bäckup", "backup"),
     ("/usr/bin/ñ", "n"), ("/bin/" + "a" * 80, "a" * 55)],
)
def test_a_changed_file_name_gets_a_digest_of_the_original(command: str, readable: str) -> None:
    name = job_name(None, command)
    head, _, digest = name.rpartition("-")
    assert head == readable and re.fullmatch("[0-9a-f]{8}", digest), name
    assert is_valid_job_name(name) and job_name(None, command) == name  # deterministic


def test_derived_names_never_share_a_lock_or_a_row() -> None:
    commands = ["/usr/bin/bäckup", "/usr/bin/bckup", "/usr/bin/backup", "/usr/bin/bäckup!",
                "/usr/bin/.backup", "/usr/bin/backup ", "/usr/bin/back up", "/usr/bin/bäckup\udcff",
                "/bin/" + "a" * 65, "/bin/" + "a" * 66, "/bin/" + "a" * 80 + "b"]
    names = [job_name(None, command) for command in commands]
    assert len(set(names)) == len(commands), names


def test_the_agent_and_the_wrapper_share_one_derivation() -> None:
    assert derive_job_name("/usr/bin/bäckup") == job_name(None, "/usr/bin/bäckup")
    assert derive_job_name("...") is None


@pytest.mark.parametrize("command", ["/tmp/...", "/", "", "/usr/bin/バックアップ"])
def test_no_name_derivable_is_refused(command: str) -> None:
    with pytest.raises(UsageError):
        job_name(None, command)


def test_flags_beat_config_which_beats_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('keep = 5\nmax_log_size = "2M"\nkill_after = 3\nlog_dir = "/srv/logs"\n')
    settings = build_settings(["--config", str(config), "--keep", "7", "--", "true"], {})
    assert (settings.keep, settings.max_log_size, settings.kill_after) == (7, 2 << 20, 3.0)
    assert settings.log_dir == "/srv/logs" and settings.name == "true"


def test_user_config_overrides_system_config(tmp_path: Path) -> None:
    user_config = tmp_path / "cronwrap" / "cronwrap.toml"
    user_config.parent.mkdir()
    user_config.write_text("overlap_exit = 0\n")
    settings = build_settings(["--", "true"], {"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.overlap_exit == 0


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "docs" / "cronwrap.toml.example"
    uncommented = "\n".join(
        line[2:]
        for line in example.read_text().splitlines()
        if line.startswith("# ") and "=" in line
    )
    config = tmp_path / "all.toml"
    config.write_text(uncommented)
    settings = build_settings(["--config", str(config), "--", "true"], {})
    assert settings.keep == 30 and settings.overlap_exit == 75
    assert settings.mail is not None
    assert settings.mail.to == ("ops@example.org", "oncall@example.org")


@pytest.mark.parametrize(
    "content",
    ["keep = [", 'unknown_key = 1\n', 'keep = "many"\n', 'timeout = "soon"\n', "[jobs]\nx = 1\n"],
)
def test_bad_config_exits_78_with_one_line(dirs: Dirs, tmp_path: Path, content: str) -> None:
    dirs.config.write_text(content)
    marker = tmp_path / "ran"
    result = run(dirs, "--", "touch", str(marker))
    assert result.returncode == 78
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert str(dirs.config) in result.stderr and not marker.exists()


def test_missing_explicit_config_exits_78(dirs: Dirs, tmp_path: Path) -> None:
    result = run(dirs, "--config", str(tmp_path / "absent.toml"), "--", "true")
    assert result.returncode == 78 and "absent.toml" in result.stderr


@pytest.mark.parametrize(
    "args",
    [["-n", "../etc", "--", "true"], ["-n", "", "--", "true"], ["-n", "a" * 65, "--", "true"],
     ["-n", "-x", "--", "true"], ["--timeout", "5x", "--", "true"], ["--timeout", "--", "true"],
     ["--kill-after", "-1", "--", "true"], ["--max-log-size", "big", "--", "true"],
     ["--keep", "many", "--", "true"], ["--keep-days", "x", "--", "true"],
     ["--overlap-exit", "300", "--", "true"], ["--schedule", "0 3 * *", "--", "true"],
     ["--every", "daily", "--", "true"], ["--bogus", "--", "true"], ["-n", "x"], ["-n", "x", "--"],
     ["-v=1", "--", "true"], ["--timeout"], ["nonsense-subcommand"], ["--", "/"]],
)
def test_user_mistakes_exit_64_with_one_line(dirs: Dirs, tmp_path: Path, args: list[str]) -> None:
    result = run(dirs, *args)
    assert result.returncode == 64
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("cronwrap: ") and "Traceback" not in result.stderr
    assert not dirs.lock.exists()  # nothing was started


@pytest.mark.parametrize(("args", "suggested"), [
    (["-n", "x", "true"], "cronwrap -n x -- true"),
    (["-v", "/bin/echo", "a b"], "cronwrap -v -- /bin/echo 'a b'"),
    (["--timeout", "5s", "sh", "-c", "exit 0", "--"], "cronwrap --timeout 5s -- sh -c 'exit 0' --"),
])
def test_a_command_without_the_separator_is_explained(args: list[str], suggested: str) -> None:
    """`cronwrap -n x true` says the command goes after --, and shows the line that works."""
    result = run_plain(args)
    assert result.returncode == 64
    first = next(word for word in args[1:] if not word.startswith("-") and word not in "x5s")
    assert result.stderr.splitlines() == [
        f"cronwrap: {first!r} is not an option: the command goes after --, as in {suggested}"]


def test_env_file_values_reach_the_job(dirs: Dirs, tmp_path: Path) -> None:
    env_file = tmp_path / "job.env"
    env_file.write_text(
        "# database settings\n\nDB_HOST=db.example\nexport DB_USER='backup'\n"
        'DB_PASS="s3 cr=t"\nEMPTY=\n'
    )
    out = tmp_path / "out"
    script = f'printf "%s|%s|%s|%s" "$DB_HOST" "$DB_USER" "$DB_PASS" "${{EMPTY-unset}}" > {out}'
    result = run(dirs, "--env-file", str(env_file), "-n", "envjob", "--", "sh", "-c", script)
    assert result.returncode == 0
    assert out.read_text() == "db.example|backup|s3 cr=t|"


@pytest.mark.parametrize("content", ["JUST_A_WORD\n", "1BAD=x\n", "A B=c\n"])
def test_bad_env_file_line_exits_78(dirs: Dirs, tmp_path: Path, content: str) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text(content)
    result = run(dirs, "--env-file", str(env_file), "-n", "envjob", "--", "true")
    assert result.returncode == 78
    assert "line 1" in result.stderr.splitlines()[0] and "Traceback" not in result.stderr
    finished = dirs.spooled()[-1]
    assert (finished.KIND, finished.exit_status) == ("finished", 78)  # type: ignore[attr-defined]


LEAKY = {"CRONWRAP_TEST_LEAK": "yes", "USER": "someone-else", "LANG": "xx_YY.UTF-8"}


@pytest.mark.skipif(not can_overlay_etc(), reason="needs root and unshare for a private /etc")
def test_cron_env_is_the_environment_debians_cron_gives(dirs: Dirs, tmp_path: Path) -> None:
    """PAM's /etc/environment and /etc/default/locale, then SHELL, HOME, PATH, LOGNAME; no USER.

    Read from Debian 12's cron 3.0pl1-162: entry.c sets SHELL, HOME and PATH (/usr/bin:/bin)
    where the crontab did not and LOGNAME always (USER only on BSD); do_command.c's build_env
    starts from pam_getenvlist() and lets cron's variables override; /etc/pam.d/cron reads
    /etc/environment and /etc/default/locale; the line runs through /bin/sh, which exports PWD.
    """
    etc = {"environment": ('FROM_ENVIRONMENT="yes"\nPATH="/usr/local/bin:/usr/bin"\n', 0o644),
           "default/locale": ("#  File generated by update-locale\nLANG=C.UTF-8\n", 0o644)}
    argv = [*CRONWRAP, *dirs.options(), "--cron-env", "-n", "cronenv", "--", "/usr/bin/env"]
    env = {**os.environ, **LEAKY, "PATH": "/usr/local/sbin:" + os.environ["PATH"]}
    result = subprocess.run(with_etc_files(tmp_path, etc, argv), capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert seen == {"HOME": "/root", "LOGNAME": "root", "SHELL": "/bin/sh",
                    "PATH": "/usr/bin:/bin", "PWD": "/root", "FROM_ENVIRONMENT": "yes",
                    "LANG": "C.UTF-8"}


def test_cron_env_shows_the_output_and_says_what_it_did(dirs: Dirs, tmp_path: Path) -> None:
    result = subprocess.run(
        [*CRONWRAP, *dirs.options(), "--cron-env", "-n", "trial", "--", "sh", "-c",
         'echo "hello from $LOGNAME in $(pwd)"; cat; exit 3'],
        input="typed at the terminal\n", capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **LEAKY))
    assert result.returncode == 3  # the job's own status
    assert result.stdout == "hello from root in /root\n"  # shown, and stdin was empty
    assert "cronwrap: trial run of 'trial' in the environment Debian's cron gives it, in /root" \
        in result.stderr
    assert "  PATH=/usr/bin:/bin\n" in result.stderr and "USER" not in result.stderr
    assert re.search(r"trial run of 'trial' exited with status 3 after [0-9.]+s; nothing was "
                     r"locked, logged, reported to the agent or mailed\n\Z", result.stderr)
    for nothing in (dirs.lock, dirs.log, dirs.spool):  # no lock, no log, no event spooled
        assert not nothing.exists(), nothing


def test_cron_env_reproduces_a_path_failure(dirs: Dirs, tmp_path: Path) -> None:
    tool_dir = tmp_path / "mytools"
    tool_dir.mkdir()
    tool = tool_dir / "mytool"
    tool.write_text("#!/bin/sh\necho tool ran\n")
    tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{tool_dir}:{os.environ['PATH']}")
    assert run(dirs, "-n", "t", "--", "mytool", env=env).returncode == 0
    failing = run(dirs, "--cron-env", "-n", "t", "--", "mytool", env=env)
    assert failing.returncode == 127 and failing.stdout == ""
    assert "cronwrap: mytool: command not found" in failing.stderr
    fixed = run(dirs, "--cron-env", "-n", "t", "--", str(tool), env=env)
    assert (fixed.returncode, fixed.stdout) == (0, "tool ran\n")


def test_cron_env_takes_env_files_as_the_crontabs_variables(dirs: Dirs, tmp_path: Path) -> None:
    env_file = tmp_path / "crontab.env"
    env_file.write_text("PATH=/opt/bin:/usr/bin:/bin\nLOGNAME=someone\nDB_PASS=hunter2\n")
    result = run(dirs, "--cron-env", "--env-file", str(env_file), "-n", "t", "--",
                 "/usr/bin/env")
    seen = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert (seen["PATH"], seen["LOGNAME"], seen["DB_PASS"]) == (
        "/opt/bin:/usr/bin:/bin", "root", "hunter2")  # LOGNAME cannot be changed, as in cron
    assert "DB_PASS (from --env-file; value not shown)" in result.stderr
    assert "hunter2" not in result.stderr


def test_cron_env_is_not_a_config_key(dirs: Dirs) -> None:
    dirs.config.write_text("cron_env = true\n")
    result = run(dirs, "--", "true")
    assert result.returncode == 78 and "unknown key 'cron_env'" in result.stderr


def test_logs_subcommand_lists_and_shows_runs(dirs: Dirs) -> None:
    for word in ("one", "two"):
        assert run(dirs, "-n", "shown", "--", "echo", word).returncode == 0
    common = ["logs", "shown", "--log-dir", str(dirs.log), "--config", str(dirs.config)]
    newest = run_plain([*common])
    assert (newest.returncode, newest.stdout) == (0, "two\n")
    older = run_plain([*common, "--run", "2"])
    assert older.stdout == "one\n"
    listing = run_plain([*common, "--list"]).stdout.splitlines()
    assert len(listing) == 2 and listing[0].split()[0] == "1" and listing[0].split()[3] == "4"
    missing = run_plain([*common, "--run", "3"])
    assert missing.returncode == 66 and len(missing.stderr.splitlines()) == 1  # EX_NOINPUT
    assert "has 2 kept run(s)" in missing.stderr
    nojob = run_plain(["logs", "nope", "--log-dir", str(dirs.log), "--config", str(dirs.config)])
    assert nojob.returncode == 66 and "no logs for job 'nope' of root" in nojob.stderr
    badname = run_plain(["logs", "../x", "--log-dir", str(dirs.log)])
    assert badname.returncode == 64
    nouser = run_plain([*common, "--user", "no-such-user-cw"])
    assert nouser.returncode == 66 and "no user named 'no-such-user-cw'" in nouser.stderr


def test_logs_of_a_job_whose_logs_were_all_pruned_is_not_found(dirs: Dirs) -> None:
    assert run(dirs, "-n", "pruned", "--", "true").returncode == 0
    for log in dirs.job_logs("pruned"):
        log.unlink()
    result = run_plain(["logs", "pruned", "--log-dir", str(dirs.log), "--config",
                        str(dirs.config)])
    assert result.returncode == 66 and "no logs for job 'pruned' of root in" in result.stderr


def test_help_teaches_usage_and_exit_codes() -> None:
    result = run_plain(["--help"])
    assert result.returncode == 0
    for text in ("-- COMMAND", "--timeout", "124", "127", "--overlap-exit", "crontab", "logs JOB"):
        assert text in result.stdout


def run_plain(args: list[str]):  # noqa: ANN201
    import subprocess

    return subprocess.run([*CRONWRAP, *args], capture_output=True, text=True, timeout=60)


def test_read_env_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        read_env_file(str(tmp_path / "missing.env"))


@pytest.mark.parametrize("content", ['cron_env = "yes"\n', "log_dir = true\n", "keep = 1.5\n"])
def test_config_values_of_the_wrong_type_exit_78(dirs: Dirs, content: str) -> None:
    dirs.config.write_text(content)
    result = run(dirs, "--", "true")
    assert result.returncode == 78 and len(result.stderr.splitlines()) == 1


def test_logs_help_is_the_subcommands_own() -> None:
    result = run_plain(["logs", "--help"])
    assert result.returncode == 0 and result.stdout.startswith("usage: cronwrap logs JOB")


def test_default_directories_per_user(tmp_path: Path) -> None:
    from cronwrap.wrapper.locks import default_lock_dir
    from cronwrap.wrapper.logs import default_log_dir

    assert default_lock_dir(0, {"XDG_RUNTIME_DIR": str(tmp_path)}) == "/run/lock/cronwrap"
    assert default_lock_dir(1000, {"XDG_RUNTIME_DIR": str(tmp_path)}) == f"{tmp_path}/cronwrap"
    assert default_lock_dir(1000, {}) == "/tmp/cronwrap-1000"
    assert default_lock_dir(1000, {"XDG_RUNTIME_DIR": "relative"}) == "/tmp/cronwrap-1000"
    assert default_log_dir(0, {"XDG_STATE_HOME": "/x"}) == "/var/log/cronwrap"
    assert default_log_dir(1000, {"XDG_STATE_HOME": "/x"}) == "/x/cronwrap"


def test_lock_dir_owned_by_someone_else_is_refused(dirs: Dirs, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign-locks"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    result = run(dirs, "--lock-dir", str(foreign), "-n", "j", "--", "false")
    assert result.returncode == 1  # run under the fallback lock in the log dir, and said so
    (lock_line,) = [line for line in result.stderr.splitlines() if "lock:" in line]
    assert "owned by uid 65534" in lock_line
    assert list(foreign.iterdir()) == []


def test_jobs_named_after_bäckup_and_bckup_keep_separate_logs_and_events(
        dirs: Dirs, tmp_path: Path) -> None:
    names = []
    for file_name in ("bäckup", "bckup"):
        script = tmp_path / file_name
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
        assert run(dirs, "--", str(script)).returncode == 0
        names.append(dirs.spooled()[-1].job)
    assert names[1] == "bckup" and names[0].startswith("backup-"), names
    assert len(dirs.job_logs(names[0])) == len(dirs.job_logs("bckup")) == 1
