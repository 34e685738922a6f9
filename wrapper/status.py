"""`cronwrap status`: asks the agent about the caller's jobs; prints a table, JSON or Nagios."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any, NoReturn

from .events import StatusRequest, is_valid_job_name

DEFAULT_SOCKET = "/run/cronwrap/agent.sock"
MAX_REPLY_BYTES = 64 * 1024 * 1024
TIMEOUT = 10.0

NAGIOS_OK, NAGIOS_WARNING, NAGIOS_CRITICAL, NAGIOS_UNKNOWN = 0, 1, 2, 3
NAGIOS_LABELS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# failed, timedOut and missed runs need someone; overlapped and overrunning runs may sort
# themselves out; ok, running and unknown (never ran yet) are fine.
NAGIOS_SEVERITY = {"failed": 2, "timedOut": 2, "missed": 2, "overrunning": 1, "overlapped": 1}
COLUMNS = ("OWNER", "NAME", "STATE", "LAST RUN", "EXIT", "DURATION", "RUNS/FAIL/OVERLAP",
           "NEXT EXPECTED")

EPILOG = """\
examples:
  cronwrap status                 all your jobs (root: everyone's) as a table
  cronwrap status backup --json   one job, as the agent's JSON (see docs/agent.md)
  cronwrap status --nagios        a Nagios/Icinga check: exit 0 OK, 1 WARNING, 2 CRITICAL,
                                  3 UNKNOWN (agent unreachable, or a named job not known)
The socket is --socket, else $CRONWRAP_SOCKET, else /run/cronwrap/agent.sock.
"""


class StatusError(Exception):
    """The agent could not be asked, or answered with an error; str() is one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(64, f"{self.prog}: {message} (see --help)\n")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="cronwrap status", epilog=EPILOG,
               description="Show what the cronwrap agent knows about your cron jobs.",
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", nargs="*", metavar="JOB", help="only these jobs (default: all)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print the agent's JSON list")
    mode.add_argument("--nagios", action="store_true",
                      help="one Nagios plugin status line with perfdata; exit 0/1/2/3")
    p.add_argument("--socket", metavar="PATH",
                   default=os.environ.get("CRONWRAP_SOCKET") or DEFAULT_SOCKET,
                   help="the agent's event socket")
    args = p.parse_args(argv)
    for name in args.jobs:
        if not is_valid_job_name(name):
            p.error(f"invalid job name {name!r}")
    return args


def query(path: str, jobs: list[str]) -> list[dict[str, Any]]:
    """Send one StatusRequest and return the jobs of the reply."""
    try:
        request = StatusRequest(jobs=tuple(jobs)).to_wire()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall(request)
            reply = sock.makefile("rb").readline(MAX_REPLY_BYTES)
    except OSError as exc:
        raise StatusError(f"cannot reach the agent at {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise StatusError(str(exc)) from None
    try:
        obj = json.loads(reply)
    except ValueError:
        raise StatusError(f"the agent at {path} sent an unreadable reply") from None
    if not isinstance(obj, dict) or not obj.get("ok") or not isinstance(obj.get("jobs"), list):
        problem = obj.get("error") if isinstance(obj, dict) else None
        raise StatusError(f"the agent refused: {problem or 'unexpected reply'}")
    if obj.get("truncated"):
        print(f"cronwrap status: the agent left out {obj['truncated']} jobs to keep its reply "
              "small; name the jobs you want", file=sys.stderr)
    return obj["jobs"]


def when(seconds: float | None, now: float) -> str:
    if seconds is None:
        return "-"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
    return stamp if abs(now - seconds) > 1 else stamp + " (now)"


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def exit_text(job: dict[str, Any]) -> str:
    if job["last_signal"]:
        return f"sig {job['last_signal']}"
    return "-" if job["last_exit_status"] is None else str(job["last_exit_status"])


def table(jobs: list[dict[str, Any]], now: float) -> str:
    rows = [COLUMNS] + [(
        job["owner"], job["name"], job["state"], when(job["last_start"], now), exit_text(job),
        duration(job["last_duration_ms"]),
        f"{job['runs']}/{job['failures']}/{job['overlaps']}", when(job["next_expected"], now),
    ) for job in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def nagios(jobs: list[dict[str, Any]], wanted: list[str]) -> tuple[int, str]:
    """The plugin status (0..3) and its output line, per the Nagios plugin guidelines."""
    missing = sorted(set(wanted) - {job["name"] for job in jobs})
    problems = [(NAGIOS_SEVERITY[job["state"]], f"{job['owner']}/{job['name']} {job['state']}")
                for job in jobs if job["state"] in NAGIOS_SEVERITY]
    status = max([NAGIOS_OK] + [severity for severity, _ in problems])
    if missing:
        status = NAGIOS_UNKNOWN
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    perf = [f"jobs={len(jobs)};;;0"] + [
        f"{state}={counts.get(state, 0)};;;0"
        for state in ("ok", "failed", "running", "overlapped", "timedOut", "missed",
                      "overrunning", "unknown")]
    perf += [f"'{job['name']}_duration'={job['last_duration_ms'] / 1000:.3f}s;;;0"
             for job in jobs if wanted and job["last_duration_ms"] is not None]
    if missing:
        summary = "unknown job " + ", ".join(missing)
    elif problems:
        summary = f"{len(problems)} of {len(jobs)} jobs need attention: " + ", ".join(
            text for _, text in sorted(problems, reverse=True))
    else:
        summary = f"{len(jobs)} jobs fine"
    return status, f"CRONWRAP {NAGIOS_LABELS[status]} - {summary} | {' '.join(perf)}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        jobs = query(args.socket, args.jobs)
    except StatusError as exc:
        if args.nagios:
            print(f"CRONWRAP UNKNOWN - {exc}")
            return NAGIOS_UNKNOWN
        print(f"cronwrap status: {exc}", file=sys.stderr)
        return 69
    if args.nagios:
        status, line = nagios(jobs, args.jobs)
        print(line)
        return status
    if args.json:
        print(json.dumps(jobs, indent=2))
    elif jobs:
        print(table(jobs, time.time()))
    else:
        print("no jobs known" + (" by those names" if args.jobs else ""))
    missing = set(args.jobs) - {job["name"] for job in jobs}
    if missing:
        print(f"cronwrap status: no job named {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
