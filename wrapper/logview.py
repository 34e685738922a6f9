"""`cronwrap logs JOB [--run N | --list]`: show a job's captured run output or list its runs."""

from __future__ import annotations

import codecs
import errno
import os
import stat
import sys

from cronwrap.wrapper.config import Settings, config_paths, load_config
from cronwrap.wrapper.durations import parse_count
from cronwrap.wrapper.errors import UsageError, WrapperError
from cronwrap.wrapper.events import is_valid_job_name
from cronwrap.wrapper.logs import SHARED_LOG_DIR, default_log_dir, is_log_name

EX_NOINPUT = 66  # no such job, run or log
EX_NOPERM = 77  # the logs exist but the caller may not read them

USAGE = """\
usage: cronwrap logs JOB [--run N | --list] [--raw] [--log-dir DIR] [--user USER]
                        [--config FILE]

Print the output captured from one run of JOB (--run 1, the default, is the newest;
2 the one before), or --list the kept runs with their start time (UTC) and size.

options:
  --run N         the Nth newest run (default 1, the newest)
  --list          list the kept runs with their start time (UTC) and size
  --raw           write the output's bytes as they are even to a terminal (by default a
                  terminal gets control characters escaped, e.g. ESC as \\x1b: a job's
                  output cannot drive your terminal; newlines and tabs stay; a pipe or file
                  always gets the bytes as they are)
  --log-dir DIR   where the logs are (default: where the job's runs write them)
  --user USER     another user's job (root: anyone's; others: where USER shared the job's
                  logs with a group of theirs, --log-group).  Without --log-dir the logs
                  are looked for in the configuration's log_dir if set, else where USER's
                  runs write them: /var/log/cronwrap for root, else
                  ~USER/.local/state/cronwrap (and your own $XDG_STATE_HOME for yourself),
                  then /var/log/cronwrap/users (accounts without a home of their own).
  --config FILE   read the log settings from FILE
  -h, --help      show this help

exit status: 0; 66 no logs for the job, no such run or no such user; 77 the logs exist
but you may not read them; 74 another error reading them; 64 usage error; 78 bad config.
"""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class NotFound(WrapperError):
    """No log directory, run log or run of that number."""

    exit_code = EX_NOINPUT


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(USAGE)
        return 0
    options, job = _parse(argv)
    settings = Settings()
    explicit = options.get("--config")
    load_config(settings, config_paths(explicit, dict(os.environ)), explicit is not None)
    user, uid, home = _whose(options.get("--user"))
    if options.get("--log-dir"):
        places = [options["--log-dir"]]
    else:
        places = [settings.log_dir] if settings.log_dir else []
        places += log_dirs_of(uid, home, own=uid == os.getuid())
    job_dir, dir_fd = _open_job_dir(places, user, uid, job)
    try:
        runs = sorted((n for n in os.listdir(dir_fd) if is_log_name(n)), reverse=True)
        if not runs:
            raise NotFound(f"no logs for job {job!r} of {user} in {job_dir}")
        if "--list" in options:
            _list(dir_fd, runs)
            return 0
        run = parse_count(options.get("--run", "1"), "--run", 1)
        if run > len(runs):
            raise NotFound(f"job {job!r} has {len(runs)} kept run(s) in {job_dir}, not {run}")
        raw = "--raw" in options or not sys.stdout.isatty()
        _copy_out(dir_fd, job_dir, runs[run - 1], raw)
    finally:
        os.close(dir_fd)
    return 0


def log_dirs_of(uid: int, home: str, own: bool) -> list[str]:
    """Where runs of `uid` write their logs by default, most likely first (see logs.py)."""
    if uid == 0:
        return [default_log_dir(0, {})]
    places = [default_log_dir(uid, dict(os.environ))] if own else []
    places.append(os.path.join(home, ".local", "state", "cronwrap"))
    places.append(SHARED_LOG_DIR)  # an account without a home of its own logs there
    return list(dict.fromkeys(places))


def _whose(name: str | None) -> tuple[str, int, str]:
    """(user name, uid, home) of --user, or of the caller."""
    import pwd

    if name is not None and not is_valid_job_name(name):
        raise UsageError(f"invalid user name {name!r}")
    try:
        entry = pwd.getpwuid(os.getuid()) if name is None else pwd.getpwnam(name)
    except KeyError:
        if name is None:
            return str(os.getuid()), os.getuid(), os.path.expanduser("~")
        raise NotFound(f"no user named {name!r}") from None
    return entry.pw_name, entry.pw_uid, entry.pw_dir


