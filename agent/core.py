"""The agent core: applies events to job rows, commits each batch durably, then tells listeners."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cronwrap.wrapper.events import Cadence, Event, Finished, Overlapped, Started

from . import schedule
from .config import Config
from .model import (
    AgentStats,
    CronLogState,
    JobKey,
    JobRecord,
    JobSource,
    JobState,
    JobTableListener,
    Notification,
    NotificationHub,
    NotificationKind,
    RunRecord,
    StartBurst,
)
from .ratelimit import RateLimitedLog
from .store import Job, Store

log = logging.getLogger(__name__)

RUNNING_STATES = frozenset({JobState.running, JobState.overlapped, JobState.overrunning})
# States raised by a notification that a successful end of the run clears (cronJobCleared).
CLEARED_BY_SUCCESS = frozenset({JobState.overlapped, JobState.overrunning})
MAX_BATCH = 2000
# A job runs too often when its schedule has fewer than one start per this many of its starts.
TOO_OFTEN_FACTOR = 4
PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class Raised:
    """A notification a batch raised; published with the job's row once the batch is committed."""

    kind: NotificationKind
    key: JobKey
    run_time: float | None = None  # the start of the run it is about (overlapped: the attempt)
    late: bool = False  # the event came from the spool
    # the row as the event left it, whatever later events of the batch do (also for a job the
    # batch removed: forgotten); None: the row as the batch leaves it
    record: JobRecord | None = None
    requester: str | None = None  # who asked (cronwrap forget)
    facts: EventFacts | None = None  # the event's own exit status, signal and time
    burst: StartBurst | None = None  # cronJobRunsTooOften: the starts that were too many


# Notifications about a job's life itself: sent even while it is paused.
LIFE_KINDS = frozenset({NotificationKind.forgotten, NotificationKind.retired})


@dataclass(frozen=True)
class EventFacts:
    """What a notification tells about its event itself, not about the row."""

    time: float | None = None  # when it happened (None: when the agent noticed it)
    exit_status: int | None = None  # a finished run's exit status
    signal: int = 0  # the signal that ended a finished run
    message: str | None = None  # a finished run's last line of output (--last-message)


class LateNotifications:
    """Coalesces the late notifications of one spool drain, per job.

    The first `per_job` late notifications of a job in a drain are published one by one; the
    rest are held, one per job and kind, each counting the runs it stands for and carrying the
    newest of them, and `flush` (at the end of the drain) returns them.
    """

    def __init__(self, per_job: int) -> None:
        self.per_job = per_job
        self._sent: Counter[JobKey] = Counter()
        self._held: dict[tuple[JobKey, NotificationKind], Notification] = {}

    def admit(self, notification: Notification) -> bool:
        """True: publish it now; False: it is held for the drain's coalesced notification."""
        key = notification.job.key
        if self._sent[key] < self.per_job:
            self._sent[key] += 1
            return True
        held = self._held.get((key, notification.kind))
        count = 1 if held is None else held.run_count + 1
        self._held[(key, notification.kind)] = replace(notification, run_count=count)
        return False

    def flush(self) -> list[Notification]:
        held = list(self._held.values())
        self._sent.clear()
        self._held.clear()
        return held


class Rejected(Exception):
    """An event that is valid on the wire but refused by policy (e.g. the per-owner job cap)."""


class Unavailable(Rejected):
    """The batch could not be committed; nothing in it was applied, the sender should retry."""


class NoSuchJob(Exception):
    """A request (forget, pause, resume) about a job the agent does not know: nothing changed."""


