"""Crontab discovery as a source: the jobs crontab lines run, read from the system and user
crontabs every discovery_interval and adopted by the core as LineSeen and LineGone events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from croniter import croniter
from cronwrap.wrapper.events import (
    MAX_PATH_CHARS,
    MAX_PROBLEM_CHARS,
    MAX_SCHEDULE_CHARS,
    Cadence,
    is_valid_zone_name,
    safe_text,
)

from ..config import Config
from ..core import AgentCore, Unavailable
from ..lifeevents import Deferral, WorkDeferred
from ..linenames import LineJob, line_job, logged_command
from ..model import JobKey, JobSource
from ..ratelimit import OwnerBudget, RateLimitedLog
from ..schedule import NICKNAMES, Discovered, refusal
from . import cronrefusals, cronrules
from .cronlog import CronLogSource

log = logging.getLogger(__name__)
# lines about crontab lines, which their owners write: a class per user a minute, then a count
LINES = RateLimitedLog("crontab")

# a longer crontab line is never a job cron runs (cron refuses commands over 1,000 bytes)
MAX_LINE_BYTES = 64 * 1024
CRON_TZ_LINE = re.compile(r"""CRON_TZ\s*=\s*(["']?)([^"'\s]*)\1\s*""")
CRONIE_DAEMONS = ("usr/sbin/crond", "usr/bin/crond", "usr/sbin/cron")


class CrontabSource:
    """Scans the crontabs under crontab_root and hands what it found to the core."""

    def __init__(self, core: AgentCore, config: Config, cron_log: CronLogSource | None) -> None:
        self.core = core
        self.root = Path(config.crontab_root)
        self.cron_log = cron_log
        self.read = CrontabReader(config.crontab_lines_per_minute)
        self.cron_tz = (honours_cron_tz(self.root) if config.crontab_cron_tz == "auto"
                        else config.crontab_cron_tz == "honour")
        log.info("schedules are evaluated in %s; CRON_TZ lines in crontabs are %s",
                 config.cron_timezone or "the local zone",
                 "honoured" if self.cron_tz else "ignored")

    async def scan(self) -> None:
        """Scan the crontabs; lines that do not run cronwrap too when cron's log reports them."""
        plain_lines = self.cron_log is not None and self.cron_log.starts_seen
        refused = self.cron_log.refused() if self.cron_log is not None else {}
        found = await asyncio.to_thread(discover, self.root, self.cron_tz, plain_lines,
                                        self.read, refused)
        for deferral in self.read.deferrals():
            self.core.note(deferral)
        with contextlib.suppress(Unavailable):  # the state is read-only: the core said so once
            await self.core.set_discovered(found)


def honours_cron_tz(root: Path) -> bool:
    """Whether the host's cron reads CRON_TZ lines: cronie does, Debian's cron does not.

    cronie's daemon names CRON_TZ in its binary (find_jobs reads it from each entry's
    environment); Debian's cron, busybox and the rest do not.
    """
    for name in CRONIE_DAEMONS:
        try:
            with (root / name).open("rb") as daemon:
                if b"CRON_TZ" in daemon.read():
                    return True
        except OSError:
            continue
    return False


def discover(root: Path, cron_tz: bool = False, plain_lines: bool = False,
             read: CrontabReader | None = None,
             refused: dict[str, tuple[str, float]] | None = None) -> list[Discovered]:
    """Every cronwrap job in system and user crontabs, in the order cron reads them; cron_tz:
    honour CRON_TZ lines (cronie); plain_lines: every other line too (cron's log reports its
    runs), with the name "" that the core replaces (linenames.line_name); read: what the last
    scans found, so that unchanged crontabs are not read again; refused: the crontabs cron's
    log says cron refuses (CronLogSource.refused)."""
    system = [p for p in [root / "etc/crontab"] if p.exists()] + _cron_d_files(root / "etc/cron.d")
    spool = root / "var/spool/cron/crontabs"
    users = [path for path in sorted(spool.iterdir()) if path.is_file()
             and not path.is_symlink()] if spool.is_dir() else []
    crontabs = [(path, True) for path in system] + [(path, False) for path in users]
    return (read or CrontabReader()).scan(root, crontabs, cron_tz, plain_lines, refused or {})


# user, schedule, job, CRON_TZ, the command as cron logs it, why cron will never run the line
Line = tuple[str | None, str, LineJob, str | None, str, str | None]


class OverBudget(Exception):
    """A crontab has more lines than its owner's budget has left: it is read later."""


class CrontabReader:
    """The job lines of each crontab, read and named again only when the file changed (its
    inode, size or times); a scan that finds every crontab and user as the last one did
    returns the last scan's jobs (the same list): it costs a stat per crontab and a user
    look-up per crontab user.

    After the first scan, a changed crontab's lines (all but comments and blank ones) are
    parsed from its owner's budget of `lines_per_minute` (root's crontabs have none), and only
    once the budget is whole again: until then the crontab is deferred, its last lines kept,
    and read by a later scan (its signature still differs from the one kept)."""

    def __init__(self, lines_per_minute: int = Config.crontab_lines_per_minute,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read: dict[tuple[Path, bool], tuple[tuple[int, ...], list[Line]]] = {}
        self._last: tuple[object, dict[str, int | None], list[Discovered]] | None = None
        self._budget = OwnerBudget(lines_per_minute, 60.0, clock)
        self._scanned = False  # the first scan reads every crontab: rows wait for their lines
        self.put_off: list[tuple[int, str]] = []  # the last scan's reads put off: (owner, why)

    def scan(self, root: Path, crontabs: list[tuple[Path, bool]], cron_tz: bool,
             plain_lines: bool, refused: dict[str, tuple[str, float]] | None = None
             ) -> list[Discovered]:
        """The jobs of `crontabs` (path, whether its lines name a user: the system's do); a
        line discovery finds nothing wrong with is ignored for the reason cron's log gave
        (`refused`) while its crontab has not changed since."""
        refused = refused or {}
        signature = (root, cron_tz, plain_lines, tuple(sorted(refused.items())),
                     tuple((path, with_user, _stat_version(path)) for path, with_user in crontabs))
        last = self._last
        if last is not None and last[0] == signature and all(
                _uid(user, {}) == uid for user, uid in last[1].items()):
            return last[2]
        found: list[Discovered] = []
        uids: dict[str, int | None] = {}  # user name -> uid, looked up once a scan
        self.put_off = []
        for path, with_user in crontabs:
            crontab = _Crontab(root, path)
            said = _still_refused(path, refused.get(crontab.name))
            for user, schedule, job, tz, logged, ignored in self.lines(path, with_user):
                ignored = ignored or said
                _add(found, user, schedule, (job, logged), crontab, tz if cron_tz else None,
                     plain_lines or ignored is not None, uids, ignored)
        paths = {path for path, _ in crontabs}
        self._read = {key: kept for key, kept in self._read.items() if key[0] in paths}
        self._last = (signature, uids, found) if not self.put_off else None
        self._scanned = True
        return found

    def lines(self, path: Path, with_user: bool) -> list[Line]:
        try:
            info = path.stat()
        except OSError:
            return _lines(path, with_user)  # says why it cannot be read
        version = _version(info)
        kept = self._read.get((path, with_user))
        if kept is not None and kept[0] == version:
            return kept[1]
        owner, limited = info.st_uid, info.st_uid != 0 and self._scanned
        allowance = _Allowance(self._budget.capacity if limited else None)
        try:
            if limited and self._budget.available(owner) < self._budget.capacity:
                raise OverBudget("its owner's crontab_lines_per_minute was spent: a later scan "
                                 "reads it")
            lines = _lines(path, with_user, allowance)
        except OverBudget as over:
            self._defer(path, owner, str(over))
            return kept[1] if kept is not None else []
        finally:
            if limited:
                self._budget.take(owner, allowance.spent)
        self._read[(path, with_user)] = (version, lines)
        return lines

    def _defer(self, path: Path, owner: int, why: str) -> None:
        self.put_off.append((owner, f"{path} changed and is not read yet: {why}; the jobs its "
                                    "last read found stay"))

    def deferrals(self) -> list[WorkDeferred]:
        """The last scan's reads put off, as events for the core (which counts and logs them)."""
        return [WorkDeferred(owner, Deferral.crontab, why) for owner, why in self.put_off]


class _Allowance:
    """The lines a crontab read may parse (None: no limit), and those it parsed."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self) -> None:
        if self.limit is not None and self.spent >= self.limit:
            raise OverBudget("it has more lines than crontab_lines_per_minute: it is read "
                             "again when the agent starts")
        self.spent += 1


def _version(info: os.stat_result) -> tuple[int, ...]:
    """What changes when a crontab is written."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _still_refused(path: Path, refusal: tuple[str, float] | None) -> str | None:
    """Why cron's log says cron refuses the crontab `path`, unless the file changed since."""
    if refusal is None or not cronrefusals.unchanged_since(path, refusal[1]):
        return None
    return refusal[0]


def _stat_version(path: Path) -> tuple[int, ...] | None:
    """A crontab's _version (None: it cannot be looked at)."""
    try:
        return _version(path.stat())
    except OSError:
        return None


def _cron_d_files(directory: Path) -> list[Path]:
    """cron(8) ignores names containing a dot or ending in ~ (package leftovers)."""
    if not directory.is_dir():
        return []
    return [p for p in sorted(directory.iterdir())
            if p.is_file() and not cronrules.is_leftover(p.name)]


def _lines(path: Path, with_user: bool, allowance: _Allowance | None = None) -> list[Line]:
    """(user, schedule, job, the CRON_TZ set above the line, the command as cron logs it, why
    cron ignores it) for each job line; the job is named from the command as cron keeps it
    (leading blanks dropped, the rest verbatim).  Whose line it is: see _line_user.  Each line
    but comments and blank ones is spent from `allowance` (OverBudget: it ran out)."""
    try:
        with path.open("rb") as crontab:
            info = os.fstat(crontab.fileno())
            ending = _Ending()
            entries, problem = _entries(ending.watch(_bounded_lines(crontab)), with_user,
                                        allowance or _Allowance(None))
    except OSError as exc:
        log.warning("cannot read crontab %s: %s", path, exc.strerror)
        return []
    problem = cronrules.crontab_refusal(path, with_user, info) or problem or ending.problem
    return [(_line_user(path, with_user, info.st_uid, user), schedule, job, tz, logged, problem)
            for user, schedule, job, tz, logged, _ in entries]


def _line_user(path: Path, with_user: bool, file_uid: int, named: str | None) -> str | None:
    """Whose row a line makes: in a crontab a user other than root owns, that user's, whatever
    the line or the file's name says (they wrote it; cron refuses such a system crontab, and a
    user crontab of another user, so the line never runs as anyone else: the named user never
    vouched for it); in root's, the user the line names (a system crontab's; the file owner's
    where it names none) or the user crontab's name."""
    if file_uid != 0:
        return _user_name(file_uid)
    if not with_user:
        return path.name
    return named or "root"


class _Ending:
    """Whether a crontab's last line, a job or a setting, lacks its newline: cron then ignores
    the whole file ("Missing newline before EOF")."""

    def __init__(self) -> None:
        self.problem: str | None = None

    def watch(self, lines: Iterator[tuple[str, bool]]) -> Iterator[str]:
        for text, ended in lines:
            if not ended and cronrules.is_entry(text):
                self.problem = cronrules.NO_FINAL_NEWLINE
            yield text


def _user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _bounded_lines(crontab: BinaryIO) -> Iterator[tuple[str, bool]]:
    """The lines of a crontab, read one at a time, without those over MAX_LINE_BYTES (never
    held whole: a user's crontab may hold comment lines of any length, crontab(1) takes them),
    each with whether it ended with a newline.

    cron reads up to "\n": a "\r" belongs to the command, so no newline is translated.
    """
    while line := crontab.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES:
            while line and not line.endswith(b"\n"):  # the rest of it, a slice at a time
                line = crontab.readline(MAX_LINE_BYTES)
            continue
        yield line.removesuffix(b"\n").decode(errors="surrogateescape"), line.endswith(b"\n")


def _entries(lines: Iterable[str], with_user: bool, allowance: _Allowance
             ) -> tuple[list[Line], str | None]:
    """The job lines among a crontab's `lines`, each with the CRON_TZ set above it, and the
    first syntax error, for which cron ignores the whole file (None: there is none)."""
    entries: list[Line] = []
    problem: str | None = None
    tz: str | None = None
    for number, raw in enumerate(lines, 1):
        if cronrules.is_entry(raw):
            allowance.spend()
        setting = CRON_TZ_LINE.fullmatch(raw.strip())
        if setting:
            tz = setting.group(2) or None
            continue
        entry = _parse_line(raw, with_user)
        if isinstance(entry, str):
            problem = problem or cronrules.syntax_refusal(number, entry)
            entry = _loose_fields(raw, with_user)
        if entry is not None:
            user, schedule, command = entry
            logged = logged_command(command)
            entries.append((user, schedule, line_job(logged), tz, logged, None))
    return entries, problem


_TIME_FIELDS = re.compile(r"[ \t]*(@\S+|(?:\S+[ \t]+){4}\S+)[ \t]+(.*)")
_USER_FIELD = re.compile(r"(\S+)[ \t]+(.*)")


def _parse_line(line: str, with_user: bool) -> tuple[str | None, str, str] | str | None:
    """(user, schedule, command) of a crontab line with a cadence; None for comments,
    environment settings and @reboot; what is wrong with a line cron refuses (a str)."""
    if not cronrules.is_entry(line) or cronrules.ENVIRONMENT.match(line):
        return None
    fields = _TIME_FIELDS.fullmatch(line)
    if fields is None:
        return "not a schedule and a command"
    when, rest = fields.groups()
    if when == "@reboot":
        return None
    if when.startswith("@"):
        if when not in NICKNAMES:
            return f"unknown {when}"
        schedule = NICKNAMES[when]
    else:
        schedule = " ".join(when.split())
    user = None
    if with_user:
        user_field = _USER_FIELD.fullmatch(rest)
        if user_field is None:
            return "no user and command"
        user, rest = user_field.groups()
    if not rest.strip():
        return "no command"
    if len(schedule) > MAX_SCHEDULE_CHARS:  # kept cut, never parsed: schedule.refusal says why
        return user, schedule[:MAX_SCHEDULE_CHARS + 1], rest
    if not croniter.is_valid(schedule):
        return f"bad schedule {schedule!r}"
    return user, schedule, rest


def _loose_fields(line: str, with_user: bool) -> tuple[str | None, str, str]:
    """(user, "", command) of a line cron refuses, read as far as it goes: its row's name."""
    fields = _TIME_FIELDS.fullmatch(line)
    rest = fields.group(2) if fields else line.strip()
    user_field = _USER_FIELD.fullmatch(rest) if with_user and fields else None
    if user_field is None:
        return None, "", rest
    return user_field.group(1), "", user_field.group(2)


class _Crontab:
    """A crontab file, and its name as the host knows it (its path under crontab_root)."""

    def __init__(self, root: Path, path: Path) -> None:
        self.path = path
        self.name = safe_text("/" + str(path.relative_to(root)), MAX_PATH_CHARS)

    def __str__(self) -> str:
        return str(self.path)


def _uid(user: str, uids: dict[str, int | None]) -> int | None:
    if user not in uids:
        try:
            uids[user] = pwd.getpwnam(user).pw_uid
        except KeyError:
            uids[user] = None
    return uids[user]


def _add(found: list[Discovered], user: str | None, schedule: str, line: tuple[LineJob, str],
         path: _Crontab, tz: str | None, plain_lines: bool, uids: dict[str, int | None],
         ignored: str | None = None) -> None:
    job, logged = line
    if user is None or not (job.wrapped or plain_lines):
        return
    name = job.name or f"`{logged[:60]}`"  # a plain line is named by the core
    uid = _uid(user, uids)
    if uid is None:
        LINES.warning("unknown user", f"{path}: unknown user {user!r} on the line for job {name}")
        return
    key = JobKey(uid, job.name or "")
    source = JobSource.wrapper if job.wrapped else JobSource.cron_log
    if ignored is not None:  # cron never runs it: a row in ignoredByCron, whatever its schedule
        found.append(Discovered(key, user, schedule, None, source, path.name, job.bounds,
                                logged, safe_text(ignored, MAX_PROBLEM_CHARS)))
        return
    problem = refusal(Cadence(schedule=schedule))
    if tz is not None and not is_valid_zone_name(tz):
        problem = "CRON_TZ above it is not a time zone name"
    if problem is not None:
        LINES.warning("line ignored", f"{path}: {problem}: the line for job {name} is ignored",
                      uid)
        return
    found.append(Discovered(key, user, schedule, tz, source, path.name, job.bounds, logged))
