"""`cronwrap status`: asks the agent about the caller's jobs; prints a table, JSON or Nagios."""

from __future__ import annotations

import argparse
import json
import os
import re
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
# failed, timedOut and missed runs and lost wrappers need someone; overlapped and overrunning
# runs may sort themselves out; ok, running, unknown (never ran yet), paused (on purpose) and
# retired (no crontab line runs it any more) are fine; a run that succeeded in a suspicious time
# (durationAnomaly) needs a look; a start missed while the cron daemon was down (cronNotRunning)
# is a missed one.
NAGIOS_SEVERITY = {"failed": 2, "timedOut": 2, "missed": 2, "wrapperLost": 2, "overrunning": 1,
                   "overlapped": 1, "durationAnomaly": 1, "cronNotRunning": 2}
# NRPE before 4.0 carries 1,024 bytes of plugin output, its terminating NUL included; 4.x
# carries 64 KiB.  The --nagios line stays within the smaller, newline not counted.
NAGIOS_MAX_BYTES = 1000
COLUMNS = ("OWNER", "NAME", "STATE", "LAST RUN", "EXIT", "DURATION", "CPU", "MAXRSS", "RUNS",
           "FAILED", "TIMEOUTS", "OVERLAPS", "MISSES", "NEXT EXPECTED")
NUMERIC_COLUMNS = frozenset(range(6, 13))

EPILOG = """\
Who sees what: each user their own jobs; root and members of the agent's status_group
([agent] status_group in /etc/cronwrap/agent.toml, e.g. "nagios") every user's jobs.
FAILED counts every failed run, timed-out ones included; TIMEOUTS those that timed out;
OVERLAPS runs skipped because the previous one still ran; MISSES expected starts that did
not happen.  CPU is the last run's CPU time (user + system, all its processes); MAXRSS the
peak memory of its largest single process.  Times are the local time of this host.

examples:
  cronwrap status                 all the jobs you may see, as a table
  cronwrap status backup --json   jobs named backup, as the agent's JSON (its fields:
                                  /usr/share/doc/cronwrap/docs/agent.md)
  cronwrap status root/backup     root's job backup only (OWNER/NAME); for jobs named, also
                                  the crontab line each was last seen on
  cronwrap status backup --history  its last runs: start, duration, exit status, signal,
                                  result and LATE (the agent learnt of it from the spool)
  cronwrap status --nagios        a Nagios/Icinga check: exit 0 OK, 1 WARNING, 2 CRITICAL,
                                  3 UNKNOWN (agent unreachable, a named job not visible, or
                                  no jobs visible at all); one line of at most 1000 bytes
The socket is --socket, else $CRONWRAP_SOCKET, else /run/cronwrap/agent.sock.
exit status (without --nagios): 0; 1 a named job is not visible; 69 the agent cannot be
reached; 64 usage error.
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
    p.add_argument("jobs", nargs="*", metavar="JOB",
                   help="only these jobs, as NAME or OWNER/NAME (default: all)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print the agent's JSON list")
    mode.add_argument("--nagios", action="store_true",
                      help="one Nagios plugin status line with perfdata; exit 0/1/2/3")
    mode.add_argument("--history", action="store_true",
                      help="each job's last finished runs (as many as the agent keeps: "
                           "[agent] run_history, 5 by default)")
    p.add_argument("--socket", metavar="PATH",
                   default=os.environ.get("CRONWRAP_SOCKET") or DEFAULT_SOCKET,
                   help="the agent's event socket")
    args = p.parse_args(argv)
    specs = [JobSpec.parse(text) for text in args.jobs]
    for text, spec in zip(args.jobs, specs, strict=True):
        if spec is None:
            p.error(f"invalid job {text!r}: give NAME or OWNER/NAME")
    args.jobs = specs
    return args


class JobSpec:
    """A job named on the command line: NAME (any owner's) or OWNER/NAME (user name or uid)."""

    def __init__(self, text: str, owner: str | None, name: str) -> None:
        self.text = text
        self.owner = owner
        self.name = name

    @classmethod
    def parse(cls, text: str) -> JobSpec | None:
        owner, slash, name = text.rpartition("/")
        if not is_valid_job_name(name) or (slash and not _OWNER.fullmatch(owner)):
            return None
        return cls(text, owner if slash else None, name)

    def matches(self, job: dict[str, Any]) -> bool:
        return job["name"] == self.name and self.owner in (
            None, job["owner"], str(job["owner_uid"]))


_OWNER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")


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
    if obj.get("spool_backlog"):
        print(f"cronwrap status: the agent is catching up: {obj['spool_backlog']} spooled events "
              "are still to be applied, so counts may lag", file=sys.stderr)
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


def cpu_time(ms: int | None) -> str:
    """A CPU time as `12ms` below a second, else as a duration."""
    if ms is None or ms >= 1000:
        return duration(ms)
    return f"{ms}ms"


def memory(kib: int | None) -> str:
    """A peak RSS in KiB as `812K` or `70.7M` (binary units)."""
    if kib is None:
        return "-"
    return f"{kib}K" if kib < 1024 else f"{kib / 1024:.1f}M"


def exit_text(job: dict[str, Any]) -> str:
    """The last exit status as cronJobLastExitStatus has it, with cronJobLastSignal when a
    signal ended the run: `143 (sig 15)`, a timeout `124 (sig 15)`."""
    if job["last_exit_status"] is None:
        return "-"
    signal = f" (sig {job['last_signal']})" if job["last_signal"] else ""
    return f"{job['last_exit_status']}{signal}"


def table(jobs: list[dict[str, Any]], now: float) -> str:
    rows = [COLUMNS] + [(
        job["owner"], job["name"], job["state"], when(job["last_start"], now), exit_text(job),
        duration(job["last_duration_ms"]), cpu_time(job.get("last_cpu_ms")),
        memory(job.get("last_max_rss_kib")), str(job["runs"]), str(job["failures"]),
        str(job["timeouts"]), str(job["overlaps"]), str(job["misses"]),
        when(job["next_expected"], now),
    ) for job in jobs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(w) if i in NUMERIC_COLUMNS else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                               ).rstrip()
                     for row in rows)


