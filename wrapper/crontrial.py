"""`cronwrap --cron-env`: a trial run of a job in the environment Debian's cron would give it.

What Debian's cron (3.0pl1, Debian 12) does for a crontab line, and so what the trial does:
- the environment is PAM's (pam_env: /etc/environment, then /etc/default/locale, as
  /etc/pam.d/cron asks), overridden by the crontab's variables, then SHELL=/bin/sh, HOME (the
  passwd entry's) and PATH=/usr/bin:/bin where the crontab did not set them, and LOGNAME
  always (USER is set only on BSD). --env-file values stand in for the crontab's variables;
  /etc/security/pam_env.conf is not evaluated (the trial says so when it holds settings);
- the command runs in HOME (and /bin/sh, which runs the crontab line, exports PWD), with an
  empty stdin, in a new session, its output captured;
- the command is found through that PATH, as cronwrap under cron would find it.

A trial shows the output as it comes, says what it did, and exits with the job's status. It
takes no lock, writes no run log, reports nothing to the agent, mails nothing and writes no
journal record: it is for reproducing "works in my shell, fails in cron" by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

from cronwrap.wrapper.config import Settings, read_env_file
from cronwrap.wrapper.errors import WrapperError
from cronwrap.wrapper.runner import Outcome, Supervisor

CRON_SHELL = "/bin/sh"
CRON_PATH = "/usr/bin:/bin"  # Debian cron's _PATH_DEFPATH
PAM_ENV_FILES = ("/etc/environment", "/etc/default/locale")  # /etc/pam.d/cron's pam_env lines
PAM_ENV_CONF = "/etc/security/pam_env.conf"
_PAM_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)")


def cron_environment(uid: int, crontab_vars: dict[str, str],
                     pam_files: tuple[str, ...] = PAM_ENV_FILES) -> dict[str, str]:
    """The environment Debian's cron gives a job of `uid` from a crontab setting `crontab_vars`."""
    import pwd

    try:
        entry = pwd.getpwuid(uid)
        name, home = entry.pw_name, entry.pw_dir
    except KeyError:
        name, home = str(uid), "/"
    cron_vars = dict(crontab_vars)
    cron_vars.setdefault("SHELL", CRON_SHELL)
    cron_vars.setdefault("HOME", home)
    cron_vars.setdefault("PATH", CRON_PATH)
    cron_vars["LOGNAME"] = name
    env: dict[str, str] = {}
    for path in pam_files:
        env.update(read_pam_env_file(path))
    env.update(cron_vars)  # build_env(): cron's variables override PAM's
    return env


def read_pam_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines as pam_env reads them (comments and malformed lines skipped)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        match = _PAM_LINE.fullmatch(line)
        if match is None or line.lstrip().startswith("#"):
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def pam_env_conf_in_use(path: str = PAM_ENV_CONF) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return any(line.strip() and not line.lstrip().startswith("#") for line in handle)
    except OSError:
        return False


def run_trial(settings: Settings) -> int:
    """Run settings.command once as cron would, showing its output; the job's exit status."""
    crontab_vars: dict[str, str] = {}
    for path in settings.env_files:
        crontab_vars.update(read_env_file(path))
    env = cron_environment(os.getuid(), crontab_vars)
    _become_cron_child(env)
    _describe(settings, env, crontab_vars)
    supervisor = Supervisor(_show, settings.timeout, settings.kill_after)
    try:
        outcome = supervisor.run(settings.command, env)
    except WrapperError as exc:  # not found or not executable, through cron's PATH
        _say(str(exc))
        outcome = Outcome(exc.exit_code)
    _say(f"trial run of {settings.name!r} {_how(outcome)} after {outcome.duration:.1f}s; "
         "nothing was locked, logged, reported to the agent or mailed")
    return outcome.exit_status


def _describe(settings: Settings, env: dict[str, str], crontab_vars: dict[str, str]) -> None:
    _say(f"trial run of {settings.name!r} in the environment Debian's cron gives it, in "
         f"{env['PWD']}, stdin empty:")
    for key in sorted(env):
        if key in crontab_vars and key != "LOGNAME":
            _say(f"  {key} (from --env-file; value not shown)")
        else:
            _say(f"  {key}={env[key]}")
    if pam_env_conf_in_use():
        _say(f"  note: {PAM_ENV_CONF} has settings that this trial does not apply")


def _become_cron_child(env: dict[str, str]) -> None:
    """This process takes the job's environment, HOME and an empty stdin, as cron's child has.

    The crontab line runs through /bin/sh (dash), which exports PWD: so does `env` here.
    posix_spawnp then finds the command through cron's PATH, exactly as cronwrap would under
    cron; the trial writes nothing, so nothing depends on the directory it was started in.
    """
    with contextlib.suppress(OSError):  # cron ignores a failed chdir too
        os.chdir(env["HOME"])
    env["PWD"] = os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def _how(outcome: Outcome) -> str:
    if outcome.timed_out:
        return f"timed out (exit {outcome.exit_status})"
    if outcome.signal:
        return f"was killed by signal {outcome.signal} (exit {outcome.exit_status})"
    return f"exited with status {outcome.exit_status}"


def _show(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except (OSError, ValueError):
        pass


def _say(message: str) -> None:
    sys.stderr.write(f"cronwrap: {message}\n")
    sys.stderr.flush()
