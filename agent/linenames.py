"""The job name of a crontab line: one rule for crontab discovery and for cron's own log.

Debian's cron logs the command of each line it runs (`(root) CMD ([29827] /usr/local/bin/backup)`)
and the agent must give that run the same row that crontab discovery gave the line, so both
sides name a line from the command *as cron logs it* (`logged_command`). The rule
(docs/agent.md, "Jobs you have not wrapped"):

1. a line that runs cronwrap is the wrapper's job: `-n NAME`, or the name cronwrap derives from
   its command (`job_name_in`, the wrapper's own option parser and naming rule);
2. a line whose command ends with the shell comment `# cronwrap-name=NAME` is the job NAME
   (the comment changes nothing for the shell; it must come before any `%`);
3. any other line gets a readable name (`readable_name`: `cron-hourly` for `run-parts
   /etc/cron.hourly`, else the first real program past shell guards, agent/commands.py; else
   the /etc/cron.d file's name), made unique to the line with `-` and the CRC-32 of its logged
   command only when another line or job has that name already (`line_name`). The core gives
   the name, from the rows it has: a row keeps the command of its line (cronJobCommandLine),
   so a line keeps the name it was given, and a row an older agent named `PROGRAM-CRC`
   (`legacy_name`) keeps that name. Editing the command therefore makes a new job; two lines
   running the same program stay two jobs.
"""

from __future__ import annotations

import os
import re
import shlex
from binascii import crc32
from collections.abc import Callable
from dataclasses import dataclass

from cronwrap.wrapper.cli import job_name, parse_options
from cronwrap.wrapper.durations import parse_duration
from cronwrap.wrapper.errors import UsageError
from cronwrap.wrapper.events import Cadence, is_valid_job_name
from cronwrap.wrapper.names import derive_job_name

# cron logs at most about 1000 bytes of a command, less the "[pid] " in front; the first 960
# characters of its printable form are the same whatever the pid's length (see logged_command)
IDENTITY_CHARS = 960
PROGRAM_CHARS = 55  # 55 + "-" + 8 hex digits = 64, the longest job name
NAME_COMMENT = re.compile(r"(?:^|\s)#\s*cronwrap-name=(\S+)\s*$")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class LineJob:
    """The job a crontab line is: the name it declares (None for a plain line, which the core
    names: line_name), and whether cronwrap runs it (then the wrapper's events are the truth
    about its runs, not cron's log)."""

    name: str | None
    wrapped: bool
    # the line's --min-duration, --max-duration and --no-duration-baseline (a wrapped line's)
    bounds: Cadence = Cadence()


def logged_command(command: str) -> str:
    """The command of a crontab line as Debian's cron logs it (do_command.c, misc.c mkprint).

    `command` is the line's text after the schedule (and user) fields, leading blanks removed.
    cron runs (and logs) only what comes before the first unescaped `%` (the rest is the job's
    input), turns `\\%` into `%` and `\\\\` into `\\`, then prints control characters as `^X`,
    DEL as `^?` and bytes above 127 as `\\ooo`.  The result is cut to IDENTITY_CHARS.
    """
    kept: list[str] = []
    escaped = False
    for char in command:
        if escaped:
            if char in "%\\":
                kept[-1] = char
            else:
                kept.append(char)
            escaped = False
        elif char == "\\":
            kept.append(char)
            escaped = True
        elif char == "%":
            break
        else:
            kept.append(char)
    return printable("".join(kept).encode(errors="surrogateescape"))[:IDENTITY_CHARS]


def printable(raw: bytes) -> str:
    """cron's mkprint(): how a command's bytes appear in its log line."""
    out = []
    for byte in raw:
        if byte < 0x20:
            out.append("^" + chr(byte + 0x40))
        elif byte < 0x7F:
            out.append(chr(byte))
        elif byte == 0x7F:
            out.append("^?")
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


_PRINTED = re.compile(r"\\([0-3][0-7][0-7])|\^([@-_?])")


def unprintable(logged: str) -> str:
    """printable() undone, as far as it can be: the command the shell ran (a literal `\\101` or
    `^A` in the command comes back as the byte it looks like; names are still consistent, as
    discovery undoes the printing of the same text in the same way)."""
    def byte(match: re.Match[str]) -> bytes:
        if match[1]:
            return bytes([int(match[1], 8)])
        return b"\x7f" if match[2] == "?" else bytes([ord(match[2]) - 0x40])

    parts = []
    last = 0
    for match in _PRINTED.finditer(logged):
        parts += [logged[last:match.start()].encode(errors="surrogateescape"), byte(match)]
        last = match.end()
    parts.append(logged[last:].encode(errors="surrogateescape"))
    return b"".join(parts).decode(errors="surrogateescape")