HISTORY_COLUMNS = ("RUN", "STARTED", "DURATION", "CPU", "MAXRSS", "EXIT", "SIGNAL", "RESULT",
                   "LATE")
HISTORY_NUMERIC = frozenset({0, 2, 3, 4, 5, 6})


def history(job: dict[str, Any], now: float) -> str:
    """A job's last finished runs as a table, oldest first, under an OWNER/NAME heading."""
    runs = job.get("history") or []
    heading = f"{job['owner']}/{job['name']}: "
    if not runs:
        return heading + "no finished runs kept"
    rows = [HISTORY_COLUMNS] + [(
        str(run["number"]), when(run["start"], now), duration(run["duration_ms"]),
        cpu_time(run.get("cpu_ms")), memory(run.get("max_rss_kib")), str(run["exit_status"]),
        str(run["signal"]) if run["signal"] else "-", run["result"],
        "late" if run["late"] else "",
    ) for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HISTORY_COLUMNS))]
    lines = ["  ".join(cell.rjust(w) if i in HISTORY_NUMERIC else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    return heading + f"last {len(runs)} finished runs\n" + "\n".join(lines)


def notes(jobs: list[dict[str, Any]], now: float, named: bool = False) -> list[str]:
    """Lines under the table for what its columns cannot say: pauses, runs that could not log,
    starts missed while cron was down, lines gone from their crontab, and for jobs asked for by
    name the crontab line each was last seen on."""
    lines = []
    for job in jobs:
        who = f"{job['owner']}/{job['name']}"
        if named and job.get("command_line"):
            lines.append(f"{who}: crontab line: {printable(job['command_line'])}")
        if job.get("paused_until") is not None:
            lines.append(f"{who}: paused until {when(job['paused_until'], now)} "
                         "(no notifications, no missed starts; cronwrap resume ends it)")
        if job.get("log_problem"):
            lines.append(f"{who}: its last run could not write its log: "
                         f"{printable(job['log_problem'])}")
        if job.get("last_result") == "durationAnomaly":
            lines.append(f"{who}: {anomaly_note(job)}")
        if job.get("last_result") == "cronNotRunning":
            lines.append(f"{who}: missed while the cron daemon was not running (cron does not "
                         "run it afterwards; the agent's cronDaemonNotRunning stands for it)")
        if job.get("line_gone"):
            lines.append(f"{who}: {printable(job['line_gone'])}: still expected on its "
                         "schedule until it retires (cronwrap forget ends it now)")
    return lines


def anomaly_note(job: dict[str, Any]) -> str:
    """What a run that succeeded in a suspicious time looked like beside the job's others."""
    stats = job.get("durations") or {}
    low = duration(stats.get("low_ms")) if stats.get("low_ms") is not None else "no minimum"
    high = duration(stats.get("high_ms")) if stats.get("high_ms") is not None else "no maximum"
    usual = (f", median {duration(stats['median_ms'])} over its last {stats['runs']} successful "
             "runs" if stats.get("runs") else "")
    return (f"its last run succeeded in {duration(job['last_duration_ms'])}: a duration "
            f"anomaly (its bounds now: {low} to {high}{usual})")


def printable(text: str) -> str:
    """`text` as one line with control characters escaped: a job's owner wrote it, and it must
    not move the cursor, retitle or clear the terminal of whoever reads the status."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def viewer() -> str:
    """Who is asking, for messages: the login name of the real uid, or the uid."""
    import pwd

    uid = os.getuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def nagios(jobs: list[dict[str, Any]], wanted: list[JobSpec], who: str) -> tuple[int, str]:
    """The plugin status (0..3) and its output line, per the Nagios plugin guidelines.

    UNKNOWN when a named job is not among `jobs` or when there are no jobs at all: a check
    that sees nothing must not say OK.  The line is at most NAGIOS_MAX_BYTES long.
    """
    missing = missing_specs(jobs, wanted)
    problems = [(NAGIOS_SEVERITY[job["state"]], f"{job['owner']}/{job['name']} {job['state']}")
                for job in jobs if job["state"] in NAGIOS_SEVERITY]
    status = max([NAGIOS_OK] + [severity for severity, _ in problems])
    if missing or not jobs:
        status = NAGIOS_UNKNOWN
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    perf = [f"jobs={len(jobs)};;;0"] + [
        f"{state}={counts.get(state, 0)};;;0"
        for state in ("ok", "failed", "running", "overlapped", "timedOut", "missed",
                      "overrunning", "unknown", "paused", "retired", "wrapperLost",
                      "durationAnomaly")]
    per_job = [f"'{job['owner']}/{job['name']} duration'={job['last_duration_ms'] / 1000:.3f}s;;;0"
               for job in jobs if wanted and job["last_duration_ms"] is not None]
    details = [text for _, text in sorted(problems, key=lambda item: -item[0])]
    if missing:
        lead = f"unknown job {', '.join(missing)} (not known to the agent, or not visible to {who})"
        details = []
    elif not jobs:
        lead = (f"no jobs visible to {who}: none has reported yet, or {who.split()[0]} is not in "
                "the agent's status_group")
    elif problems:
        lead = f"{len(problems)} of {len(jobs)} jobs need attention: "
    else:
        lead = f"{len(jobs)} jobs fine"
    return status, fit_line(f"CRONWRAP {NAGIOS_LABELS[status]} - {lead}", details, perf, per_job)


def fit_line(lead: str, details: list[str], perf: list[str], per_job: list[str],
             limit: int = NAGIOS_MAX_BYTES) -> str:
    """`lead`, as many `details` and then `per_job` perfdata as fit in `limit` bytes.

    The aggregate `perf` is always kept whole; what is left out is counted ("and 3 more"),
    never cut in the middle of a job's name or a perfdata item.
    """
    def line(shown: int, extra: int) -> str:
        hidden = len(details) - shown
        summary = lead + ", ".join(details[:shown])
        if hidden:
            summary += f"{', ' if shown else ''}and {hidden} more"
        perfdata = " ".join(perf + per_job[:extra])
        return f"{summary} | {perfdata}" if perfdata else summary

    def fits(text: str) -> bool:
        return len(text.encode()) <= limit

    shown = 0
    while shown < len(details) and fits(line(shown + 1, 0)):
        shown += 1
    extra = 0
    while extra < len(per_job) and fits(line(shown, extra + 1)):
        extra += 1
    text = line(shown, extra)
    return text if fits(text) else text.encode()[:limit].decode(errors="ignore")


def missing_specs(jobs: list[dict[str, Any]], wanted: list[JobSpec]) -> list[str]:
    """The named jobs (as typed) that none of `jobs` matches."""
    return sorted(spec.text for spec in wanted if not any(spec.matches(job) for job in jobs))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        jobs = query(args.socket, sorted({spec.name for spec in args.jobs}))
    except StatusError as exc:
        if args.nagios:
            print(fit_line(f"CRONWRAP UNKNOWN - {exc}", [], [], []))
            return NAGIOS_UNKNOWN
        print(f"cronwrap status: {exc}", file=sys.stderr)
        return 69
    if args.jobs:
        jobs = [job for job in jobs if any(spec.matches(job) for spec in args.jobs)]
    if args.nagios:
        status, line = nagios(jobs, args.jobs, viewer())
        print(line)
        return status
    if args.json:
        print(json.dumps(jobs, indent=2))
    elif args.history and jobs:
        print("\n\n".join(history(job, time.time()) for job in jobs))
    elif jobs:
        print(table(jobs, time.time()))
        for line in notes(jobs, time.time(), named=bool(args.jobs)):
            print(line)
    else:
        print("no jobs known" + (" by those names" if args.jobs else ""))
    missing = missing_specs(jobs, args.jobs)
    if missing:
        print(f"cronwrap status: no job named {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
