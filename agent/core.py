"""The agent core: what sources and requests submit, as events of agent/lifeevents.py, decided by
the transition function (agent/transitions/) and stored by the single writer (agent/writer.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NoReturn, TypeVar

from cronwrap.wrapper.events import Cadence, Event

from . import schedule
from .config import Config
from .lifeevents import (
    CronDaemonSeen,
    DoorEvent,
    ForgetAsked,
    LifeEvent,
    LineGone,
    LineSeen,
    OutputDiscarded,
    PauseAsked,
    ResumeAsked,
    RowOverLimit,
    RunReported,
    StartLogged,
    WorkDeferred,
    WrapperNotStarted,
)
from .linenames import line_name
from .model import JobKey, JobRecord, JobSource
from .ratelimit import RateLimitedLog
from .store import Job, Store
from .transitions import crond, transition
from .transitions.door import DoorLog, DoorOutcome, Statistic, door_transition
from .transitions.outcome import Context, Outcome, utc_text
from .transitions.runs import apply_event, note_start, run_time_of
from .views import job_json
from .writer import Batch, NoSuchJob, Rejected, RowRefused, Unavailable, Writer

# what sources, requests and tests import from the core
__all__ = ["AgentCore", "NoSuchJob", "Rejected", "RowRefused", "Txn", "Unavailable", "apply_event",
           "job_json", "note_start"]

log = logging.getLogger(__name__)
T = TypeVar("T")
NO_BOUNDS = Cadence()


class Txn:
    """What a source or request sees of one batch of the writer: the rows as the batch has them,
    events to submit, and the source's own place, committed in the same transaction."""

    def __init__(self, core: AgentCore, batch: Batch) -> None:
        self._core = core
        self._batch = batch

    def get(self, key: JobKey) -> Job | None:
        """The job's row as the batch has it so far (None: there is none)."""
        return self._batch.get(key)

    def submit(self, event: LifeEvent) -> Outcome:
        """Apply `event` through the transition function; Rejected when it would add a row
        past its owner's max_jobs_per_owner, NoSuchJob for a request about no row."""
        return self._core.apply(self._batch, event)

    def see_daemon(self, event: CronDaemonSeen) -> None:
        """Apply what was seen of the cron daemon (transitions/crond.py)."""
        self._core.apply(self._batch, event)

    def keep_place(self, source: str, state: str) -> None:
        """Commit `state` (e.g. cron's log: the journal cursor) as `source`'s with this batch."""
        self._batch.source_states[source] = state

    def count_cron_line(self) -> None:
        """One of cron's job lines read (cronLogEntries)."""
        self._batch.cron_log_entries += 1


