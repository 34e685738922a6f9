"""The job table's single writer: queued changes applied in batches, each committed durably
before its answers are given and its notifications published."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .config import Config
from .eventids import OwnedId, RememberedIds
from .model import (
    AgentStats,
    CronDaemon,
    CronLogState,
    DaemonNotification,
    JobKey,
    JobRecord,
    JobTableListener,
    Notification,
    NotificationHub,
    NotificationKind,
)
from .ratelimit import OWNER_LINES
from .store import Job, Store
from .transitions import durations
from .transitions.door import Statistic
from .transitions.outcome import LIFE_KINDS, EventFacts, Raised
from .transitions.runs import trim_history

log = logging.getLogger("cronwrap.agent.core")  # the core's lines, under one name for operators

MAX_BATCH = 2000
PRUNE_EVERY = 3600.0
DAEMON_STATE = "cron daemon"  # the cron daemon's state among the sources' kept states


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
        if held is None:
            self._held[(key, notification.kind)] = notification
            return False
        # the drain takes files in no order of time: keep the newest run's facts, with the row
        # as the latest event left it
        newest = notification if _run_time(notification) >= _run_time(held) else held
        self._held[(key, notification.kind)] = replace(
            newest, job=notification.job, run_count=held.run_count + 1)
        return False

    def flush(self) -> list[Notification]:
        held = list(self._held.values())
        self._sent.clear()
        self._held.clear()
        return held


def _run_time(notification: Notification) -> float:
    """When the run a notification is about started (its event's time if it names no run)."""
    return notification.run_time if notification.run_time is not None else notification.time


class Rejected(Exception):
    """An event that is valid on the wire but refused by policy (e.g. the per-owner job cap).

    str() is the one-line reason the sender gets; `cause` the class of refusal the agent logs
    it under (never the event's own values: see ratelimit.RateLimitedLog).
    """

    def __init__(self, problem: str, cause: str = "refused event") -> None:
        super().__init__(problem)
        self.cause = cause


class RowRefused(Rejected):
    """A new row refused at its owner's max_jobs_per_owner; the core has counted and logged it
    (cronJobRowsRefused, one line a minute per owner), so sources say nothing more."""


class Unavailable(Rejected):
    """The batch could not be committed; nothing in it was applied, the sender should retry."""


class NoSuchJob(Exception):
    """A request (forget, pause, resume) about a job the agent does not know: nothing changed."""


@dataclass
class Batch:
    """The changes made by one group of queued items, applied over the committed state."""

    base: dict[JobKey, Job]
    applied_base: RememberedIds
    jobs: dict[JobKey, Job] = field(default_factory=dict)
    removed: set[JobKey] = field(default_factory=set)
    applied: dict[OwnedId, float] = field(default_factory=dict)  # (owner, id): when
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
    rows_refused: int = 0  # new rows refused at max_jobs_per_owner
    daemon_base: CronDaemon = field(default_factory=CronDaemon)  # the cron daemon, committed
    daemon: CronDaemon | None = None  # the cron daemon as this batch changed it
    daemon_raised: list[NotificationKind] = field(default_factory=list)  # about the daemon

    def current_daemon(self) -> CronDaemon:
        """The cron daemon as the batch has it so far."""
        return self.daemon or self.daemon_base

    def get(self, key: JobKey) -> Job | None:
        if key in self.removed:
            return None
        return self.jobs.get(key) or self.base.get(key)

    def put(self, job: Job) -> None:
        key = job.record.key
        self.removed.discard(key)
        self.jobs[key] = job

    def remove(self, key: JobKey) -> None:
        self.jobs.pop(key, None)
        self.removed.add(key)

    def seen(self, owner_uid: int, event_id: str) -> bool:
        """Whether the owner's event `event_id` is in doubt: applied, a copy may come again."""
        owned = (owner_uid, event_id)
        return owned in self.applied or owned in self.applied_base

    def forgotten_at(self, key: JobKey) -> float | None:
        """When `key` was last forgotten (None: never, or long enough ago to be pruned)."""
        return self.forgotten.get(key, self.forgotten_base.get(key))

    def empty(self) -> bool:
        return not (self.jobs or self.removed or self.applied or self.accepted or self.rejected
                    or self.source_states or self.cron_log_entries or self.rows_refused
                    or self.daemon)


@dataclass
class _Item:
    """One queued change; `apply` runs in the writer, `future` resolves after the commit."""

    apply: Callable[[Batch], Any]
    future: asyncio.Future[Any] | None


_STOP = _Item(lambda batch: None, None)


class Writer:
    """Holds the committed job table; applies queued changes in batches, one commit each, then
    answers their senders and tells listeners (the SNMP front ends) and notification senders."""

    def __init__(
        self, store: Store, config: Config, clock: Callable[[], float] = time.time
    ) -> None:
        self.notifications = NotificationHub(config.notifications_per_owner)
        self.config = config
        self._store = store
        self._clock = clock
        self._jobs = durations.refresh(trim_history(store.load_jobs(), config.run_history), config)
        counters = store.load_counters()
        self._accepted = counters["events_accepted"]
        self._rejected = counters["events_rejected"]
        self._applied = RememberedIds(config.event_ids_per_owner)
        # ids pushed out as the store's were loaded (a lower event_ids_per_owner) and ids
        # settled since the last commit: deleted from the store with the next commit
        self._dropped_ids = self._applied.add_all(
            store.load_applied(clock() - config.applied_retention))
        self._forgotten = store.load_forgotten()
        self._source_states = store.load_source_states()
        self._cron_log_entries = counters.get("cron_log_entries", 0)
        self._rows_refused = counters.get("rows_refused", 0)
        self.cron_daemon = CronDaemon.from_json(self._source_states.get(DAEMON_STATE))
        self.cron_log_state = CronLogState.disabled
        # spooled events not applied yet, per owner uid, as the spool drain last counted them
        self.spool_backlog: dict[int, int] = {}
        self._last_prune = 0.0
        # why events cannot be stored now (None: they can); logged once per outage
        self.storage_problem: str | None = store.problem
        self._per_owner = Counter(key.owner_uid for key in self._jobs)
        self._started_at = clock()
        self._table_changed_at: float | None = None  # a row added or removed since the start
        self._listeners: list[JobTableListener] = []
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._late = LateNotifications(config.late_notifications_per_job)
        # what the door's per-owner budgets made wait: "events" (refused, the wrapper spools
        # them) and "status" (slices of status work), since the start (cronEventsDeferred...)
        self.deferred: Counter[str] = Counter()

    # ---- what the front ends and the sources read ----

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
                          self.config.run_history, sum(self.spool_backlog.values()),
                          self._rows_refused,
                          events_deferred=self.deferred[Statistic.events_deferred.value],
                          status_deferred=self.deferred[Statistic.status_deferred.value],
                          log_lines_left_out=OWNER_LINES.left_out,
                          cron_daemon=self.cron_daemon)

    def set_cron_log_state(self, state: CronLogState) -> None:
        """Whether cron's log is followed (cronLogSource); listeners see it at once."""
        if state != self.cron_log_state:
            self.cron_log_state = state
            self._publish_stats()

    def _publish_stats(self) -> None:
        for listener in self._listeners:
            listener.stats_changed(self.stats())

    def jobs(self) -> dict[JobKey, Job]:
        return self._jobs

    def room_for_job(self, batch: Batch, owner_uid: int) -> bool:
        """Whether `batch` may add a row for `owner_uid` (max_jobs_per_owner); counts it."""
        if self._per_owner[owner_uid] + batch.new_per_owner[owner_uid] >= \
                self.config.max_jobs_per_owner:
            return False
        batch.new_per_owner[owner_uid] += 1
        return True

    def ids_in_doubt(self, owner_uid: int) -> int:
        """How many of the owner's applied events may still come again (eventids)."""
        return self._applied.count(owner_uid)

    def ids_in_doubt_full(self, owner_uid: int) -> bool:
        """Whether the owner has event_ids_per_owner events in doubt (eventids.RememberedIds):
        its socket events are answered busy until retries drained settle some."""
        return self._applied.full(owner_uid)

    def settle(self, owner_uid: int, event_ids: Iterable[str]) -> None:
        """No copy of these applied events can arrive any more (their reply was queued to the
        wrapper, their spool files unlinked): forgotten now, deleted from the store with the
        next commit."""
        for event_id in event_ids:
            if self._applied.settle(owner_uid, event_id):
                self._dropped_ids.append((owner_uid, event_id))

    def source_state(self, name: str) -> str | None:
        """The state event source `name` last committed with a batch (None: never)."""
        return self._source_states.get(name)

    def flush_late(self) -> None:
        """Publish the coalesced late notifications held since the last flush (a drain's end)."""
        now = self._clock()
        for notification in self._late.flush():
            self.notifications.publish(replace(notification, time=now))

    def reject(self) -> None:
        """Count an event refused before reaching the core (persisted with the next batch)."""
        self._queue.put_nowait(_Item(self._count_rejection, None))

    async def _enqueue(self, apply: Callable[[Batch], Any]) -> Any:
        return await self._put(apply)

    def _put(self, apply: Callable[[Batch], Any]) -> asyncio.Future[Any]:
        """Queue `apply`; the future resolves once its batch is committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(apply, future))
        return future

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
        batch = Batch(self._jobs, self._applied, forgotten_base=self._forgotten,
                      daemon_base=self.cron_daemon)
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
        if batch.daemon is not None:  # kept with the misses it holds, in one transaction
            batch.source_states[DAEMON_STATE] = batch.daemon.to_json()
        now = self._clock()
        prune = None
        if now - self._last_prune > PRUNE_EVERY:
            prune = now - self.config.applied_retention
        pending, self._dropped_ids = self._dropped_ids, []
        dropped = pending + self._applied.overflow(batch.applied)
        try:
            await asyncio.to_thread(self._commit, batch, prune, dropped)
        except Exception as exc:  # noqa: BLE001 - the disk failed: nothing was acked
            self._dropped_ids = pending + self._dropped_ids
            self._storage_failed(exc)
            failure = Unavailable("the agent cannot store events right now")
            outcomes = [(False, failure)] * len(items)
        else:
            self._storage_works()
            if prune is not None:
                self._last_prune = now
                self._applied.prune(prune)
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

    def _commit(self, batch: Batch, prune: float | None, dropped_ids: list[OwnedId]) -> None:
        """Runs in a worker thread; touches nothing but the store."""
        counters = {"events_accepted": self._accepted + batch.accepted,
                    "events_rejected": self._rejected + batch.rejected,
                    "cron_log_entries": self._cron_log_entries + batch.cron_log_entries,
                    "rows_refused": self._rows_refused + batch.rows_refused}
        applied = [(event_id, when, owner) for (owner, event_id), when in batch.applied.items()]
        self._store.commit(batch.jobs.values(), batch.removed, applied, counters, prune,
                           batch.forgotten.items(), batch.source_states, dropped_ids)

    def _install(self, batch: Batch) -> None:
        now = self._clock()
        if batch.removed & set(self._jobs) or set(batch.jobs) - set(self._jobs):
            self._table_changed_at = now
        self._jobs.update(batch.jobs)
        for key in batch.removed:
            self._jobs.pop(key, None)
        self._per_owner = Counter(key.owner_uid for key in self._jobs)
        for (owner, event_id), when in batch.applied.items():
            self._applied.add(event_id, when, owner)  # pushes out what overflow() dropped
        self._forgotten.update(batch.forgotten)
        self._accepted += batch.accepted
        self._rejected += batch.rejected
        self._source_states.update(batch.source_states)
        self._cron_log_entries += batch.cron_log_entries
        self._rows_refused += batch.rows_refused
        if batch.daemon is not None:
            self.cron_daemon = batch.daemon
        for kind in batch.daemon_raised:
            self.notifications.publish(DaemonNotification(kind, self.cron_daemon, now))
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
                                        message=facts.message, anomaly=facts.anomaly)
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