@dataclass
class Batch:
    """The changes made by one group of queued items, applied over the committed state."""

    base: dict[JobKey, Job]
    applied_base: dict[str, float]
    jobs: dict[JobKey, Job] = field(default_factory=dict)
    removed: set[JobKey] = field(default_factory=set)
    applied: dict[str, float] = field(default_factory=dict)
    new_per_owner: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    rejected: int = 0
    notifications: list[Raised] = field(default_factory=list)
    forgotten_base: dict[JobKey, float] = field(default_factory=dict)
    forgotten: dict[JobKey, float] = field(default_factory=dict)  # forgotten in this batch
    # an event source's durable state (e.g. cron's log: its journal cursor), by source name:
    # committed in the same transaction as the rows the source changed
    source_states: dict[str, str] = field(default_factory=dict)
    cron_log_entries: int = 0  # cron's job lines applied

    def get(self, key: JobKey) -> Job | None:
        if key in self.removed:
            return None
        return self.jobs.get(key) or self.base.get(key)

    def put(self, job: Job, kinds: Iterable[NotificationKind] = (),
            run_time: float | None = None, late: bool = False,
            facts: EventFacts | None = None) -> None:
        key = job.record.key
        self.removed.discard(key)
        self.jobs[key] = job
        self.notifications += [Raised(kind, key, run_time, late, job.record, facts=facts)
                               for kind in kinds]

    def remove(self, key: JobKey) -> None:
        self.jobs.pop(key, None)
        self.removed.add(key)

    def live_keys(self) -> set[JobKey]:
        return (set(self.base) | set(self.jobs)) - self.removed

    def seen(self, event_id: str) -> bool:
        return event_id in self.applied or event_id in self.applied_base

    def forgotten_at(self, key: JobKey) -> float | None:
        """When `key` was last forgotten (None: never, or long enough ago to be pruned)."""
        return self.forgotten.get(key, self.forgotten_base.get(key))

    def empty(self) -> bool:
        return not (self.jobs or self.removed or self.applied or self.accepted or self.rejected
                    or self.source_states or self.cron_log_entries)


@dataclass
class _Item:
    """One queued change; `apply` runs in the writer, `future` resolves after the commit."""

    apply: Callable[[Batch], Any]
    future: asyncio.Future[Any] | None


_STOP = _Item(lambda batch: None, None)


