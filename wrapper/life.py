"""`cronwrap forget`, `pause` and `resume`: ask the agent to change one job's life."""

from __future__ import annotations

import argparse
import json
import os
import pwd
import socket
import sys
import time
from typing import Any, NoReturn

from .durations import parse_duration
from .errors import UsageError
from .events import is_valid_job_name
from .life_messages import ForgetRequest, LifeRequest, PauseRequest, ResumeRequest

DEFAULT_SOCKET = "/run/cronwrap/agent.sock"
TIMEOUT = 10.0
MAX_REPLY_BYTES = 1024 * 1024

EX_NOT_FOUND = 1  # as `cronwrap status` for a job it does not know
EX_USAGE = 64
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_NOPERM = 77
EXIT_FOR_REASON = {"not-found": EX_NOT_FOUND, "denied": EX_NOPERM, "unavailable": EX_TEMPFAIL}

WHAT = {
    "forget": "Remove a job's row and counts from the agent (and from CRON-JOBS-MIB).",
    "pause": "Silence a job for a while: no notifications and no missed starts until the "
             "pause ends; its runs are still counted.",
    "resume": "End a job's pause now.",
}

EPILOG = """\
JOB is the job's name (cronwrap -n NAME).  Your own jobs; root may name another user's
with --user (a user name or uid).  The agent decides who asks from the kernel (SO_PEERCRED):
a user asking about another user's job is refused.

forget: the row and its counts are gone at once; events of runs that started before it (a
run still going, a spooled event) are ignored when they arrive; a later run of the same name
starts a new row from zero; a job still in a crontab comes back (from zero, not run yet) at the
agent's next crontab scan, so remove the line first.
pause --for DURATION (90s, 15m, 2h, 1d, up to 10 years): the job's state reads `paused` until
then, also after an agent restart; it then goes back to what its runs left.
Jobs whose crontab line is gone and that stopped running are retired by the agent by itself
(state `retired`, see /usr/share/doc/cronwrap/docs/agent.md); a new run brings them back.

examples:
  cronwrap pause backup --for 2h       maintenance: no pages from backup for two hours
  cronwrap resume backup               done early
  cronwrap forget old-report           a job that will never run again
  cronwrap forget report --user alice  root, for alice's job

exit status: 0 done; 1 no such job; 64 usage error; 67 no such user; 69 the agent cannot be
reached; 75 the agent cannot store the change now (try again); 77 not your job.
The socket is --socket, else $CRONWRAP_SOCKET, else /run/cronwrap/agent.sock.
"""


class LifeError(Exception):
    """The request could not be made or was refused; str() is one line, `status` the exit."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see --help)\n")


def parse_args(command: str, argv: list[str]) -> argparse.Namespace:
    p = Parser(prog=f"cronwrap {command}", description=WHAT[command], epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("job", metavar="JOB", help="the job's name")
    if command == "pause":
        p.add_argument("--for", dest="duration", metavar="DURATION", required=True,
                       help="how long, e.g. 2h (a pause always ends)")
    p.add_argument("--user", metavar="USER", help="the job's owner, a user name or uid "
                   "(default: you; another user's job needs root)")
    p.add_argument("--socket", metavar="PATH",
                   default=os.environ.get("CRONWRAP_SOCKET") or DEFAULT_SOCKET,
                   help="the agent's event socket")
    args = p.parse_args(argv)
    if not is_valid_job_name(args.job):
        p.error(f"invalid job name {args.job!r}")
    if command == "pause":
        try:
            args.seconds = parse_duration(args.duration, "--for")
        except UsageError as exc:
            p.error(str(exc))
        if args.seconds < 1:
            p.error(f"--for: {args.duration!r} is shorter than a second")
    return args


def owner_uid(user: str | None) -> int | None:
    """The uid --user names (digits: that uid, known or not); None without --user."""
    if user is None:
        return None
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise LifeError(f"no user named {user!r}", EX_NOUSER) from None


def ask(path: str, request: LifeRequest) -> dict[str, Any]:
    """Send one request, return the agent's reply; LifeError when it failed or was refused."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(request.to_wire())
            reply = sock.makefile("rb").readline(MAX_REPLY_BYTES)
    except OSError as exc:
        raise LifeError(f"cannot reach the agent at {path}: {exc.strerror or exc}",
                        EX_UNAVAILABLE) from None
    try:
        answer = json.loads(reply)
    except ValueError:
        raise LifeError(f"the agent at {path} sent an unreadable reply", EX_UNAVAILABLE) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise LifeError(f"the agent at {path} sent an unexpected reply", EX_UNAVAILABLE)
    if not answer["ok"]:
        status = EXIT_FOR_REASON.get(answer.get("reason"), EX_UNAVAILABLE)
        raise LifeError(str(answer.get("error", "refused"))[:500], status)
    return answer


def local_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(seconds))


def said(command: str, answer: dict[str, Any]) -> str:
    """What to print after the agent did it."""
    if command == "forget":
        job = answer["forgotten"]
        return (f"forgot job {job['name']} of {job['owner']}: {job['runs']} runs, "
                f"{job['failures']} failures, {job['misses']} misses dropped; a later run of "
                f"{job['name']} starts a new row")
    job = answer["job"]
    if command == "pause":
        return (f"paused job {job['name']} of {job['owner']} until "
                f"{local_time(job['paused_until'])}: no notifications and no missed starts "
                "until then; its runs are still counted")
    if not answer.get("was_paused"):
        return f"job {job['name']} of {job['owner']} was not paused"
    return f"resumed job {job['name']} of {job['owner']}: state {job['state']}"


def main(command: str, argv: list[str]) -> int:
    args = parse_args(command, argv)
    try:
        uid = owner_uid(args.user)
        request: LifeRequest
        if command == "forget":
            request = ForgetRequest(args.job, uid)
        elif command == "pause":
            request = PauseRequest(args.job, uid, args.seconds)
        else:
            request = ResumeRequest(args.job, uid)
        answer = ask(args.socket, request)
    except LifeError as exc:
        print(f"cronwrap {command}: {exc}", file=sys.stderr)
        return exc.status
    print(said(command, answer))
    return 0
