"""`cronwrap logs JOB [--run N | --list]`: show a job's captured run output or list its runs."""

from __future__ import annotations

import os
import sys

from cronwrap.wrapper.config import Settings, config_paths, load_config, user_name
from cronwrap.wrapper.durations import parse_count
from cronwrap.wrapper.errors import UsageError
from cronwrap.wrapper.events import is_valid_job_name
from cronwrap.wrapper.logs import default_log_dir, is_log_name

USAGE = """\
usage: cronwrap logs JOB [--run N | --list] [--log-dir DIR] [--user USER] [--config FILE]

Print the output captured from one run of JOB (--run 1, the default, is the newest;
2 the one before), or --list the kept runs with their start time (UTC) and size.
"""


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(USAGE)
        return 0
    options, job = _parse(argv)
    settings = Settings()
    explicit = options.get("--config")
    load_config(settings, config_paths(explicit, dict(os.environ)), explicit is not None)
    uid = os.getuid()
    log_dir = options.get("--log-dir") or settings.log_dir or default_log_dir(uid, os.environ)
    user = options.get("--user") or user_name(uid)
    if not is_valid_job_name(user):
        raise UsageError(f"invalid user name {user!r}")
    job_dir = os.path.join(log_dir, user, job)
    runs = _runs(job_dir)
    if "--list" in options:
        for number, name in enumerate(runs, 1):
            info = os.stat(os.path.join(job_dir, name), follow_symlinks=False)
            day, clock = f"{name[0:4]}-{name[4:6]}-{name[6:8]}", f"{name[9:11]}:{name[11:13]}"
            started = f"{day} {clock}:{name[13:15]}Z"
            sys.stdout.write(f"{number:4d}  {started}  {info.st_size:>12d}  {name}\n")
        return 0
    run = parse_count(options.get("--run", "1"), "--run", 1)
    if run > len(runs):
        raise UsageError(f"job {job!r} has {len(runs)} kept run(s) in {job_dir}, not {run}")
    _copy_out(os.path.join(job_dir, runs[run - 1]))
    return 0


def _parse(argv: list[str]) -> tuple[dict[str, str], str]:
    options: dict[str, str] = {}
    positional: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--list":
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


def _runs(job_dir: str) -> list[str]:
    """The job's run log names, newest first."""
    try:
        names = os.listdir(job_dir)
    except FileNotFoundError:
        raise UsageError(f"no logs for this job in {job_dir}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {job_dir}: {exc.strerror}") from None
    return sorted((n for n in names if is_log_name(n)), reverse=True)


def _copy_out(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(65536):
            sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