def line_job(logged: str) -> LineJob:
    """The job of the crontab line whose command cron logs as `logged`: the name it declares
    (rules 1 and 2 above), or none (rule 3: line_name, with the rows the core has)."""
    logged = logged[:IDENTITY_CHARS]
    wrapped = wrapper_call(unprintable(logged))
    if wrapped is not None:
        return LineJob(*wrapped)
    comment = NAME_COMMENT.search(logged)
    if comment is not None and is_valid_job_name(comment.group(1)):
        return LineJob(comment.group(1), False)
    return LineJob(None, False)


def first_program(command: str) -> str:
    """The first word of a shell command that is not a VAR=value assignment ("" if none): the
    PROGRAM of the names given before readable names (legacy_name)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: the shell would fail too; words are good enough
        words = command.split()
    for word in words:
        if not ASSIGNMENT.match(word):
            return word
    return ""


def legacy_name(logged: str) -> str:
    """`PROGRAM-CRC`, the name a plain line had before readable names: its row keeps it."""
    logged = logged[:IDENTITY_CHARS]
    program = derive_job_name(first_program(unprintable(logged))) or "cron"
    return f"{program[:PROGRAM_CHARS]}-{crc32(logged.encode()):08x}"


def with_crc(name: str, logged: str) -> str:
    """`name` made unique to its line: cut to 55 characters, `-` and the line's CRC-32."""
    return f"{name[:PROGRAM_CHARS]}-{crc32(logged[:IDENTITY_CHARS].encode()):08x}"


def readable_name(logged: str, crontab: str | None = None) -> str:
    """The readable name of a plain crontab line (before any CRC suffix keeps it apart):

    `run-parts DIR` is DIR's name with dots made dashes (`cron-hourly`); else the first real
    program (commands.first_real_program: shell guards, keywords and delays skipped, a script
    named for itself rather than its interpreter); for a line of nothing but guards, the name
    of the /etc/cron.d file `crontab` holding it, else its first program (`true`, `sleep`);
    else `cron`.
    """
    from .commands import first_program, first_real_program

    command = unprintable(logged[:IDENTITY_CHARS])
    cron_d = os.path.basename(crontab) if crontab and "/cron.d/" in crontab else None
    for word in (first_real_program(command), cron_d, first_program(command)):
        name = derive_job_name(word) if word else None
        if name:
            return name
    return "cron"


def line_name(logged: str, crontab: str | None, holder: Callable[[str], str | None]) -> str:
    """The name of the plain line `logged` (in the file `crontab`, None when not known): a name
    once given stays.

    `holder(name)` says who has a name: None (nobody), the command line of the row holding it,
    or "" for a row whose line is not known (made before rows kept their line). In order: the
    name of the row that holds this line (its legacy name, its readable name or that with the
    CRC); a row of the line's legacy name whose line is unknown, which an older agent named
    so (it keeps its name and gets its line); the readable name, unless another line's or a
    wrapped job's row has it; else the readable name with the line's CRC.
    """
    legacy = legacy_name(logged)
    readable = readable_name(logged, crontab)
    candidates = (legacy, readable, with_crc(readable, logged))
    for name in candidates:
        if holder(name) == logged:
            return name
    if holder(legacy) == "":
        return legacy
    return readable if holder(readable) is None else candidates[2]


def job_name_in(command: str) -> str | None:
    """The job name of the first valid cronwrap invocation in a crontab command."""
    wrapped = wrapper_call(command)
    return None if wrapped is None else wrapped[0]


def wrapper_call(command: str) -> tuple[str, bool, Cadence] | None:
    """(job name, True, duration bounds) of the first valid cronwrap invocation in a crontab
    command; None when there is none.

    The wrapper's own option parser and name rule decide: `-n NAME`, or else the name cronwrap
    derives from the command after `--`.  A bound cronwrap would refuse is left out.
    """
    try:
        words = shlex.split(command.split("%")[0])  # cron feeds the rest to stdin
    except ValueError:
        return None
    for index, word in enumerate(words):
        if os.path.basename(word) == "cronwrap":
            try:
                given, job = parse_options(words[index + 1:])
                names = [str(value) for _, key, value in given if key == "name"]
                name = job_name(names[-1] if names else None, job[0]) if job else None
            except UsageError:
                continue
            return None if name is None else (name, True, _bounds(given))
    return None


def _bounds(given: list[tuple[str, str, str | bool]]) -> Cadence:
    """The duration bounds among a cronwrap invocation's options."""
    seconds: dict[str, float] = {}
    for option, key, value in given:
        if key in ("min_duration", "max_duration"):
            try:
                seconds[key] = parse_duration(str(value), option)
            except UsageError:
                continue
    baseline = False if any(key == "no_duration_baseline" for _, key, _ in given) else None
    return Cadence(duration_baseline=baseline, **seconds)