class AgentCore(Writer):
    """Single writer of the job table; the SNMP front ends read it through listeners."""

    def __init__(
        self, store: Store, config: Config, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(store, config, clock)
        # forget/pause/resume, runs too often: a line per requester and kind a minute (then a
        # count), so a user looping requests about their own jobs cannot flood the journal
        self.life_log = RateLimitedLog("job life")
        # lines about refusals and deferrals at the door: one log per kind (its prefix)
        self.door_logs = {kind: RateLimitedLog(kind.value) for kind in DoorLog}
        self.discovered: dict[JobKey, schedule.Discovered] = {}
        self._scanned = False  # a crontab scan was adopted since the agent started
        # crontab lines the last scan found no room for: counted once while they stay refused
        self.refused_lines: set[JobKey] = set()
        # the rows the last scan gave plain lines, by (owner uid, the line as cron logs it):
        # cron's log names a run of such a line by it, whatever file the line is in
        self.line_keys: dict[tuple[int, str], JobKey] = {}
        self.crontab_lines: dict[str, list[JobKey]] = {}  # the last scan's jobs, by crontab

    def cadence_of(self, job: Job) -> Cadence:
        """The event-declared cadence, with the crontab's schedule when the events gave none
        (the schedule its line had, when the line is gone: it is still expected on that).

        The crontab's CRON_TZ (honoured on cronie hosts) applies when the schedule is the line's;
        the line's duration bounds where the events declared none.
        """
        found = self.discovered.get(job.record.key)
        cadence = job.cadence
        if found is None:
            if job.crontab_schedule is None or cadence.schedule or cadence.every:
                return cadence
            return cadence._replace(schedule=job.crontab_schedule)
        if not (cadence.schedule or cadence.every):
            cadence = cadence._replace(schedule=found.schedule)
        same_line = schedule.NICKNAMES.get(cadence.schedule or "", cadence.schedule) == \
            found.schedule
        if found.tz and cadence.tz is None and same_line:
            cadence = cadence._replace(tz=found.tz)
        return with_line_bounds(cadence, found.bounds)

    # ---- submitting ----

    async def update(self, change: Callable[[Txn], T]) -> T:
        """Run `change` on a transaction in the writer (sources, the watcher); resolves with its
        result once the batch is committed."""
        result: T = await self._enqueue(lambda batch: change(Txn(self, batch)))
        return result

    async def submit(self, owner_uid: int, owner: str, event: Event, late: bool = False) -> bool:
        """Apply one wrapper's event durably: True once applied, False when it was in doubt (a
        copy of it was applied already: acknowledged, counted once); raise Rejected with a
        one-line reason when refused.

        `late`: the event comes from the spool; its notifications are marked late and
        coalesced per job until `flush_late`.
        """
        return await self._enqueue(
            lambda batch: self._apply_wrapper_event(batch, owner_uid, owner, event, late))

    async def submit_all(self, owner_uid: int, owner: str, events: list[Event], late: bool
                         ) -> list[BaseException | bool]:
        """Apply `events` in order, queued together so that they share one commit (a spool
        drain's slice); each one's outcome: True (applied), False (a copy of an applied one:
        acknowledged) or its Rejected or Unavailable."""
        futures = [self._put(lambda batch, event=event: self._apply_wrapper_event(
            batch, owner_uid, owner, event, late)) for event in events]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        return [outcome if isinstance(outcome, BaseException) else bool(outcome)
                for outcome in outcomes]

    def spool_progress(self, backlog: dict[int, int]) -> None:
        """The spool drain's news: events still spooled per owner uid (cronSpoolBacklog)."""
        backlog = {uid: left for uid, left in backlog.items() if left > 0}
        if backlog != self.spool_backlog:
            self.spool_backlog = backlog
            self._publish_stats()

    def _apply_wrapper_event(self, batch: Batch, owner_uid: int, owner: str, event: Event,
                             late: bool) -> bool:
        if batch.seen(owner_uid, event.id):
            return False  # a retry of an event already applied: acknowledged, counted once
        every = event.cadence.every  # type: ignore[attr-defined]
        if every is not None and every < self.config.min_every:
            raise Rejected(f"'every' of {every:g} s is below the agent's floor of "
                           f"{self.config.min_every:g} s ([agent] min_every)", "every too short")
        problem = schedule.refusal(event.cadence)  # type: ignore[attr-defined]
        if problem is not None:
            raise Rejected(problem, "cadence refused")
        run = RunReported(JobKey(owner_uid, event.job), owner, event, late)  # type: ignore[arg-type]
        self.apply(batch, run)
        batch.applied[(owner_uid, event.id)] = self._clock()  # in doubt until settled
        batch.accepted += 1
        return True

    def note(self, event: WorkDeferred) -> None:
        """A source's deferral, outside any batch: through the one path (apply)."""
        self.apply(None, event)

    def apply(self, batch: Batch | None, event: LifeEvent | DoorEvent | CronDaemonSeen
              ) -> Outcome:
        """The one path of every event: the row (made if the event may make one), the transition,
        then the row and the notifications it raised put in the batch. A door event (a refused
        row, deferred work) changes no row: its transition says what it counts and logs. What
        is seen of the cron daemon changes the daemon's state, no row."""
        if isinstance(event, WorkDeferred | RowOverLimit):
            owner_uid = event.owner_uid if isinstance(event, WorkDeferred) else event.key.owner_uid
            self._count_at_door(batch, door_transition(event, self.config), owner_uid)
            return Outcome(None)
        if batch is None:
            raise TypeError(f"{type(event).__name__} changes a row: it is applied in a batch")
        if isinstance(event, CronDaemonSeen):
            daemon = batch.current_daemon()
            self._take_daemon(batch, crond.daemon_seen(
                daemon, event, Context(self._clock(), self.config, self.cadence_of, daemon)))
            return Outcome(None)
        key = event.key
        before = batch.get(key)
        if isinstance(event, RunReported):
            forgotten_at = batch.forgotten_at(key)
            if forgotten_at is not None and run_time_of(event.event) <= forgotten_at:
                return Outcome(before)  # a run from before `cronwrap forget`: dropped
        job = before if before is not None else self._new_row(batch, event)
        if job is None:
            return Outcome(None)
        outcome = transition(job, event, Context(self._clock(), self.config, self.cadence_of,
                                                 batch.current_daemon()))
        if outcome.held_misses:
            self._take_daemon(batch, crond.misses_held(batch.current_daemon(),
                                                       outcome.held_misses))
        if outcome.job is None:
            if before is not None:
                batch.remove(key)
        elif outcome.job != before:
            batch.put(outcome.job)
        batch.notifications += outcome.raised
        if isinstance(event, ForgetAsked):
            batch.forgotten[key] = event.now
        for cause, text in outcome.warnings:
            self.life_log.warning(cause, text, key.owner_uid)
        return outcome

    @staticmethod
    def _take_daemon(batch: Batch, outcome: crond.DaemonOutcome) -> None:
        if outcome.daemon != batch.current_daemon():
            batch.daemon = outcome.daemon
        batch.daemon_raised += outcome.raised

    def _count_at_door(self, batch: Batch | None, outcome: DoorOutcome, owner_uid: int) -> None:
        """Count what a door transition counted (rows refused with the batch, deferrals since
        the start, listeners told at once) and log its line, rate-limited per owner."""
        if outcome.counted == Statistic.rows_refused and batch is not None:
            batch.rows_refused += 1
        elif outcome.counted is not None:
            self.deferred[outcome.counted.value] += 1
            self._publish_stats()
        if outcome.line is not None:
            self.door_logs[outcome.line.log].warning(outcome.line.cause, outcome.line.detail,
                                                     owner_uid)

    def _new_row(self, batch: Batch, event: LifeEvent) -> Job | None:
        """A new row for the job `event` is about, if that event makes one (None otherwise)."""
        key = event.key
        if isinstance(event, ForgetAsked | PauseAsked | ResumeAsked):
            raise NoSuchJob(key)
        if isinstance(event, LineSeen):
            owner, since, source = event.found.owner, event.now, event.found.source
        elif isinstance(event, RunReported):
            owner, since, source = event.owner, self._clock(), event.source
        elif isinstance(event, StartLogged):
            owner, since, source = event.owner, event.time, JobSource.cron_log
        elif isinstance(event, WrapperNotStarted):
            owner, since, source = event.owner, event.start, JobSource.wrapper
        elif isinstance(event, OutputDiscarded):
            owner, since, source = event.owner, event.time, event.source
        else:
            return None  # passing time, a cut run, a line gone: nothing to do without a row
        if not self.room_for_job(batch, key.owner_uid):
            self._refuse_row(batch, event, owner)
        return Job(JobRecord(key, owner, counters_since=since, source=source))

    def _refuse_row(self, batch: Batch, event: LifeEvent, owner: str) -> NoReturn:
        """A new row past max_jobs_per_owner, whatever the source: a RowOverLimit through the
        one path (counted, a crontab line once while it stays refused), then RowRefused."""
        again = isinstance(event, LineSeen) and event.key in self.refused_lines
        self.apply(batch, RowOverLimit(event.key, owner, _row_source(event), again))
        raise RowRefused(f"job limit reached: {owner} already has "
                         f"{self.config.max_jobs_per_owner} jobs", "job limit")

    # ---- crontab lines ----

    async def set_discovered(self, lines: list[schedule.Discovered]) -> None:
        """Adopt a crontab scan: rows for jobs that never ran, new schedules, vanished lines."""
        await self.update(lambda txn: self._adopt_scan(txn, lines))

    def _adopt_scan(self, txn: Txn, lines: list[schedule.Discovered]) -> None:
        before = self.discovered
        old: set[JobKey] = set(before)
        if not self._scanned:  # the lines the rows were seen on before the agent started
            old = {key for key, job in self.jobs().items()
                   if job.crontab_schedule is not None and job.record.line_gone is None}
        found = self._named(txn, lines)
        self._scanned, self.discovered = True, found
        self.line_keys = {(key.owner_uid, line.command_line): key for key, line in found.items()
                          if line.source == JobSource.cron_log and line.command_line}
        self.crontab_lines = {}
        for key, line in found.items():
            self.crontab_lines.setdefault(line.crontab, []).append(key)
        now = self._clock()
        refused: set[JobKey] = set()
        # lines gone first (their rows may make room), then the lines found in crontab order,
        # so that at max_jobs_per_owner the first lines of a crontab are the ones with rows
        for key in [*(key for key in old if key not in found), *found]:
            if key not in found:
                txn.submit(LineGone(key, now))
                continue
            if key in before and before[key] == found[key] and txn.get(key) is not None:
                continue  # the last scan's line, its row made: nothing new to adopt
            try:
                changed = key in before and before[key] != found[key]
                txn.submit(LineSeen(key, found[key], changed, now))
            except RowRefused:
                refused.add(key)
        self.refused_lines = refused

    def _named(self, txn: Txn, lines: list[schedule.Discovered]
               ) -> dict[JobKey, schedule.Discovered]:
        """The scan's lines by job, in crontab order, each plain line named (linenames.line_name)
        from the rows and the names given to the lines before it, so two lines never share one.
        Of two lines of one job, a line cron runs keeps the row: one it ignores (in a crontab
        others may write) never holds that row in ignoredByCron."""
        found: dict[JobKey, schedule.Discovered] = {}
        given: dict[JobKey, str] = {}  # names given in this scan -> their lines
        for line in lines:
            if not line.key.name:
                uid, logged = line.key.owner_uid, line.command_line or ""
                key = JobKey(uid, self._line_name(txn, uid, logged, line.crontab, given))
                given[key] = logged
                line = replace(line, key=key)
            kept = found.get(line.key)
            if kept is None or kept.ignored is not None or line.ignored is None:
                found[line.key] = line
        return found

    def lines_in(self, crontab: str) -> list[JobKey]:
        """The jobs the last crontab scan found in `crontab` (its path on the host)."""
        return self.crontab_lines.get(crontab, [])

    def plain_line_key(self, txn: Txn, uid: int, logged: str) -> JobKey:
        """The job of a plain crontab line whose run cron's log shows (`logged`: its command as
        cron logs it): the row the scans gave it, else the name linenames.line_name gives."""
        return self.line_keys.get((uid, logged)) or JobKey(uid, self._line_name(txn, uid, logged))

    @staticmethod
    def _line_name(txn: Txn, uid: int, logged: str, crontab: str = "",
                   given: dict[JobKey, str] | None = None) -> str:
        def holder(name: str) -> str | None:
            key = JobKey(uid, name)
            if given and key in given:
                return given[key]
            job = txn.get(key)
            return None if job is None else job.record.command_line or ""

        return line_name(logged, crontab, holder)

    # ---- a job's life: what `cronwrap forget/pause/resume` asks for over the socket ----

    async def forget(self, key: JobKey, requester: str) -> Job:
        """Drop the job's row and counts; runs that started before now are ignored when their
        (spooled) events arrive, a later run starts a new row.  NoSuchJob if there is none."""
        job: Job = await self.update(lambda txn: self._forget(txn, key, requester))
        rec = job.record
        self.life_log.warning("forget", (
            f"job {key.name} of {rec.owner} forgotten at the request of {requester} "
            f"({rec.runs} runs, {rec.failures} failures, {rec.misses} misses dropped)"),
            key.owner_uid)
        return job

    def _forget(self, txn: Txn, key: JobKey, requester: str) -> Job:
        job = txn.get(key)
        if job is None:
            raise NoSuchJob(key)
        txn.submit(ForgetAsked(key, requester, self._clock()))
        return job

    async def pause(self, key: JobKey, seconds: float, requester: str) -> Job:
        """No notifications and no misses for the job for `seconds` from now (wall clock);
        its runs are still counted.  NoSuchJob if there is none."""
        job, _ = await self.update(
            lambda txn: self._request(txn, PauseAsked(key, self._clock() + seconds)))
        self.life_log.warning("pause", (
            f"job {key.name} of {job.record.owner} paused until "
            f"{utc_text(job.record.paused_until or 0)} at the request of {requester}"),
            key.owner_uid)
        return job

    async def resume(self, key: JobKey, requester: str) -> tuple[Job, bool]:
        """End the job's pause now; the job and whether it was paused.  NoSuchJob if none."""
        job, was_paused = await self.update(
            lambda txn: self._request(txn, ResumeAsked(key, self._clock())))
        if was_paused:
            self.life_log.warning("resume", (
                f"job {key.name} of {job.record.owner} resumed at the request of {requester}"),
                key.owner_uid)
        return job, was_paused

    def _request(self, txn: Txn, event: PauseAsked | ResumeAsked) -> tuple[Job, bool]:
        """The row after a pause or resume, and whether it was paused before."""
        before = txn.get(event.key)
        if before is None:
            raise NoSuchJob(event.key)
        return txn.submit(event).job or before, before.record.paused_until is not None


def with_line_bounds(cadence: Cadence, line: Cadence) -> Cadence:
    """`cadence` with the duration bounds of the job's crontab line where its events gave none."""
    if line == NO_BOUNDS:
        return cadence
    return cadence._replace(**{name: getattr(line, name) for name in Cadence.OMITTED_WHEN_NONE
                               if getattr(cadence, name) is None})


def _row_source(event: LifeEvent) -> str:
    """Where a refused row came from, said the way the job-limit line says it."""
    if isinstance(event, LineSeen):
        return "a crontab line"
    if isinstance(event, RunReported) and event.source == JobSource.wrapper:
        return "a wrapper's event"
    return "cron's log"
