"""Settings: defaults, TOML config files, environment variables, env files and cron's env."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from cronwrap.wrapper.errors import EX_TEMPFAIL, ConfigError, UsageError

if TYPE_CHECKING:
    from cronwrap.wrapper.mail import MailSettings

SYSTEM_CONFIG = "/etc/cronwrap/cronwrap.toml"
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
        self.last_message = False  # send the output's last line to the agent (may hold secrets)
        self.env_files: list[str] = []
        self.cron_env = False
        self.socket = "/run/cronwrap/agent.sock"
        self.spool_dir = "/var/spool/cronwrap"
        self.schedule: str | None = None
        self.tz: str | None = None  # the zone the schedule is in (--tz, CRON_TZ=): not cron's
        self.every: float | None = None
        self.grace: float | None = None
        self.max_runtime: float | None = None
        self.min_duration: float | None = None  # a successful run shorter is an anomaly
        self.max_duration: float | None = None  # a successful run longer is an anomaly
        self.duration_baseline: bool | None = None  # False: --no-duration-baseline
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
        self.mail_problem: str | None = None  # why this run is not mailed (a warning), if it is not


TEXT_KEYS = ("name", "lock_dir", "log_dir", "log_group", "socket", "spool_dir")
FLAG_KEYS = ("verbose", "cron_env", "journal", "mail_starttls", "last_message")
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
    elif key == "no_duration_baseline":
        settings.duration_baseline = False
    elif key == "mail_to":
        settings.mail_to.append(str(value))
    elif key == "env_file":
        settings.env_files.append(str(value))
    elif key == "schedule":
        zone, settings.schedule = split_cron_tz(str(value), where)
        if zone is not None:
            set_zone(settings, zone, where)
    elif key == "tz":
        set_zone(settings, str(value), where)
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
    else:  # timeout, kill_after, lock_wait, every, grace, max_runtime, min/max_duration
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


def split_cron_tz(text: str, where: str) -> tuple[str | None, str]:
    """'CRON_TZ=Asia/Kolkata 30 2 * * *' -> ('Asia/Kolkata', '30 2 * * *'); no prefix: None."""
    head, _, rest = text.strip().partition(" ")
    if not head.startswith("CRON_TZ="):
        return None, check_schedule(text, where)
    return head.removeprefix("CRON_TZ="), check_schedule(rest, where)


def set_zone(settings: Settings, zone: str, where: str) -> None:
    """Set the schedule's zone once: --tz and a CRON_TZ= prefix must agree."""
    check_zone(zone, where)
    if settings.tz is not None and settings.tz != zone:
        raise UsageError(f"{where}: zone {zone!r} conflicts with {settings.tz!r} given before")
    settings.tz = zone


ZONEINFO_DIRS = ("/usr/share/zoneinfo", "/usr/lib/zoneinfo", "/usr/share/lib/zoneinfo",
                 "/etc/zoneinfo")


def check_zone(zone: str, where: str) -> None:
    """A cheap check that `zone` names a zoneinfo file: one stat on Debian, zoneinfo otherwise."""
    from cronwrap.wrapper.events import is_valid_zone_name

    if is_valid_zone_name(zone):
        if any(os.path.isfile(os.path.join(d, zone)) for d in ZONEINFO_DIRS):
            return
        import zoneinfo  # no system database here: Python's tzdata package may have it

        try:
            zoneinfo.ZoneInfo(zone)
            return
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise UsageError(f"{where}: unknown time zone {zone!r}: use a zoneinfo name like "
                     "Europe/London (see /usr/share/zoneinfo)")


CONFIG_KEYS = {
    "log_dir", "log_group", "lock_dir", "spool_dir", "socket", "keep", "keep_days", "max_log_size",
    "kill_after", "lock_wait", "overlap_exit", "timeout", "verbose", "journal", "last_message",
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
    """Apply each file's keys in order; ConfigError for a bad, untrusted or missing explicit file.

    A default path that does not exist is skipped; so is the system config when the caller may
    not read it (root keeps secrets there at mode 0600: other users' jobs run without it).
    """
    for path in paths:
        skip_unreadable = not explicit and path == SYSTEM_CONFIG
        data = read_trusted_file(path, "config", missing_ok=not explicit,
                                 unreadable_ok=skip_unreadable)
        if data is None:
            continue
        import tomllib

        try:
            table = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"config {path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path}: {exc}") from None
        for key, value in table.items():
            _apply_config_value(settings, path, key, value)


MAX_TRUSTED_FILE_BYTES = 1 << 20
_TRUSTED_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC


def read_trusted_file(path: str, what: str, missing_ok: bool = False,
                      unreadable_ok: bool = False) -> bytes | None:
    """The bytes of a config or env file the caller may trust; ConfigError naming `what` if not.

    Trusted: a regular file (no symlink, FIFO or device) of at most 1 MiB, owned by the caller
    or root, writable by nobody else (group write only for the caller's own user-private
    group).  Opened O_NONBLOCK|O_NOFOLLOW and checked on the open descriptor: nothing blocks,
    and nothing can be swapped in between the check and the read.  None when the file is
    missing (`missing_ok`) or the caller may not read it (`unreadable_ok`).
    """
    try:
        fd = os.open(path, _TRUSTED_OPEN_FLAGS)
    except OSError as exc:
        if (missing_ok and exc.errno == errno.ENOENT) or (
                unreadable_ok and exc.errno == errno.EACCES):
            return None
        reason = "it is a symlink (name the file itself)" if exc.errno == errno.ELOOP \
            else exc.strerror or str(exc)
        raise ConfigError(f"{what} {path}: {reason}") from None
    try:
        info = os.fstat(fd)
        problem = _untrusted_because(info, os.getuid())
        if problem is not None:
            raise ConfigError(f"{what} {path}: refused: {problem}")
        data = b""
        while len(data) <= MAX_TRUSTED_FILE_BYTES and (
                more := os.read(fd, min(info.st_size, MAX_TRUSTED_FILE_BYTES) + 1)):
            data += more  # one read unless the file grows while it is read
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_TRUSTED_FILE_BYTES:
        raise ConfigError(f"{what} {path}: refused: larger than 1 MiB")
    return data


def _untrusted_because(info: os.stat_result, uid: int) -> str | None:
    """Why a file with this status may not steer the caller's jobs, or None if it may."""
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid not in (uid, 0):
        return f"owned by uid {info.st_uid}, not by you (uid {uid}) or root"
    if info.st_mode & stat.S_IWOTH:
        return "writable by every user (chmod o-w)"
    if info.st_mode & stat.S_IWGRP and not _own_private_group(info.st_gid, uid):
        return f"writable by group {info.st_gid}, not your own private group (chmod g-w)"
    return None


def _own_private_group(gid: int, uid: int) -> bool:
    """True if `gid` is the caller's user-private group: its primary, named like it, no others."""
    if gid != os.getgid():
        return False
    import grp
    import pwd

    try:
        group, user = grp.getgrgid(gid), pwd.getpwuid(uid).pw_name
    except KeyError:
        return False
    return group.gr_name == user and set(group.gr_mem) <= {user}


def _apply_config_value(settings: Settings, path: str, key: str, value: object) -> None:
    if key not in CONFIG_KEYS:
        raise ConfigError(f"config {path}: unknown key {key!r}")
    is_flag = key in FLAG_KEYS
    if isinstance(value, bool) != is_flag or not isinstance(value, str | int | float):
        kind = "true or false" if is_flag else "a string or number"
        if key.startswith("mail_"):  # mail never stops a job: resolve_mail turns mail off
            settings.mail_problem = f"config {path}: {key} must be {kind}"
            return
        raise ConfigError(f"config {path}: {key} must be {kind}")
    if key == "mail_to":
        settings.mail_to.clear()  # a later file's recipients replace an earlier one's
    try:
        apply_option(settings, key, value, f"config {path}: {key}")
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


class _MailProblem(Exception):
    """A mail setting that cannot work; str() is one line naming the flag or key."""


def resolve_mail(settings: Settings) -> None:
    """Check the mail keys and set settings.mail; mail.py is imported only if there are recipients.

    Mail never stops a job: a bad value or keys that do not work together (a login without
    STARTTLS...) leave settings.mail None and one line in settings.mail_problem, which the
    caller prints as a warning.  A problem found while reading a config file counts too.
    """
    try:
        settings.mail = None if settings.mail_problem else _mail_settings(settings)
    except _MailProblem as exc:
        settings.mail_problem = str(exc)


def _mail_settings(settings: Settings) -> MailSettings | None:
    where = settings.mail_where
    flags = [source for source in where.values() if source.startswith("-")]
    if not settings.mail_to:
        if flags:
            raise _MailProblem(f"{flags[0]} needs recipients: add --mail-to ADDR")
        return None
    from cronwrap.wrapper import mail

    to = tuple(addr for text in settings.mail_to
               for addr in _mail_value(mail.parse_mail_to, text, where["mail_to"]))
    on = _mail_value(mail.parse_mail_on, settings.mail_on, where.get("mail_on", "mail_on"))
    if settings.mail_smtp is not None:
        _mail_value(mail.parse_smtp_address, settings.mail_smtp, where["mail_smtp"])
    try:
        return mail.MailSettings(
            to=to, on=on, smtp=settings.mail_smtp, starttls=settings.mail_starttls,
            username=settings.mail_username, password=settings.mail_password,
            sender=settings.mail_from, ca_file=settings.mail_ca_file,
        )
    except mail.MailConfigError as exc:
        raise _MailProblem(f"mail settings: {exc}") from None


def _mail_value(parse: Callable[[str], T], text: str, where: str) -> T:
    from cronwrap.wrapper.mail import MailConfigError

    try:
        return parse(text)
    except MailConfigError as exc:
        raise _MailProblem(f"{where}: {exc}") from None


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; `#` comments, blank lines, optional `export` and matching quotes allowed.

    The file must be one the caller may trust (read_trusted_file): it sets the job's PATH.
    """
    data = read_trusted_file(path, "env file")
    assert data is not None  # neither missing_ok nor unreadable_ok
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(f"env file {path}: not UTF-8 text") from None
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


def user_name(uid: int) -> str:
    """The login name for `uid` (the <user> level of the log tree), or the uid as text."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