class NotTheirs(OSError):
    """A level of PLACE/<user>/<job> another user owns: what is in it is not the user's logs
    (anyone may make the directory named after another user first in a shared log root)."""


def _open_job_dir(places: list[str], user: str, uid: int, job: str) -> tuple[str, int]:
    """The first PLACE/<user>/<job> that exists and belongs to `uid`, and an fd on it (levels
    opened O_NOFOLLOW)."""
    denied = foreign = None
    for place in places:
        path = os.path.join(place, user, job)
        try:
            return path, _open_below(place, (user, job), uid)
        except PermissionError:
            denied = denied or path
        except NotTheirs as exc:
            foreign = foreign or str(exc)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                raise WrapperError(f"cannot read {path}: {exc.strerror}", 74) from None
    if denied is not None:
        raise WrapperError(f"cannot read {denied}: permission denied", EX_NOPERM)
    looked = ", ".join(os.path.join(place, user, job) for place in places)
    mine = f"; {foreign}, not {user}: not their logs" if foreign else ""
    raise NotFound(f"no logs for job {job!r} of {user} (looked in {looked}){mine}")


def _open_below(top: str, names: tuple[str, ...], uid: int) -> int:
    """An fd on TOP/<names...>: levels above the last opened O_PATH (search permission is
    enough: /var/log/cronwrap/users is 1733, a shared job's <user> level 0711), none followed,
    each owned by `uid` (NotTheirs)."""
    fd = os.open(top, _PATH_FLAGS)
    where = top
    for index, name in enumerate(names):
        flags = _DIR_FLAGS if index == len(names) - 1 else _PATH_FLAGS | os.O_NOFOLLOW
        try:
            below = os.open(name, flags, dir_fd=fd)
        finally:
            os.close(fd)
        fd, where = below, os.path.join(where, name)
        owner = os.fstat(fd).st_uid
        if owner != uid:
            os.close(fd)
            raise NotTheirs(f"{where} is owned by uid {owner}")
    return fd


def _list(dir_fd: int, runs: list[str]) -> None:
    for number, name in enumerate(runs, 1):
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        day, clock = f"{name[0:4]}-{name[4:6]}-{name[6:8]}", f"{name[9:11]}:{name[11:13]}"
        started = f"{day} {clock}:{name[13:15]}Z"
        sys.stdout.write(f"{number:4d}  {started}  {info.st_size:>12d}  {name}\n")


def _parse(argv: list[str]) -> tuple[dict[str, str], str]:
    options: dict[str, str] = {}
    positional: list[str] = []
    words = iter(argv)
    for word in words:
        if word in ("--list", "--raw"):
            options[word] = ""
        elif word in ("--run", "--log-dir", "--user", "--config"):
            value = next(words, None)
            if value is None:
                raise UsageError(f"option {word} needs a value")
            options[word] = value
        elif word.startswith("-"):
            raise UsageError(f"unknown option {word!r} (see cronwrap logs --help)")
        else:
            positional.append(word)
    if len(positional) != 1:
        raise UsageError("give exactly one job name: cronwrap logs JOB [--run N | --list]")
    if "--list" in options and "--run" in options:
        raise UsageError("--run and --list do not go together")
    if not is_valid_job_name(positional[0]):
        raise UsageError(f"invalid job name {positional[0]!r}")
    return options, positional[0]


def _copy_out(dir_fd: int, job_dir: str, name: str, raw: bool) -> None:
    try:
        # O_NONBLOCK: the owner of the directory may have put a FIFO there; never wait on it
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except PermissionError:
        raise WrapperError(f"cannot read {job_dir}/{name}: permission denied", EX_NOPERM) from None
    except OSError as exc:
        raise NotFound(f"cannot open {job_dir}/{name}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WrapperError(f"cannot read {job_dir}/{name}: not a regular file", 74)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(65536):
            sys.stdout.buffer.write(chunk if raw else for_terminal(decoder.decode(chunk)))
    if not raw:
        sys.stdout.buffer.write(for_terminal(decoder.decode(b"", final=True)))
    sys.stdout.buffer.flush()


def for_terminal(text: str) -> bytes:
    """Output decoded with surrogateescape, as UTF-8 with every character a terminal would act
    on escaped: C0 and C1 controls and DEL as \\xHH (newline and tab kept), bytes that are not
    UTF-8 as \\xHH too (the docs/protocol.md form)."""
    if text.isprintable():
        return text.encode()
    return "".join(_for_terminal(char) for char in text).encode()


def _for_terminal(char: str) -> str:
    if char.isprintable() or char in "\n\t":
        return char
    if char == "\r":
        return "\\r"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
