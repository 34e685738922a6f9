"""What Debian's cron daemon logs when it refuses a crontab, read as the crontab and cron's words.

When cron loads its crontabs (database.c's load_database, at start and when a file changed) it
logs, as `cron` (the daemon, not the job's `CRON` process), a crontab it will not read:

    (*system*backup) WRONG FILE OWNER (/etc/cron.d/backup)          process_crontab's checks:
    (alice) INSECURE MODE (mode 0600 expected) (/var/spool/cron/crontabs/alice)    logged again
    (*system*x) NUMBER OF HARD LINKS > 1 (/etc/cron.d/x)                            each minute
    Error: bad minute; while reading /etc/cron.d/x                  user.c's crontab_error, then
    (*system*x) ERROR (Syntax error, this crontab file will be ignored)     load_user gives up
    (*system*y) ERROR (Missing newline before EOF, this crontab file will be ignored)

`(*system*)` is /etc/crontab, `(*system*NAME)` /etc/cron.d/NAME, `(USER)` USER's crontab in
/var/spool/cron/crontabs.  The crontab is named as discovery names it (its path on the host).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cronwrap.wrapper.events import MAX_PROBLEM_CHARS, safe_text

from ..model import CRON_LOG_SAYS
from .cronrules import CRON_D_NAME

SYSTEM = "*system*"
SPOOL = "/var/spool/cron/crontabs/"
_CHECK = re.compile(r"\((?P<fname>[^()]+)\) (?P<words>WRONG FILE OWNER|NOT A REGULAR FILE|"
                    r"INSECURE MODE \((?:group/other writable|mode 0600 expected)\)|"
                    r"NUMBER OF HARD LINKS > 1|WRONG SYMLINK OWNER) \([^()]*\)")
_GIVEN_UP = re.compile(r"\((?P<fname>[^()]+)\) ERROR \((?P<words>[^()]*, this crontab file "
                       r"will be ignored)\)")
_DETAIL = re.compile(r"Error: (?P<what>[^;]+); while reading (?:crontab for user "
                     r"(?P<user>\S+)|(?P<path>/\S+))")
_USER = re.compile(r"[^/\s]+")


@dataclass(frozen=True)
class CrontabRefused:
    """cron will not read `crontab` (discovery's name for it), in cron's `words`."""

    crontab: str
    words: str


@dataclass(frozen=True)
class SyntaxProblem:
    """What cron found wrong in `crontab` (`bad minute`, ...), logged before it gives up."""

    crontab: str
    what: str


def parse_refusal(message: str) -> CrontabRefused | SyntaxProblem | None:
    """What one of the daemon's messages says about a crontab it refuses; None otherwise."""
    if match := _CHECK.fullmatch(message) or _GIVEN_UP.fullmatch(message):
        crontab = crontab_of(match["fname"])
        return None if crontab is None else CrontabRefused(crontab, match["words"])
    if match := _DETAIL.fullmatch(message):
        crontab = match["path"] or crontab_of(match["user"])
        return None if crontab is None else SyntaxProblem(crontab, match["what"])
    return None


def crontab_of(fname: str) -> str | None:
    """The crontab cron calls `fname` (None: not a name cron gives one)."""
    if fname == SYSTEM:
        return "/etc/crontab"
    if fname.startswith(SYSTEM):
        name = fname.removeprefix(SYSTEM)
        return f"/etc/cron.d/{name}" if CRON_D_NAME.fullmatch(name) else None
    if _USER.fullmatch(fname) and fname not in (".", ".."):
        return SPOOL + fname
    return None


def reason(words: str, what: str | None) -> str:
    """cronJobIgnoredByCron for a line of a crontab cron refused in `words` (`what`: the syntax
    problem it logged before)."""
    detail = f" ({what})" if what else ""
    return safe_text(f"{CRON_LOG_SAYS}{words}{detail}", MAX_PROBLEM_CHARS)


def unchanged_since(path: Path, when: float) -> bool:
    """Whether the crontab `path` is as it was at `when`, when cron refused it: cron reads a
    changed file again (and says again if it still refuses it)."""
    try:
        return path.stat().st_ctime <= when
    except OSError:
        return False
