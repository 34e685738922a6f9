"""cron's own log as a source of runs: Debian cron's job lines in the journal, applied to rows.

Debian's cron (3.0pl1, do_command.c) started with `-L 15` logs, for every job of every crontab,
from the root process that watches the job, under SYSLOG_IDENTIFIER=CRON:

    (root) CMD ([29827] /usr/local/bin/backup)                  the job's shell, pid 29827, started
    (CRON) error (grandchild #29827 failed with exit status 3)   only when the status is not 0
    (CRON) error (grandchild #29827 terminated by signal 15)     killed; ", dumped core" may follow
    (CRON) info (No MTA installed, discarding output)           the job printed; no MTA
    (root) MAIL (mailed 12 bytes of output but got status 0x0001 from MTA)   the MTA failed
    (root) END ([29827] /usr/local/bin/backup)                   the shell has ended

The MTA lines name no job: each is tied to the run whose CMD the same process logged (the
journal's _PID of both lines is the process watching that run), and counts its output as
discarded.

The daemon's own lines (SYSLOG_IDENTIFIER=cron) about a crontab it refuses (cronrefusals.py)
hold that crontab's lines in ignoredByCron (LineRefused), and are kept for discovery.

What was seen on a real cron (tests/data/debian-cron-L15.jsonl) and what the agent does:
- a job killed by a signal gets the `terminated by signal N` line: a failed run with
  cronJobLastSignal N and cronJobLastExitStatus 128+N, as for a wrapped job (a shell that
  reports its child's death itself exits 128+N: `failed with exit status 143`);
- a job running when cron is restarted keeps running (cron.service has KillMode=process) and
  the process that watched it still logs its error and END lines: the run ends normally;
- a job cut by a reboot never gets an END: the first line of another boot (or the agent
  starting in another boot, as the journal tells it) ends the wait; a line that is not wrapped
  has no outcome (RunCut), a wrapped one has its wrapper's;
- `@reboot` lines run when cron starts at boot (`(CRON) INFO (Running @reboot jobs)`, not on a
  mere restart) and log CMD and END like any job: counted as runs, never expected (no schedule);
- with cron's default `-L 1`, lines are `(root) CMD (/usr/local/bin/backup)` without a pid and
  nothing else: each start is noted (last start, next expected start, so misses are seen), the
  outcome stays unknown, and the agent says once that `-L 15` tells more.

A line that runs cronwrap is the wrapper's job: its events stay the truth and cron's lines add
only what the wrapper cannot say, that it never started (status 126 or 127 and no event from
the wrapper for that run, checked once a spool drain has had time to bring a spooled one).

Only entries logged by root (_UID=0) are read: any user can write "CRON" lines to the journal;
a run's error and END lines count only from the process that logged its CMD (_PID, journald's).
The place in the journal, runs still open and verdicts still pending are this source's state,
committed with the rows each batch of lines changed, so a restart neither loses nor repeats one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cronwrap.wrapper.events import Finished, Started

from ..config import Config
from ..core import AgentCore, Rejected, RowRefused, Txn, Unavailable
from ..lifeevents import (
    LifeEvent,
    LineRefused,
    OutputDiscarded,
    RunCut,
    RunReported,
    StartLogged,
    WrapperNotStarted,
)
from ..linenames import IDENTITY_CHARS, line_job
from ..model import CronLogState, JobKey, JobSource
from ..owners import uid_of
from ..ratelimit import RateLimitedLog
from .cronlines import CronLine, JobFailed, JobStarted, OutputLost, parse
from .cronrefusals import CrontabRefused, SyntaxProblem, parse_refusal, reason, unchanged_since
from .journal import Entry, JournalReader, JournalUnavailable, Place

log = logging.getLogger(__name__)

NAME = "cronlog"  # this source's name in the state database
# the jobs' lines (CRON) and the daemon's own (cron: the crontabs it refuses), logged by root
MATCHES = (("SYSLOG_IDENTIFIER", "CRON"), ("SYSLOG_IDENTIFIER", "cron"), ("_UID", "0"))
READ_LIMIT = 1000  # entries applied in one batch
COALESCE_SECONDS = 1.0  # after the journal changed, wait this long for more before reading
NOT_STARTED_STATUSES = {126: "cannot be executed", 127: "was not found"}

# ---- this source's durable state -------------------------------------------------------------


@dataclass
class OpenRun:
    """A job cron started (CMD) whose END has not been read yet."""

    uid: int
    owner: str
    name: str
    wrapped: bool
    start: float
    status: int = 0
    signal: int = 0
    command_line: str | None = None  # a plain line's command as cron logs it
    watcher: int = 0  # the pid of cron's process that logged its start (its MTA line's too)


@dataclass
class Verdict:
    """A wrapped line whose shell exited 126 or 127: did the wrapper start? Decided at `due`."""

    uid: int
    owner: str
    name: str
    start: float
    end: float
    status: int
    due: float


@dataclass
class SourceState:
    """Where reading resumes, what is still open, and whether cron is seen logging starts."""

    place: Place
    boot: str = ""  # the boot of the last entry applied
    open_runs: dict[str, OpenRun] = field(default_factory=dict)  # by "boot:pid"
    verdicts: list[Verdict] = field(default_factory=list)
    starts_seen: bool = False  # cron logs job starts: crontab lines are expected to run
    # crontab (as discovery names it) -> (why, when cron's log said it refuses it): the last
    # refusal of each crontab, which discovery applies while the file has not changed since
    refused: dict[str, tuple[str, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "place": self.place.to_dict(), "boot": self.boot, "starts_seen": self.starts_seen,
            "open_runs": {k: asdict(v) for k, v in self.open_runs.items()},
            "verdicts": [asdict(v) for v in self.verdicts],
            "refused": self.refused,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SourceState:
        data = json.loads(text)
        return cls(Place.from_dict(data["place"]), data.get("boot", ""),
                   {k: OpenRun(**v) for k, v in data.get("open_runs", {}).items()},
                   [Verdict(**v) for v in data.get("verdicts", [])],
                   bool(data.get("starts_seen")),
                   {crontab: (str(why), float(when))
                    for crontab, (why, when) in data.get("refused", {}).items()})

    def copy(self) -> SourceState:
        return SourceState.from_json(self.to_json())

    def __post_init__(self) -> None:
        # each owner's open runs, oldest first: which owner holds the most, and its oldest
        self._by_owner: dict[int, dict[str, None]] = {}
        for run_id, run in self.open_runs.items():
            self._by_owner.setdefault(run.uid, {})[run_id] = None

    def owner_runs(self, uid: int) -> int:
        """How many runs of `uid` are open."""
        return len(self._by_owner.get(uid, ()))

    def add_run(self, run_id: str, run: OpenRun) -> None:
        self.end_run(run_id)  # a pid cron reused without an END read: the new run is open
        self.open_runs[run_id] = run
        self._by_owner.setdefault(run.uid, {})[run_id] = None

    def watched(self, run_id: str, watcher: int) -> OpenRun | None:
        """The open run `run_id` if cron's process `watcher` logged its start (0: unknown): a
        reused pid's lines from the process that watched its earlier run are not this run's."""
        run = self.open_runs.get(run_id)
        return run if run is None or watcher == run.watcher or 0 in (watcher, run.watcher) else None

    def end_run(self, run_id: str) -> OpenRun | None:
        """The open run `run_id`, no longer open; None when it is not."""
        return self._remove(run_id) if run_id in self.open_runs else None

    def push_out(self, uid: int | None = None) -> OpenRun:
        """Forget the first read of the open runs of `uid`, or of the owner holding the most."""
        if uid is None:
            uid = max(self._by_owner, key=lambda owner: len(self._by_owner[owner]))
        return self._remove(next(iter(self._by_owner[uid])))

    def _remove(self, run_id: str) -> OpenRun:
        run = self.open_runs.pop(run_id)
        owned = self._by_owner[run.uid]
        del owned[run_id]
        if not owned:
            del self._by_owner[run.uid]
        return run


# ---- cron's lines as events ----------------------------------------------------------------


class CronLog:
    """Turns cron's lines into events of the core (agent/lifeevents.py): a line that is not
    wrapped reports its runs as a wrapper would (RunReported), so the same transitions decide
    and the same notifications are raised."""

    def __init__(self, core: AgentCore, config: Config,
                 user_id: Callable[[str], int | None] | None = None) -> None:
        self.core = core
        self.config = config
        self.user_id = user_id or uid_of
        self.limiter = RateLimitedLog("cron's log")
        self.hinted = False  # said once that -L 15 tells more than cron's default logging
        # a wrapper's spooled events are applied by the next drain: judge after two intervals
        self.verdict_delay = 2 * config.spool_interval
        self.syntax_problem: SyntaxProblem | None = None  # logged just before cron gives up

    def apply(self, txn: Txn, state: SourceState, entries: list[Entry], now: float,
              late: bool = False) -> None:
        """Submit the events of `entries` (read after state.place), update `state` to match,
        and keep it as this source's place so both are committed together."""
        for entry in entries:
            if entry.boot and entry.boot != state.boot:
                self.close_other_boots(txn, state, entry.boot)
            try:
                self._apply_entry(txn, state, entry, late)
            except Exception as exc:  # a bug on one entry must not stop cron's log for all
                log.debug("cron's log entry %s not applied", entry.cursor, exc_info=True)
                self.limiter.warning("entry not applied", f"an internal error ({exc!r}) on "
                                     f"cron's line {entry.message!r}: skipped")
            state.place = Place(cursor=entry.cursor)
        self.decide(txn, state, now)
        txn.keep_place(NAME, state.to_json())

    def _apply_entry(self, txn: Txn, state: SourceState, entry: Entry, late: bool) -> None:
        """Submit what one of cron's lines says; what it changed before an error stays."""
        line = parse(entry.message)
        if line is not None:
            txn.count_cron_line()
            self._apply_line(txn, state, line, entry, late)
        elif refusal := parse_refusal(entry.message):
            self._refusal(txn, state, refusal, entry.time)

    def _apply_line(self, txn: Txn, state: SourceState, line: CronLine, entry: Entry,
                    late: bool) -> None:
        if isinstance(line, JobFailed):
            if (run := state.watched(f"{entry.boot}:{line.pid}", entry.pid)) is not None:
                run.status, run.signal = line.status, line.signal
            return
        if isinstance(line, OutputLost):
            self._output_lost(txn, state, entry)
            return
        uid = self.user_id(line.user)
        if uid is None:
            self.limiter.warning("unknown user", f"cron ran a job of {line.user!r}, a user "
                                 "with no passwd entry; its lines are skipped")
            return
        if isinstance(line, JobStarted):
            state.starts_seen = True
            run = replace(self._run_of(txn, uid, line, entry.time), watcher=entry.pid)
            if line.pid is None:
                self._start_without_pid(txn, run)
            else:
                self._open(txn, state, run, f"{entry.boot}:{line.pid}", line.pid)
            return
        run_id = f"{entry.boot}:{line.pid}"
        if (run := state.watched(run_id, entry.pid) and state.end_run(run_id)) is None:
            log.debug("cron's END of pid %s has no start read (it started before the agent "
                      "followed cron's log, or another process logged it)", line.pid)
            return
        self._close(txn, state, run, line.pid, entry.time, late)

    def _refusal(self, txn: Txn, state: SourceState, line: CrontabRefused | SyntaxProblem,
                 when: float) -> None:
        """cron refuses a crontab (names checked: cronrefusals.crontab_of): each line the last
        scan found in it is LineRefused, and the refusal is kept for discovery (the lines it
        finds later, the scans after)."""
        if isinstance(line, SyntaxProblem):
            self.syntax_problem = line
            return
        problem, self.syntax_problem = self.syntax_problem, None
        why = reason(line.words, problem.what if problem and problem.crontab == line.crontab
                     else None)
        if not unchanged_since(Path(self.config.crontab_root, line.crontab.lstrip("/")), when):
            return  # changed since cron said it (read late): cron read it again
        state.refused[line.crontab] = (why, when)
        for key in self.core.lines_in(line.crontab):
            job = txn.get(key)
            if job is not None:
                self._submit(txn, LineRefused(key, why, when), job.record.owner, key.name)

    def _output_lost(self, txn: Txn, state: SourceState, entry: Entry) -> None:
        """The run watched by the process that logged the MTA line: its output is counted as
        discarded (a scan of the runs in progress, done only when cron discards output)."""
        boot = f"{entry.boot}:"
        for run_id, run in state.open_runs.items():
            if run.watcher == entry.pid and entry.pid and run_id.startswith(boot):
                source = JobSource.wrapper if run.wrapped else JobSource.cron_log
                self._submit(txn, OutputDiscarded(JobKey(run.uid, run.name), run.owner,
                                                  entry.time, source), run.owner, run.name)
                return
        log.debug("cron discarded the output of a run (pid %s) whose start was not read",
                  entry.pid)

    def _run_of(self, txn: Txn, uid: int, line: JobStarted, start: float) -> OpenRun:
        """The run cron started: of the job its line declares (cronwrap -n, a name comment),
        else of the job the core named the plain line."""
        command = line.command[:IDENTITY_CHARS]
        job = line_job(command)
        if job.name is not None:
            return OpenRun(uid, line.user, job.name, job.wrapped, start)
        name = self.core.plain_line_key(txn, uid, command).name
        return OpenRun(uid, line.user, name, False, start, command_line=command)

    def _open(self, txn: Txn, state: SourceState, run: OpenRun, run_id: str, pid: int) -> None:
        """Remember the run until its END; at an owner's cap its own oldest run is pushed out,
        and with the whole table full the oldest of the owner holding the most: a user who
        floods cron's log with runs that never end loses only their own."""
        limit = self.config.max_open_runs
        cap = min(self.config.max_jobs_per_owner, limit)
        if state.owner_runs(run.uid) >= cap:
            self._forget(state.push_out(run.uid), f"{cap} of its jobs")
        elif len(state.open_runs) >= limit:
            self._forget(state.push_out(), f"{limit} jobs of all users")
        state.add_run(run_id, run)
        if not run.wrapped:  # else the wrapper reports this run itself
            self._run(txn, run, Started(id="", job=run.name, time=run.start, pid=pid))

    def _forget(self, run: OpenRun, started: str) -> None:
        self.limiter.warning("open runs pushed out", f"uid {run.uid}: {started} started "
                             "without an end; its oldest open run is forgotten (its end and "
                             "exit status will not be counted)", run.uid)

    def _close(self, txn: Txn, state: SourceState, run: OpenRun, pid: int, end: float,
               late: bool) -> None:
        if run.wrapped:
            if run.status in NOT_STARTED_STATUSES and run.signal == 0:
                state.verdicts.append(Verdict(run.uid, run.owner, run.name, run.start, end,
                                              run.status, end + self.verdict_delay))
            return
        status = 128 + run.signal if run.signal else run.status
        self._run(txn, run, Finished(
            id="", job=run.name, time=end, pid=pid, start_time=run.start,
            exit_status=min(status, 255), signal=run.signal,
            duration_ms=max(0, round((end - run.start) * 1000))), late)

    def _run(self, txn: Txn, run: OpenRun, event: Started | Finished, late: bool = False
             ) -> None:
        """A run of a line that is not wrapped, reported as its wrapper would."""
        self._submit(txn, RunReported(JobKey(run.uid, run.name), run.owner, event, late,
                                      JobSource.cron_log, run.command_line),
                     run.owner, f"{run.name} (cron's log)")

    def _submit(self, txn: Txn, event: LifeEvent, owner: str, what: str) -> None:
        """Submit `event`; a job its owner has no room for is said (rate-limited) and left out."""
        try:
            txn.submit(event)
        except RowRefused:
            pass  # the core counts and logs it
        except Rejected as exc:
            self.limiter.warning(exc.cause, f"{exc}; {what} not added", event.key.owner_uid)

    def _start_without_pid(self, txn: Txn, run: OpenRun) -> None:
        if not self.hinted:
            self.hinted = True
            log.warning("cron logs job starts without their pids, ends or exit statuses: set "
                        'EXTRA_OPTS="-L 15" in /etc/default/cron (then restart cron) for the '
                        "outcome of jobs that are not wrapped")
        if not run.wrapped:
            self._submit(txn, StartLogged(JobKey(run.uid, run.name), run.owner, run.start,
                                          run.command_line), run.owner, run.name)

    def close_other_boots(self, txn: Txn, state: SourceState, boot: str) -> None:
        """Runs started in another boot never end: a line that is not wrapped has no outcome
        (RunCut); a wrapped one's is its wrapper's to tell (a wrapper stopped at shutdown spools
        how its run ended; one killed outright is a lost wrapper), so cron's log says nothing."""
        state.boot = boot
        for run_id, run in list(state.open_runs.items()):
            if run_id.startswith(f"{boot}:"):
                continue
            state.end_run(run_id)
            if not run.wrapped:
                txn.submit(RunCut(JobKey(run.uid, run.name), int(run_id.rsplit(":", 1)[1]),
                                  run.start))

    def decide(self, txn: Txn, state: SourceState, now: float) -> None:
        """Submit the wrapped runs whose verdict is due: a wrapper that reported no start since
        cron started the line never ran (the core judges that from the row)."""
        pending = []
        for verdict in state.verdicts:
            if verdict.due > now:
                pending.append(verdict)
                continue
            if self.core.spool_backlog.get(verdict.uid):  # its start may still be spooled
                pending.append(replace(verdict, due=now + self.verdict_delay))
                continue
            problem = (f"cronwrap {NOT_STARTED_STATUSES[verdict.status]}: cron's log shows the "
                       f"shell of the crontab line exiting {verdict.status} at "
                       f"{time.ctime(verdict.end)} and the wrapper reported nothing (is "
                       "cronwrap installed and on cron's PATH?)")
            self._submit(txn, WrapperNotStarted(JobKey(verdict.uid, verdict.name), verdict.owner,
                                                verdict.start, verdict.end, verdict.status,
                                                problem), verdict.owner, verdict.name)
        state.verdicts = pending

    def next_due(self, state: SourceState) -> float | None:
        return min((v.due for v in state.verdicts), default=None)


