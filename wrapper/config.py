"""Settings: defaults, TOML config files, environment variables, env files and cron's env."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

from cronwrap.wrapper.errors import EX_TEMPFAIL, ConfigError, UsageError

if TYPE_CHECKING:
    from cronwrap.wrapper.mail import MailSettings

SYSTEM_CONFIG = "/etc/cronwrap/cronwrap.toml"
CRON_PATH = "/usr/bin:/bin"
T = TypeVar("T")
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
        self.overlap_exit = EX_TEMPFAIL
        self.log_dir: str | None = None
        self.log_group: str | None = None  # a group name or gid that may read the logs
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
        self.journal = True
        self.mail_to: list[str] = []  # raw --mail-to / mail_to values, checked by resolve_mail
        self.mail_on = "failure"
        self.mail_smtp: str | None = None
        self.mail_starttls = False
        self.mail_from: str | None = None
        self.mail_username: str | None = None
        self.mail_password: str | None = None
        self.mail_ca_file: str | None = None
        self.mail_where: dict[str, str] = {}  # mail key -> the flag or config key that set it
        self.mail: MailSettings | None = None  # set by resolve_mail when there are recipients


TEXT_KEYS = ("name", "lock_dir", "log_dir", "log_group", "socket", "spool_dir")
FLAG_KEYS = ("verbose", "cron_env", "journal", "mail_starttls")
MAIL_TEXT_KEYS = ("mail_on", "mail_smtp", "mail_from", "mail_username", "mail_password",
                  "mail_ca_file")


def apply_option(settings: Settings, key: str, value: str | bool, where: str) -> None:
    """Set one option from its text form (flag value or config value); UsageError naming `where`."""
    if key.startswith("mail_"):
        settings.mail_where[key] = where
    if key in TEXT_KEYS or key in MAIL_TEXT_KEYS:
        setattr(settings, key, str(value))
    elif key in FLAG_KEYS:
        setattr(settings, key, bool(value))
    elif key == "no_journal":
        settings.journal = False
    elif key == "mail_to":
        settings.mail_to.append(str(value))
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
    "log_dir", "log_group", "lock_dir", "spool_dir", "socket", "keep", "keep_days", "max_log_size",
    "kill_after", "lock_wait", "overlap_exit", "timeout", "cron_env", "verbose", "journal",
    "mail_to", "mail_on", "mail_smtp", "mail_starttls", "mail_from", "mail_username",
    "mail_password", "mail_ca_file",
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
            _apply_config_value(settings, path, key, value)


def _apply_config_value(settings: Settings, path: str, key: str, value: object) -> None:
    if key not in CONFIG_KEYS:
        raise ConfigError(f"config {path}: unknown key {key!r}")
    is_flag = key in FLAG_KEYS
    if isinstance(value, bool) != is_flag or not isinstance(value, str | int | float):
        kind = "true or false" if is_flag else "a string or number"
        raise ConfigError(f"config {path}: {key} must be {kind}")
    if key == "mail_to":
        settings.mail_to.clear()  # a later file's recipients replace an earlier one's
    try:
        apply_option(settings, key, value, f"config {path}: {key}")
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


def resolve_mail(settings: Settings) -> None:
    """Check the mail keys and set settings.mail; mail.py is imported only if there are recipients.

    A bad value is a UsageError when a flag set it, a ConfigError when a config file did; keys
    that do not work together (a login without STARTTLS...) are a UsageError if any mail key
    came from a flag.
    """
    where = settings.mail_where
    flags = [source for source in where.values() if source.startswith("-")]
    if not settings.mail_to:
        if flags:
            raise UsageError(f"{flags[0]} needs recipients: add --mail-to ADDR")
        return
    from cronwrap.wrapper import mail

    to = tuple(addr for text in settings.mail_to
               for addr in _mail_value(mail.parse_mail_to, text, where["mail_to"]))
    on = _mail_value(mail.parse_mail_on, settings.mail_on, where.get("mail_on", "mail_on"))
    if settings.mail_smtp is not None:
        _mail_value(mail.parse_smtp_address, settings.mail_smtp, where["mail_smtp"])
    try:
        settings.mail = mail.MailSettings(
            to=to, on=on, smtp=settings.mail_smtp, starttls=settings.mail_starttls,
            username=settings.mail_username, password=settings.mail_password,
            sender=settings.mail_from, ca_file=settings.mail_ca_file,
        )
    except mail.MailConfigError as exc:
        _mail_error(f"mail settings: {exc}", bool(flags))


def _mail_value(parse: Callable[[str], T], text: str, where: str) -> T:
    from cronwrap.wrapper.mail import MailConfigError

    try:
        return parse(text)
    except MailConfigError as exc:
        _mail_error(f"{where}: {exc}", where.startswith("-"))


def _mail_error(message: str, from_flag: bool) -> NoReturn:
    raise UsageError(message) if from_flag else ConfigError(message)


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