class AgentCore:
    """Single writer of the job table; the SNMP front ends read it through listeners."""

    def __init__(
        self, store: Store, config: Config, clock: Callable[[], float] = time.time
    ) -> None:
        self.notifications = NotificationHub(config.notifications_per_owner)
        # forget/pause/resume: a line per requester and kind a minute (then a count), so a
        # user looping requests about their own jobs cannot flood the journal
        self.life_log = RateLimitedLog("job life")
        self.config = config
        self._store = store
        self._clock = clock
        self._jobs = trim_history(store.load_jobs(), config.run_history)
        counters = store.load_counters()
        self._accepted = counters["events_accepted"]
        self._rejected = counters["events_rejected"]
        self._applied = store.load_applied(clock() - config.applied_retention)
        self._forgotten = store.load_forgotten()
        self._source_states = store.load_source_states()
        self._cron_log_entries = counters.get("cron_log_entries", 0)
        self.cron_log_state = CronLogState.disabled
        self._last_prune = 0.0
        # why events cannot be stored now (None: they can); logged once per outage
        self.storage_problem: str | None = store.problem
        self._per_owner = Counter(key.owner_uid for key in self._jobs)
        self._started_at = clock()
        self._table_changed_at: float | None = None  # a row added or removed since the start
        self._listeners: list[JobTableListener] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._late = LateNotifications(config.late_notifications_per_job)
        self.discovered: dict[JobKey, schedule.Discovered] = {}

    # ---- the interface the front ends use ----

    def add_listener(self, listener: JobTableListener) -> None:
        """Replay every row and the stats now; then report each change after its commit."""
        self._listeners.append(listener)
        for job in self._jobs.values():
            listener.job_changed(job.record)
        listener.stats_changed(self.stats())

    def records(self) -> list[JobRecord]:
        return [job.record for job in self._jobs.values()]

    def stats(self) -> AgentStats:
        return AgentStats(len(self._jobs), self._accepted, self._rejected, self._started_at,
                          self.notifications.suppressed, self._table_changed_at,
                          self.cron_log_state, self._cron_log_entries,
                          self.config.run_history)

    def set_cron_log_state(self, state: CronLogState) -> None:
        """Whether cron's log is followed (cronLogSource); listeners see it at once."""
        if state != self.cron_log_state:
            self.cron_log_state = state
            for listener in self._listeners:
                listener.stats_changed(self.stats())

    # ---- the interface intake, spool drain and watchers use ----

    def jobs(self) -> dict[JobKey, Job]:
        return self._jobs

    def room_for_job(self, batch: Batch, owner_uid: int) -> bool:
        """Whether `batch` may add a row for `owner_uid` (max_jobs_per_owner); counts it."""
        if self._per_owner[owner_uid] + batch.new_per_owner[owner_uid] >= \
                self.config.max_jobs_per_owner:
            return False
        batch.new_per_owner[owner_uid] += 1
        return True

    def source_state(self, name: str) -> str | None:
        """The state event source `name` last committed with a batch (None: never)."""
        return self._source_states.get(name)

    def cadence_of(self, job: Job) -> Cadence:
        """The event-declared cadence, with the crontab's schedule when the events gave none.

        The crontab's CRON_TZ (honoured on cronie hosts) applies when the schedule is the line's.
        """
        found = self.discovered.get(job.record.key)
        cadence = job.cadence
        if found is None:
            return cadence
        if not (cadence.schedule or cadence.every):
            cadence = replace(cadence, schedule=found.schedule)
        same_line = schedule.NICKNAMES.get(cadence.schedule or "", cadence.schedule) == \
            found.schedule
        if found.tz and cadence.tz is None and same_line:
            cadence = replace(cadence, tz=found.tz)
        return cadence

    async def submit(self, owner_uid: int, owner: str, event: Event, late: bool = False) -> None:
        """Apply one event durably; raise Rejected with a one-line reason when refused.

        `late`: the event comes from the spool; its notifications are marked late and
        coalesced per job until `flush_late`.
        """
        return await self._enqueue(
            lambda batch: self._apply_event(batch, owner_uid, owner, event, late))

    def flush_late(self) -> None:
        """Publish the coalesced late notifications held since the last flush (a drain's end)."""
        now = self._clock()
        for notification in self._late.flush():
            self.notifications.publish(replace(notification, time=now))

    def reject(self) -> None:
        """Count an event refused before reaching the core (persisted with the next batch)."""
        self._queue.put_nowait(_Item(self._count_rejection, None))

    async def update(self, change: Callable[[Batch], Any]) -> Any:
        """Run `change` on a batch in the writer (watchers, discovery); resolves once committed."""
        return await self._enqueue(change)

    async def set_discovered(self, found: dict[JobKey, schedule.Discovered]) -> None:
        """Adopt a crontab scan: rows for jobs that never ran, new schedules, vanished lines."""
        await self.update(lambda batch: self._apply_discovery(batch, found))

    def _apply_discovery(self, batch: Batch, found: dict[JobKey, schedule.Discovered]) -> None:
        old, self.discovered = self.discovered, found
        now = self._clock()
        for key in set(old) | set(found):
            job = batch.get(key)
            if key not in found and job is not None and not job.reported:
                batch.remove(key)
                continue
            if job is None:
                job = Job(JobRecord(key, found[key].owner, counters_since=now,
                                     source=found[key].source))
            if key in found:
                job = in_crontab(job, found[key].schedule)
            elif job.record.state == JobState.retired:
                continue  # its line is gone and it stopped: nothing is expected of it
            if job.record.next_expected is not None and (
                    key not in old or old.get(key) == found.get(key)):
                if job != batch.get(key):
                    batch.put(job)
                continue  # keep a deadline computed before a restart
            try:
                upcoming = schedule.next_after(self.cadence_of(job), now,
                                               self.config.cron_timezone)
            except ValueError:  # an old row's schedule that never fires: the watcher says so
                upcoming = None
            new = replace(job, record=replace(job.record, next_expected=upcoming))
            if new != batch.get(key):
                batch.put(new)

    # ---- a job's life: what `cronwrap forget/pause/resume` asks for over the socket ----

    async def forget(self, key: JobKey, requester: str) -> Job:
        """Drop the job's row and counts; runs that started before now are ignored when their
        (spooled) events arrive, a later run starts a new row.  NoSuchJob if there is none."""
        job = await self._enqueue(lambda batch: self._forget(batch, key, requester))
        rec = job.record
        self.life_log.warning(f"forget by {requester}", (
            f"job {key.name} of {rec.owner} forgotten at the request of {requester} "
            f"({rec.runs} runs, {rec.failures} failures, {rec.misses} misses dropped)"))
        return job

    def _forget(self, batch: Batch, key: JobKey, requester: str) -> Job:
        job = batch.get(key)
        if job is None:
            raise NoSuchJob(key)
        batch.remove(key)
        batch.forgotten[key] = self._clock()
        batch.notifications.append(Raised(NotificationKind.forgotten, key, record=job.record,
                                          requester=requester))
        return job

    async def pause(self, key: JobKey, seconds: float, requester: str) -> Job:
        """No notifications and no misses for the job for `seconds` from now (wall clock);
        its runs are still counted.  NoSuchJob if there is none."""
        job, _ = await self._enqueue(lambda batch: self._set_pause(batch, key, seconds))
        self.life_log.warning(f"pause by {requester}", (
            f"job {key.name} of {job.record.owner} paused until "
            f"{_utc(job.record.paused_until or 0)} at the request of {requester}"))
        return job

    async def resume(self, key: JobKey, requester: str) -> tuple[Job, bool]:
        """End the job's pause now; the job and whether it was paused.  NoSuchJob if none."""
        job, was_paused = await self._enqueue(lambda batch: self._set_pause(batch, key, None))
        if was_paused:
            self.life_log.warning(f"resume by {requester}", (
                f"job {key.name} of {job.record.owner} resumed at the request of {requester}"))
        return job, was_paused

    def _set_pause(self, batch: Batch, key: JobKey, seconds: float | None
                   ) -> tuple[Job, bool]:
        job = batch.get(key)
        if job is None:
            raise NoSuchJob(key)
        was_paused = job.record.paused_until is not None
        now = self._clock()
        if seconds is None:
            new = end_pause(job, self.cadence_of(job), now, self.config.cron_timezone)
        else:
            new = replace(job, record=replace(job.record, paused_until=now + seconds))
        if new != job:
            batch.put(new)
        return new, was_paused

    async def _enqueue(self, apply: Callable[[Batch], Any]) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(apply, future))
        return await future

    # ---- the writer ----

    async def run(self) -> None:
        """Take everything queued, apply it, commit once, then answer and notify; until stop()."""
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty() and len(items) < MAX_BATCH:
                items.append(self._queue.get_nowait())
            stopping = _STOP in items
            await self._process([item for item in items if item is not _STOP])
            if stopping:
                return

    def stop(self) -> None:
        """Make run() return once what is queued now has been committed and answered."""
        self._queue.put_nowait(_STOP)

    async def _process(self, items: list[_Item]) -> None:
        batch = Batch(self._jobs, self._applied, forgotten_base=self._forgotten)
        outcomes: list[tuple[bool, Any]] = []
        for item in items:
            try:
                outcomes.append((True, item.apply(batch)))
            except NoSuchJob as exc:
                outcomes.append((False, exc))
            except Rejected as exc:
                batch.rejected += 1
                outcomes.append((False, exc))
            except Exception:  # a bug: log it, refuse the item, keep the daemon up
                log.exception("internal error applying an item; it was not applied")
                outcomes.append((False, Unavailable("internal error in the agent")))
        if batch.empty():
            self._answer(items, outcomes)
            return
        now = self._clock()
        prune = None
        if now - self._last_prune > PRUNE_EVERY:
            prune = now - self.config.applied_retention
        try:
            await asyncio.to_thread(self._commit, batch, prune)
        except Exception as exc:  # noqa: BLE001 - the disk failed: nothing was acked
            self._storage_failed(exc)
            failure = Unavailable("the agent cannot store events right now")
            outcomes = [(False, failure)] * len(items)
        else:
            self._storage_works()
            if prune is not None:
                self._last_prune = now
                self._applied = {k: t for k, t in self._applied.items() if t >= prune}
                self._forgotten = {k: t for k, t in self._forgotten.items() if t >= prune}
            self._install(batch)
        self._answer(items, outcomes)

    def _storage_failed(self, exc: Exception) -> None:
        if self.storage_problem is not None:
            log.debug("still cannot commit to %s: %s", self._store.path, exc)
            return
        self.storage_problem = str(exc)
        log.error("cannot commit to %s: %s; refusing events (wrappers spool them) until it "
                  "works again", self._store.path, exc)

    def _storage_works(self) -> None:
        if self.storage_problem is not None:
            self.storage_problem = None
            log.warning("committing to %s works again; spooled events will be drained",
                        self._store.path)

    def _answer(self, items: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
        for item, (ok, value) in zip(items, outcomes, strict=True):
            if item.future is not None and not item.future.done():
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(value)

    def _commit(self, batch: Batch, prune: float | None) -> None:
        """Runs in a worker thread; touches nothing but the store."""
        counters = {"events_accepted": self._accepted + batch.accepted,
                    "events_rejected": self._rejected + batch.rejected,
                    "cron_log_entries": self._cron_log_entries + batch.cron_log_entries}
        self._store.commit(batch.jobs.values(), batch.removed, batch.applied.items(), counters,
                           prune, batch.forgotten.items(), batch.source_states)

    def _install(self, batch: Batch) -> None:
        now = self._clock()
        if batch.removed & set(self._jobs) or set(batch.jobs) - set(self._jobs):
            self._table_changed_at = now
        self._jobs.update(batch.jobs)
        for key in batch.removed:
            self._jobs.pop(key, None)
        self._per_owner = Counter(key.owner_uid for key in self._jobs)
        self._applied.update(batch.applied)
        self._forgotten.update(batch.forgotten)
        self._accepted += batch.accepted
        self._rejected += batch.rejected
        self._source_states.update(batch.source_states)
        self._cron_log_entries += batch.cron_log_entries
        for raised in batch.notifications:  # queued only: the senders run after this
            job = self._jobs.get(raised.key)
            record = raised.record or (job.record if job is not None else None)
            if record is None:
                continue
            if record.paused_until is not None and raised.kind not in LIFE_KINDS:
                continue  # a paused job raises no notifications
            facts = raised.facts or EventFacts()
            notification = Notification(raised.kind, record, now, raised.late, raised.run_time,
                                        requester=raised.requester,
                                        exit_status=facts.exit_status, signal=facts.signal,
                                        event_time=facts.time, burst=raised.burst,
                                        message=facts.message)
            if not raised.late or self._late.admit(notification):
                self.notifications.publish(notification)
        for listener in self._listeners:
            for job in batch.jobs.values():
                listener.job_changed(job.record)
            for key in batch.removed:
                listener.job_removed(key)
            listener.stats_changed(self.stats())  # with the notifications suppressed just now

    def _count_rejection(self, batch: Batch) -> None:
        batch.rejected += 1

    def _apply_event(self, batch: Batch, owner_uid: int, owner: str, event: Event,
                     late: bool) -> None:
        if batch.seen(event.id):
            return  # a retry of an event already applied: acknowledged, counted once
        every = event.cadence.every  # type: ignore[attr-defined]
        if every is not None and every < self.config.min_every:
            raise Rejected(f"'every' of {every:g} s is below the agent's floor of "
                           f"{self.config.min_every:g} s ([agent] min_every)")
        problem = schedule.refusal(event.cadence)  # type: ignore[attr-defined]
        if problem is not None:
            raise Rejected(problem)
        self.apply_to_row(batch, JobKey(owner_uid, event.job), owner, event, late)
        batch.applied[event.id] = self._clock()
        batch.accepted += 1

    def apply_to_row(self, batch: Batch, key: JobKey, owner: str, event: Event,
                     late: bool = False, source: JobSource = JobSource.wrapper) -> None:
        """Apply a run's event to the row of `key` (created within the per-owner cap, else
        Rejected): runs from before `cronwrap forget` are dropped, an expired pause ends, the
        state machine (apply_event) decides and raises the notifications.  `source`: who
        learnt it; the row says so from now on (cron's log for a line that is not wrapped)."""
        forgotten_at = batch.forgotten_at(key)
        if forgotten_at is not None and run_time_of(event) <= forgotten_at:
            return  # a run from before `cronwrap forget`: dropped
        job = batch.get(key)
        if job is None:
            if not self.room_for_job(batch, key.owner_uid):
                raise Rejected(f"job limit reached: {owner} already has "
                               f"{self.config.max_jobs_per_owner} jobs")
            job = Job(JobRecord(key, owner, counters_since=self._clock(), source=source))
        elif job.record.owner != owner:
            job = replace(job, record=replace(job.record, owner=owner))
        now = self._clock()
        if job.record.paused_until is not None and now >= job.record.paused_until:
            job = end_pause(job, self.cadence_of(job), now, self.config.cron_timezone)
        retired = job.record.state == JobState.retired
        if job.record.source != source or job.record.start_problem is not None:
            # this source reports the job (again): its events are the truth from now on
            job = replace(job, record=replace(job.record, source=source, start_problem=None))
        runs_before = job.record.runs
        job, kinds = apply_event(job, event, self.cadence_of, self.config.cron_timezone)
        if isinstance(event, Finished) and job.record.runs > runs_before:
            job = with_run(job, event, late, self.config.run_history)
        burst = None
        if isinstance(event, Started | Overlapped):
            job, burst = note_start(job, event.time, self.cadence_of(job),
                                    self.config.cron_timezone, self.config.too_often_starts)
        if retired and job.record.state != JobState.retired:
            log.warning("job %s of %s runs again: no longer retired", key.name, owner)
        batch.put(job, kinds, run_time_of(event), late, facts_of(event))
        if burst is not None:
            self.life_log.warning(f"too often by {owner}", (
                f"job {key.name} of {owner} started {burst.starts} times since "
                f"{_utc(burst.since)}, where its schedule has {burst.expected} starts: it runs "
                "too often"))
            batch.notifications.append(Raised(
                NotificationKind.runs_too_often, key, event.time, late, job.record,
                facts=EventFacts(event.time), burst=burst))


def apply_event(job: Job, event: Event, cadence_of: Callable[[Job], Cadence], cron_zone: str = ""
                ) -> tuple[Job, list[NotificationKind]]:
    """The state machine: the job after `event`, and the notifications the transition raises.

    cron_zone: the zone cron reads crontabs in (config cron_timezone; "": the local zone).
    """
    cadence: Cadence = event.cadence  # type: ignore[attr-defined]
    if isinstance(event, Started) or cadence != Cadence():  # each start redeclares it
        job = replace(job, cadence=cadence)
    job = replace(job, reported=True, misses_in_a_row=0)
    if isinstance(event, Started):
        return _started(job, event, cadence_of(job), cron_zone), []
    if isinstance(event, Finished):
        return _finished(job, event, cadence_of(job), cron_zone)
    if isinstance(event, Overlapped):
        return _overlapped(job, event, cadence_of(job), cron_zone)
    raise TypeError(f"not an event: {event!r}")


def end_pause(job: Job, cadence: Cadence, now: float, cron_zone: str = "") -> Job:
    """The job after its pause ended at `now`: expected again from the next slot on, so the
    slots that passed during the pause are not missed (a retired job stays unexpected)."""
    if job.record.paused_until is None:
        return job
    upcoming = job.record.next_expected
    if job.record.state != JobState.retired:
        try:
            upcoming = schedule.next_after(cadence, now, cron_zone)
        except ValueError:  # a schedule that never fires: the watcher says so
            upcoming = None
    return replace(job, record=replace(job.record, paused_until=None, next_expected=upcoming))


def in_crontab(job: Job, schedule_text: str) -> Job:
    """A job seen on a crontab line: its schedule remembered; a retired job expected again."""
    if job.record.state == JobState.retired:
        log.warning("job %s of %s is in a crontab again: no longer retired", job.record.key.name,
                    job.record.owner)
        job = replace(job, record=replace(job.record, state=JobState.unknown, next_expected=None))
    return replace(job, crontab_schedule=schedule_text)


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def facts_of(event: Event) -> EventFacts:
    """The event's own time, and for a finished run its exit status and signal."""
    if isinstance(event, Finished):
        return EventFacts(event.start_time + event.duration_ms / 1000, event.exit_status,
                          event.signal, event.last_message)
    return EventFacts(event.time)


def run_time_of(event: Event) -> float:
    """When the run an event is about started (an overlap: when the skipped start was tried)."""
    return event.start_time if isinstance(event, Finished) else event.time


def _started(job: Job, event: Started, cadence: Cadence, cron_zone: str) -> Job:
    rec = job.record
    stale = (rec.last_start is not None and event.time <= rec.last_start) or (
        job.last_end is not None and event.time <= job.last_end)
    if stale:  # a late (spooled) start of a run already known to have finished
        return job
    return replace(job, record=replace(
        rec, state=JobState.running, running_pid=event.pid, last_start=event.time,
        next_expected=schedule.next_after(cadence, event.time, cron_zone)))


def _finished(job: Job, event: Finished, cadence: Cadence, cron_zone: str
              ) -> tuple[Job, list[NotificationKind]]:
    rec = job.record
    failed = event.exit_status != 0 or event.signal != 0 or event.timed_out
    kinds = [NotificationKind.timed_out if event.timed_out else NotificationKind.failed] if failed \
        else []
    rec = replace(rec, runs=rec.runs + 1, failures=rec.failures + failed,
                  timeouts=rec.timeouts + event.timed_out)
    end = event.start_time + event.duration_ms / 1000
    in_progress = rec.running_pid == event.pid and rec.last_start == event.start_time
    if not in_progress and job.last_end is not None and end < job.last_end:  # an older run
        return replace(job, record=rec), kinds
    if not failed and (rec.last_success is None or event.start_time > rec.last_success):
        rec = replace(rec, last_success=event.start_time)
    kinds += _log_transition(rec.log_problem, event.log_problem)
    rec = replace(rec, last_exit_status=event.exit_status, last_signal=event.signal,
                  last_duration_ms=event.duration_ms,
                  last_log_path=event.log_path or rec.last_log_path,
                  log_problem=event.log_problem, last_message=event.last_message)
    job = replace(job, last_end=end)
    newer_run = (rec.state in RUNNING_STATES and rec.running_pid not in (None, event.pid)
                 and rec.last_start is not None and rec.last_start > event.start_time)
    state = JobState.timedOut if event.timed_out else JobState.failed if failed else JobState.ok
    if newer_run:  # another run started since: it keeps the row's state
        return replace(job, record=replace(rec, last_result=state),
                       alarm=failed or job.alarm), kinds
    if rec.last_start is None or event.start_time > rec.last_start:
        rec = replace(rec, last_start=event.start_time,
                      next_expected=schedule.next_after(cadence, event.start_time, cron_zone))
    if not failed and job.alarm:
        kinds.append(NotificationKind.recovered)
    elif not failed and rec.state in CLEARED_BY_SUCCESS:
        kinds.append(NotificationKind.cleared)
    return replace(job, record=replace(rec, state=state, last_result=state, running_pid=None),
                   alarm=failed), kinds


def note_start(job: Job, start: float, cadence: Cadence, cron_zone: str, window: int
               ) -> tuple[Job, StartBurst | None]:
    """Remember a start; a StartBurst when it makes the job's last `window` starts a new burst.

    A burst: the schedule has fewer than one start in TOO_OFTEN_FACTOR of the `window` starts'
    time span (first start's slot to last start), for instance 10 starts of a daily job in a
    day.  Raised once: the job stays in the burst until its last `window` starts fit its
    schedule again.  A job without a schedule or period is never judged.
    """
    if window < 2:
        return job, None
    starts = tuple(sorted((*job.recent_starts, start)))[-window:]
    job = replace(job, recent_starts=starts)
    if len(starts) < window:
        return job, None
    expected = _slots_within(cadence, starts[0], starts[-1], cron_zone,
                             limit=window // TOO_OFTEN_FACTOR)
    if expected is None:
        return job, None
    burst = expected * TOO_OFTEN_FACTOR < window
    if burst == job.in_burst:
        return job, None
    job = replace(job, in_burst=burst)
    return job, StartBurst(window, expected, starts[0]) if burst else None


def _slots_within(cadence: Cadence, first: float, last: float, cron_zone: str, limit: int
                  ) -> int | None:
    """1 (the first start's own slot) + the schedule's slots after `first` up to `last`,
    counting no further than `limit` + 1; None when the job has no schedule or period."""
    slots = 1
    slot = schedule.next_after(cadence, first, cron_zone)
    if slot is None:
        return None
    while slot <= last and slots <= limit:
        slots += 1
        slot = schedule.next_after(cadence, slot, cron_zone) or math.inf
    return slots


def with_run(job: Job, event: Finished, late: bool, keep: int) -> Job:
    """The job with its just counted run added to its history, keeping the newest `keep`."""
    failed = event.exit_status != 0 or event.signal != 0
    result = JobState.timedOut if event.timed_out else JobState.failed if failed else JobState.ok
    run = RunRecord(job.record.runs, event.start_time, event.duration_ms, event.exit_status,
                    event.signal, result, late)
    history = (*job.record.history, run)[-keep:] if keep > 0 else ()
    return replace(job, record=replace(job.record, history=history))


def trim_history(jobs: dict[JobKey, Job], keep: int) -> dict[JobKey, Job]:
    """The jobs with at most `keep` runs of history each (run_history may have shrunk)."""
    return {key: job if len(job.record.history) <= keep else replace(
        job, record=replace(job.record, history=job.record.history[len(job.record.history)
                                                                    - keep:]))
            for key, job in jobs.items()}


def _log_transition(before: str | None, after: str | None) -> list[NotificationKind]:
    """One notification when runs start failing to log (an outage), one when they log again."""
    if after and not before:
        return [NotificationKind.log_failing]
    if before and not after:
        return [NotificationKind.log_recovered]
    return []


def _overlapped(job: Job, event: Overlapped, cadence: Cadence, cron_zone: str
                ) -> tuple[Job, list[NotificationKind]]:
    rec = replace(job.record, overlaps=job.record.overlaps + 1)
    if job.last_end is not None and event.time <= job.last_end and rec.state not in RUNNING_STATES:
        # the holder has finished since (a late, spooled overlap): no new state, but the
        # overlap did happen and is notified like any other
        return replace(job, record=rec), [NotificationKind.overlapped]
    rec = replace(rec, running_pid=event.holder_pid or rec.running_pid,
                  next_expected=schedule.next_after(cadence, event.time, cron_zone)
                  or rec.next_expected)
    if event.lost_wrapper_pid is None:
        return replace(job, record=replace(rec, state=JobState.overlapped)), [
            NotificationKind.overlapped]
    # the holder is a run whose wrapper was killed: that run is lost (announced once)
    kinds = [] if rec.state == JobState.wrapperLost else [NotificationKind.wrapper_lost]
    rec = replace(rec, state=JobState.wrapperLost, last_result=JobState.wrapperLost)
    return replace(job, record=rec, alarm=True), [*kinds, NotificationKind.overlapped]


def job_json(job: Job, cadence: Cadence) -> dict[str, Any]:
    """The JSON of one job in a status reply (documented in docs/agent.md)."""
    rec = job.record
    return {
        "owner_uid": rec.key.owner_uid, "owner": rec.owner, "name": rec.key.name,
        "state": rec.shown_state.name, "runs": rec.runs, "failures": rec.failures,
        "overlaps": rec.overlaps, "timeouts": rec.timeouts, "misses": rec.misses,
        "last_exit_status": rec.last_exit_status, "last_signal": rec.last_signal,
        "last_start": rec.last_start, "last_success": rec.last_success,
        "last_duration_ms": rec.last_duration_ms, "running_pid": rec.running_pid,
        "next_expected": rec.next_expected, "last_log_path": rec.last_log_path,
        "log_problem": rec.log_problem, "paused_until": rec.paused_until,
        "last_result": rec.last_result.name, "counters_since": rec.counters_since,
        "source": rec.source.name, "start_problem": rec.start_problem,
        "cadence": {k: v for k, v in asdict(cadence).items() if v is not None},
        "history": [run_json(run) for run in rec.history],
    }


def run_json(run: RunRecord) -> dict[str, Any]:
    """One run of a job's history in a status reply, oldest first (docs/agent.md)."""
    return {"number": run.number, "start": run.start, "duration_ms": run.duration_ms,
            "exit_status": run.exit_status, "signal": run.signal, "result": run.result.name,
            "late": run.late}
