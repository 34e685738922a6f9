"""Which crontab files Debian's cron refuses to read, and why: run-parts' rule for the names in
/etc/cron.d, the owner and mode of a crontab, and a syntax error, for which it ignores the
whole file (database.c's process_crontab, entry.c's load_entry; checked against the real cron
by tests/test_ignored_by_cron.py)."""

from __future__ import annotations

import os
import pwd
import re
import stat
from pathlib import Path

# run-parts' names (Debian's cron without -l): letters, digits, '_' and '-' only
CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def name_refusal(name: str) -> str | None:
    """Why cron skips the /etc/cron.d file `name` unread (None: it reads it)."""
    if CRON_D_NAME.fullmatch(name):
        return None
    return ("file name has characters other than letters, digits, '_' and '-' "
            "(run-parts' rule): cron skips the file")


def file_refusal(info: os.stat_result, user_uid: int | None) -> str | None:
    """Why cron refuses a crontab with this fstat (None: it reads it); user_uid: the uid of
    a user crontab's user, None for a system crontab (/etc/crontab, /etc/cron.d); cron checks
    the links of both (database.c's process_crontab)."""
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    mode = stat.S_IMODE(info.st_mode)
    if user_uid is None:
        if info.st_uid != 0:
            return f"WRONG FILE OWNER: owned by uid {info.st_uid}, not root"
        if mode & 0o022:
            return f"INSECURE MODE (group/other writable): mode {mode:04o}"
    elif info.st_uid not in (0, user_uid):
        return f"WRONG FILE OWNER: owned by uid {info.st_uid}, not the user or root"
    elif mode != 0o600:
        return f"INSECURE MODE (mode 0600 expected): mode {mode:04o}"
    if info.st_nlink != 1:
        return f"NUMBER OF HARD LINKS > 1: {info.st_nlink} links"
    return None


def syntax_refusal(number: int, problem: str) -> str:
    """The reason every line of a file with a syntax error on line `number` is ignored."""
    return f"syntax error on line {number} ({problem}): cron ignores the whole file"


NO_FINAL_NEWLINE = "missing newline before EOF: cron ignores the whole file"
# an environment setting (cron's load_env): NAME = VALUE, the name without blanks
ENVIRONMENT = re.compile(r"""[ \t]*([^\s="']+|"[^"]*"|'[^']*')[ \t]*=""")
LEFTOVER = re.compile(r"\.|.*(~|\.dpkg-(old|dist|new|tmp)|\.ucf-(old|dist|new))$")


def is_entry(line: str) -> bool:
    """Whether cron reads `line` as a job or a setting (not blank, not a comment)."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def is_leftover(name: str) -> bool:
    """A hidden file or a package manager's copy in /etc/cron.d: cron skips it, and nobody
    expects it to run, so it is not reported."""
    return LEFTOVER.match(name) is not None


def crontab_refusal(path: Path, with_user: bool, info: os.stat_result) -> str | None:
    """Why cron refuses the crontab `path` with this stat (None: it reads it); with_user: a
    system crontab (its lines name their user), else a user crontab named after its user."""
    if with_user:
        if path.parent.name == "cron.d":
            named = name_refusal(path.name)
            if named is not None:
                return named
        return file_refusal(info, None)
    try:
        user_uid = pwd.getpwnam(path.name).pw_uid
    except KeyError:
        return "ORPHAN: no user of that name"
    return file_refusal(info, user_uid)
