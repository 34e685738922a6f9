"""Settings: defaults, TOML config files, environment variables, env files and cron's env."""

from __future__ import annotations

import os
import re

from cronwrap.wrapper.errors import ConfigError, UsageError

SYSTEM_CONFIG = "/etc/cronwrap/cronwrap.toml"
CRON_PATH = "/usr/bin:/bin"
_ENV_LINE = r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)"


class Settings:
    """Everything one wrapper run needs to know; command-line flags are applied last.

    A plain class rather than a dataclass: generating dataclass methods costs start-up time
    that every cron run would pay.
    """

    def __init__(self, command: list[str] | None = None) -> None:
        self.command: list[str] = command or []
        self.name: str | None = None
        self.timeout: float | None = None
        self.kill_after = 10.0
        self.lock_wait = 0.0
        self.lock_dir: str | None = None
        self.overlap_exit = 75
        self.log_dir: str | None = None
        self.keep = 30
        self.keep_days: float | None = None
        self.max_log_size = 10 << 20
        self.verbose = False
        self.env_files: list[str] = []
        self.cron_env = False
        self.socket = "/run/cronwrap/agent.sock"
        self.spool_dir = "/var/spool/cronwrap"
        self.schedule: str | None = None
        self.every: float | None = None
        self.grace: float | None = None
        self.max_runtime: float | None = None


TEXT_KEYS = ("name", "lock_dir", "log_dir", "socket", "spool_dir")
FLAG_KEYS = ("verbose", "cron_env")


def apply_option(settings: Settings, key: str, value: str | bool, where: str) -> None:
    """Set one option from its text form (flag value or config value); UsageError naming `where`."""
    if key in TEXT_KEYS:
        setattr(settings, key, str(value))
    elif key in FLAG_KEYS:
        setattr(settings, key, bool(value))
    elif key == "env_file":
        settings.env_files.append(str(value))
    elif key == "schedule":
        settings.schedule = check_schedule(str(value), where)
    else:
        _apply_number(settings, key, str(value), where)


def _apply_number(settings: Settings, key: str, text: str, where: str) -> None:
    from cronwrap.wrapper.durations import parse_count, parse_duration, parse_number, parse_size

    if key == "max_log_size":
        settings.max_log_size = parse_size(text, where)
    elif key == "keep":
        settings.keep = parse_count(text, where)
    elif key == "keep_days":
        settings.keep_days = parse_number(text, where)
    elif key == "overlap_exit":
        settings.overlap_exit = parse_count(text, where, 0, 255)
    else:  # timeout, kill_after, lock_wait, every, grace, max_runtime
        setattr(settings, key, parse_duration(text, where))


_CRON_FIELD = r"[0-9A-Za-z*?/,#LW-]+"
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def check_schedule(text: str, where: str) -> str:
    """A light check of a cron expression: five fields or an @macro (croniter is the agent's)."""
    fields = text.split()
    if text.strip() in _CRON_MACROS:
        return text.strip()
    well_formed = all(re.fullmatch(_CRON_FIELD, f, re.ASCII) for f in fields)
    if len(fields) != 5 or len(text) > 128 or not well_formed:
        raise UsageError(f"{where}: {text!r} is not a five-field cron expression like '0 3 * * *'")
    return " ".join(fields)


CONFIG_KEYS = {
    "log_dir", "lock_dir", "spool_dir", "socket", "keep", "keep_days", "max_log_size",
    "kill_after", "lock_wait", "overlap_exit", "timeout", "cron_env", "verbose",
}


def config_paths(explicit: str | None, environ: dict[str, str]) -> list[str]:
    """The config files to read, lowest precedence first."""
    if explicit:
        return [explicit]
    config_home = environ.get("XDG_CONFIG_HOME", "")
    if not config_home.startswith("/"):
        config_home = os.path.join(os.path.expanduser("~"), ".config")
    return [SYSTEM_CONFIG, os.path.join(config_home, "cronwrap", "cronwrap.toml")]


def load_config(settings: Settings, paths: list[str], explicit: bool) -> None:
    """Apply each existing file's keys in order; ConfigError for a bad or missing explicit file."""
    for path in paths:
        if not explicit and not os.path.exists(path):
            continue
        import tomllib

        try:
            with open(path, "rb") as handle:
                table = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"config {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path}: {exc}") from None
        for key, value in table.items():
            if key not in CONFIG_KEYS:
                raise ConfigError(f"config {path}: unknown key {key!r}")
            is_flag = key in FLAG_KEYS
            if isinstance(value, bool) != is_flag or not isinstance(value, str | int | float):
                kind = "true or false" if is_flag else "a string or number"
                raise ConfigError(f"config {path}: {key} must be {kind}")
            try:
                apply_option(settings, key, value, f"config {path}: {key}")
            except UsageError as exc:
                raise ConfigError(str(exc)) from None


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, blank lines, optional `export` and matching quotes allowed."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"env file {path}: {reason}") from None
    values = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(_ENV_LINE, line, re.ASCII)
        if match is None:
            raise ConfigError(f"env file {path}, line {number}: expected KEY=VALUE")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def cron_environment(uid: int) -> dict[str, str]:
    """The minimal environment cron gives a job: HOME, LOGNAME, USER, SHELL=/bin/sh, PATH."""
    import pwd

    try:
        entry = pwd.getpwuid(uid)
        name, home = entry.pw_name, entry.pw_dir
    except KeyError:
        name, home = str(uid), "/"
    return {"HOME": home, "LOGNAME": name, "USER": name, "SHELL": "/bin/sh", "PATH": CRON_PATH}


def user_name(uid: int) -> str:
    """The login name for `uid` (the <user> level of the log tree), or the uid as text."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