# ---- following the journal ------------------------------------------------------------------


class CronLogSource:
    """Follows cron's lines in the journal and applies them through the core's single writer."""

    def __init__(self, core: AgentCore, config: Config, reader: JournalReader,
                 clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.config = config
        self.reader = reader
        self.clock = clock
        self.cron_log = CronLog(core, config)
        self.state = self._committed_state()
        self.retry = False  # a batch could not be committed: read it again

    @classmethod
    def start(cls, core: AgentCore, config: Config) -> CronLogSource | None:
        """The source, or None (said once in the log) when it is off or there is no journal."""
        if config.cron_log == "off":
            log.info("cron's log is not followed (cron_log = \"off\"): crontab lines that do "
                     "not run cronwrap are not monitored")
            return None
        if not config.cron_log_journal and os.path.realpath(config.crontab_root) != "/":
            # the system journal's cron reads /'s crontabs, not these (a container, a test)
            log.info("cron's log is not followed: crontabs are read under %s, and the system "
                     "journal's cron is not the one reading them (set cron_log_journal to its "
                     "journal)", config.crontab_root)
            return None
        reader = JournalReader(MATCHES, config.cron_log_journal)
        try:
            reader.open()
        except JournalUnavailable as exc:
            log.info("cron's log is not followed: %s; crontab lines that do not run cronwrap "
                     "are not monitored", exc)
            core.set_cron_log_state(CronLogState.unavailable)
            return None
        return cls(core, config, reader)

    def refused(self) -> dict[str, tuple[str, float]]:
        """The crontabs cron's log says cron refuses: why, and when it last said so."""
        return dict(self.state.refused)

    @property
    def starts_seen(self) -> bool:
        """Whether cron has been seen logging job starts: only then are crontab lines that are
        not wrapped expected to run (a cron that logs nothing would make them all missed)."""
        return self.state.starts_seen

    def _committed_state(self) -> SourceState:
        saved = self.core.source_state(NAME)
        try:
            return SourceState(Place()) if saved is None else SourceState.from_json(saved)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("cron's log: the saved place is unreadable (%s): following from now", exc)
            return SourceState(Place())

    async def run(self) -> None:
        """Follow until cancelled; the reader is closed on the way out."""
        try:
            await self._resume()
            self.core.set_cron_log_state(CronLogState.following)
            await self._follow()
        finally:
            self.reader.close()

    async def _resume(self) -> None:
        """Seek to the committed place (saving it when it is new), catch up with what cron
        logged while the agent was not reading (notifications marked late), then give up on
        runs of earlier boots that never ended."""
        first = self.state.place == Place()
        place = self.reader.seek(None if first else self.state.place)
        if place != self.state.place:
            state = self.state.copy()
            state.place = place
            await self._commit(lambda txn: txn.keep_place(NAME, state.to_json()), state)
        log.info("following cron's log in %s from %s", self.config.cron_log_journal
                 or "the system journal", "now" if first else "where it stopped")
        while await self._step(late=True) == READ_LIMIT:
            pass
        self.core.flush_late()
        boot = self.reader.current_boot()
        if boot and any(not run_id.startswith(f"{boot}:") for run_id in self.state.open_runs):
            state = self.state.copy()
            await self._commit(lambda txn: self._close_boots(txn, state, boot), state)

    def _close_boots(self, txn: Txn, state: SourceState, boot: str) -> None:
        self.cron_log.close_other_boots(txn, state, boot)
        txn.keep_place(NAME, state.to_json())

    async def _follow(self) -> None:
        """Sleep until the journal changes or a verdict is due, let a burst of lines gather for
        COALESCE_SECONDS, then read all there is: a journal busy with other services' lines
        wakes the follower about twice per COALESCE_SECONDS, not once per line."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        while True:
            if not self.retry:
                due = self.cron_log.next_due(self.state)
                timeout = None if due is None else max(0.0, due - self.clock())
                loop.add_reader(self.reader.fileno(), changed.set)
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout)
                finally:
                    loop.remove_reader(self.reader.fileno())
                if changed.is_set():
                    changed.clear()
                    await asyncio.sleep(COALESCE_SECONDS)
            # the change notifications are taken, but not trusted to say "appended": journald
            # signals some appends only with a later change, so read whenever woken
            self.reader.take_changes()
            self.retry = False
            while await self._step() == READ_LIMIT:
                pass

    async def _step(self, late: bool = False) -> int:
        """Read and apply one batch of entries; how many were read."""
        entries = self.reader.read(READ_LIMIT)  # microseconds an entry: not worth a thread
        due = self.cron_log.next_due(self.state)
        if not entries and (due is None or due > self.clock()):
            return 0
        state = self.state.copy()
        now = self.clock()
        await self._commit(lambda txn: self.cron_log.apply(txn, state, entries, now, late), state)
        return len(entries)

    async def _commit(self, change: Callable[[Txn], None], state: SourceState) -> None:
        """Apply `change` (which updates `state`) in one batch and adopt `state`; when the core
        cannot commit, go back to the committed place and read it all again a little later."""
        try:
            await self.core.update(change)
        except Unavailable:
            self.state = self._committed_state()
            self.reader.seek(self.state.place)
            self.retry = True
            await asyncio.sleep(self.config.spool_interval)
            return
        self.state = state
