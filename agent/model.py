"""The agent's shared vocabulary: job records, agent statistics and notification events.

The core (state store, intake, watchers) produces these; the SNMP front ends (AgentX session,
standalone responder) only read them.  The records are immutable; NotificationHub is the
one mutable piece (its subscribers' queues).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from .ratelimit import OwnerBudget, RateLimitedLog

log = logging.getLogger(__name__)


class JobState(enum.IntEnum):
    """Values of CRON-JOBS-MIB::cronJobState (the MIB is the source of truth)."""

    ok = 1
    failed = 2
    running = 3
    overlapped = 4
    timedOut = 5
    missed = 6
    overrunning = 7
    unknown = 8
    paused = 9  # shown while a pause lasts (JobRecord.paused_until); never stored as `state`
    retired = 10  # its crontab line is gone and it stopped running: nothing is expected
    wrapperLost = 12
    durationAnomaly = 20  # the last run succeeded, in a time outside its bounds
    ignoredByCron = 21  # cron will never run its crontab line (JobRecord.ignored_by_cron)
    cronNotRunning = 22  # missed: its expected start fell while the cron daemon was not running


# The values cronJobLastResult takes: outcomes of a run, never an activity.
RESULTS: tuple[JobState, ...] = (JobState.ok, JobState.failed, JobState.timedOut,
                                 JobState.missed, JobState.unknown, JobState.wrapperLost,
                                 JobState.durationAnomaly, JobState.cronNotRunning)
# How a finished run can end (cronJobRunResult).
RUN_RESULTS: tuple[JobState, ...] = (JobState.ok, JobState.failed, JobState.timedOut,
                                     JobState.durationAnomaly)


class JobSource(enum.IntEnum):
    """Values of CRON-JOBS-MIB::cronJobSource: where a row's runs are learnt from."""

    wrapper = 1  # the cronwrap wrapper's events
    cron_log = 2  # cron's own log in the journal (a crontab line that is not wrapped)


class CronDaemonState(enum.IntEnum):
    """Values of CRON-JOBS-MIB::cronDaemonState: whether the cron daemon runs."""

    running = 1
    stopped = 2  # its unit is inactive (stopped, or starting again), or no cron process runs
    failed = 3  # its unit failed: cron crashed or was killed
    masked = 4  # its unit is masked: nothing can start it
    absent = 5  # no such unit, or no pid file: no cron daemon to watch here
    unknown = 6  # not watched ([agent] cron_daemon = "off"), or the agent cannot tell

    @property
    def down(self) -> bool:
        """Whether a cron daemon that runs jobs here is not running (absent, unknown: no)."""
        return self in (CronDaemonState.stopped, CronDaemonState.failed, CronDaemonState.masked)


@dataclass(frozen=True)
class CronDaemon:
    """What the agent knows of the cron daemon (cronDaemonState and the scalars beside it).

    An outage starts when cron is seen not running and ends when it is seen running again;
    times are wall-clock seconds since the epoch.
    """

    state: CronDaemonState = CronDaemonState.unknown
    since: float | None = None  # when it entered `state`, as systemd or the agent saw it
    down_since: float | None = None  # when the current or last outage began (None: none yet)
    up_again: float | None = None  # when the last outage ended (None: it goes on, or none)
    reported: bool = False  # the current or last outage raised cronDaemonNotRunning
    misses: int = 0  # expected starts the current or last outage made jobs miss
    outages: int = 0  # outages reported since the state was created (cronDaemonOutages)

    def caused(self, slot: float) -> bool:
        """Whether an expected start at `slot` fell in the current or last outage."""
        return (self.down_since is not None and self.down_since <= slot
                and (self.up_again is None or slot < self.up_again))

    def to_json(self) -> str:
        data = asdict(self)
        data["state"] = int(self.state)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> CronDaemon:
        """The state kept in the store (a fresh one when there is none or it is unreadable)."""
        try:
            data = json.loads(text or "")
            return cls(**{**data, "state": CronDaemonState(data["state"])})
        except (ValueError, KeyError, TypeError):
            return cls()


class CronLogState(enum.IntEnum):
    """Values of CRON-JOBS-MIB::cronLogSource: whether the agent follows cron's log."""

    disabled = 1
    following = 2
    unavailable = 3


@dataclass(frozen=True)
class JobKey:
    """A job is identified by its owner's uid (from SO_PEERCRED or the spool's owner) and name."""

    owner_uid: int
    name: str


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished run in its job's history (a row of cronJobRunTable)."""

    number: int  # its ordinal among the row's finished runs: cronJobRuns once it was counted
    start: float  # wall clock
    duration_ms: int
    exit_status: int
    signal: int
    result: JobState  # ok, failed, timedOut or durationAnomaly
    late: bool  # learnt from the spool, after the fact
    cpu_ms: int | None = None  # its processes' CPU time, user + system (None: not reported)
    max_rss_kib: int | None = None  # the peak RSS of its largest single process


class BoundKind(enum.IntEnum):
    """Values of CRON-JOBS-MIB::cronNotifyDurationBoundKind: which bound a run's duration broke."""

    minDuration = 1  # --min-duration
    maxDuration = 2  # --max-duration
    learnedLow = 3  # the job's own recent successful runs: shorter than they allow
    learnedHigh = 4  # the same: longer than they allow


@dataclass(frozen=True, slots=True)
class DurationStats:
    """A job's recent successful runs' durations (ms) and the bounds its next successful run is
    judged by (the tighter of --min/--max-duration and the learned ones; None: no bound)."""

    runs: int = 0  # how many successful runs the statistics are over
    minimum: int | None = None
    median: int | None = None
    maximum: int | None = None
    low: int | None = None
    low_kind: BoundKind | None = None
    high: int | None = None
    high_kind: BoundKind | None = None


@dataclass(frozen=True)
class DurationAnomaly:
    """A successful run whose duration broke a bound (cronJobDurationAnomaly)."""

    duration_ms: int
    bound_ms: int
    kind: BoundKind
    median_ms: int | None  # the learned median it was judged against, if any


# how a reason for ignoredByCron that cron's own log gave starts (discovery's reasons do not):
# the same problem seen by discovery and by cron's log is one problem, notified once
CRON_LOG_SAYS = "cron's log: "


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of cronJobTable.  Times are wall-clock seconds since the epoch, None if never."""

    key: JobKey
    owner: str  # the owner's user name, or the uid in decimal when it has none
    runs: int = 0
    failures: int = 0
    overlaps: int = 0
    timeouts: int = 0
    misses: int = 0
    last_exit_status: int | None = None
    last_signal: int = 0
    last_start: float | None = None
    last_success: float | None = None
    last_duration_ms: int | None = None
    state: JobState = JobState.unknown
    running_pid: int | None = None
    next_expected: float | None = None
    last_log_path: str | None = None
    log_problem: str | None = None  # why the last finished run could not write its log
    paused_until: float | None = None  # `cronwrap pause`: no notifications, no misses until then

    @property
    def shown_state(self) -> JobState:
        """cronJobState: `paused` while a pause lasts, else the state its runs left."""
        return JobState.paused if self.paused_until is not None else self.state
    last_result: JobState = JobState.unknown  # the last outcome (one of RESULTS), not activity
    counters_since: float | None = None  # when the counters started from zero (the row's birth)
    source: JobSource = JobSource.wrapper
    start_problem: str | None = None  # why the last run's wrapper did not start (cron's log)
    history: tuple[RunRecord, ...] = ()  # the last finished runs, oldest first (cronJobRunTable)
    last_message: str | None = None  # the last run's last line of output, if its job sends it
    line_gone: str | None = None  # why it is expected with no line to run it (cronJobLineGone)
    ignored_by_cron: str | None = None  # why cron will never run its line (cronJobIgnoredByCron)
    outputs_discarded: int = 0  # runs whose output cron discarded (cronJobOutputsDiscarded)
    duration_anomalies: int = 0  # successful runs outside their duration bounds
    durations: DurationStats = DurationStats()
    last_cpu_ms: int | None = None  # the last finished run's CPU time (RunRecord.cpu_ms)
    last_max_rss_kib: int | None = None  # its largest process's peak RSS (RunRecord.max_rss_kib)
    command_line: str | None = None  # its crontab line's command as cron logs it, if known


@dataclass(frozen=True)
class AgentStats:
    """The agent-wide scalars of CRON-JOBS-MIB."""

    job_count: int
    events_accepted: int
    events_rejected: int
    started_at: float  # wall clock
    notifications_suppressed: int = 0  # by the per-owner limit, since started_at
    table_changed_at: float | None = None  # a row last added or removed; None: not since start
    cron_log: CronLogState = CronLogState.disabled
    cron_log_entries: int = 0  # cron's job lines applied, since the state was created
    run_history: int = 0  # finished runs kept per job (cronJobRunHistorySize)
    spool_backlog: int = 0  # spooled events seen in the spool and not applied yet
    rows_refused: int = 0  # new rows refused at max_jobs_per_owner, since the state was created
    events_deferred: int = 0  # socket events refused over their owner's rate, since started_at
    status_deferred: int = 0  # status slices made to wait for their owner's budget, since then
    log_lines_left_out: int = 0  # log lines about users' doings left out, since started_at
    cron_daemon: CronDaemon = field(default_factory=CronDaemon)  # cronDaemonState and beside it


class NotificationKind(enum.Enum):
    """One per NOTIFICATION-TYPE in CRON-JOBS-MIB; values are the MIB's descriptors."""

    failed = "cronJobFailed"
    overlapped = "cronJobOverlapped"
    timed_out = "cronJobTimedOut"
    missed = "cronJobMissed"
    overrunning = "cronJobOverrunning"
    recovered = "cronJobRecovered"
    log_failing = "cronJobLogFailing"
    log_recovered = "cronJobLogRecovered"
    forgotten = "cronJobForgotten"
    retired = "cronJobRetired"
    wrapper_lost = "cronJobWrapperLost"
    cleared = "cronJobCleared"
    runs_too_often = "cronJobRunsTooOften"
    not_started = "cronJobNotStarted"
    duration_anomaly = "cronJobDurationAnomaly"
    crontab_ignored = "cronCrontabIgnored"
    output_discarded = "cronJobOutputDiscarded"
    cron_not_running = "cronDaemonNotRunning"
    cron_running = "cronDaemonRunning"


# Notifications about the cron daemon, not about a job (DaemonNotification).
DAEMON_KINDS = frozenset({NotificationKind.cron_not_running, NotificationKind.cron_running})


@dataclass(frozen=True)
class StartBurst:
    """Starts of a job far more frequent than its schedule allows (cronJobRunsTooOften)."""

    starts: int  # the starts counted (the agent's too_often_starts)
    expected: int  # the starts the schedule has in the same time
    since: float  # the first of those starts (wall clock)


@dataclass(frozen=True)
class Notification:
    """A state transition worth telling an NMS about, with the job's row as it became."""

    kind: NotificationKind
    job: JobRecord
    time: float  # wall clock
    late: bool = False  # about a run the agent learnt from the spool, after the fact
    run_time: float | None = None  # when the run it is about started (wall clock), if any
    run_count: int = 1  # how many runs it stands for (more than 1: late ones coalesced)
    requester: str | None = None  # who asked (cronwrap forget): a user name or a uid
    exit_status: int | None = None  # the finished run's own exit status (None: not a run's end)
    signal: int = 0  # the signal that ended the finished run
    event_time: float | None = None  # when the event happened (None: when it was noticed)
    burst: StartBurst | None = None  # cronJobRunsTooOften: the starts that were too many
    message: str | None = None  # the finished run's own last line of output (--last-message)
    anomaly: DurationAnomaly | None = None  # cronJobDurationAnomaly: the bound the run broke


@dataclass(frozen=True)
class DaemonNotification:
    """A change of the cron daemon worth telling an NMS about (one of DAEMON_KINDS), with what
    the agent knows of the daemon as it became."""

    kind: NotificationKind
    daemon: CronDaemon
    time: float  # wall clock


AnyNotification = Notification | DaemonNotification


class JobTableListener(Protocol):
    """What an SNMP front end implements to keep its snapshot of the table current."""

    def job_changed(self, record: JobRecord) -> None: ...

    def job_removed(self, key: JobKey) -> None: ...

    def stats_changed(self, stats: AgentStats) -> None: ...


class NotificationHub:
    """Fans notifications out to every subscribed sender through bounded queues.

    Each job owner may raise `per_owner` notifications a minute (a token bucket); the rest are
    counted in `suppressed` and logged at most once a minute per owner.  A full queue drops its
    oldest notification (counted in `dropped`) so a stalled sender never blocks the core or
    grows memory without bound.
    """

    def __init__(self, per_owner: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self._queues: list[asyncio.Queue[AnyNotification]] = []
        self._budget = OwnerBudget(per_owner, 60.0, clock)
        self._log = RateLimitedLog("notifications suppressed")
        self.dropped = 0
        self.suppressed = 0

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[AnyNotification]:
        queue: asyncio.Queue[AnyNotification] = asyncio.Queue(maxsize=maxsize)
        self._queues.append(queue)
        return queue

    def publish(self, notification: AnyNotification) -> bool:
        """Queue `notification` for every sender; False when the owner's limit held it back
        (the cron daemon's are the agent's own, two an outage: no owner's limit applies)."""
        if isinstance(notification, Notification):
            job = notification.job
            if not self._budget.take(job.key.owner_uid):
                self.suppressed += 1
                self._log.warning("over budget", f"{job.owner} (uid {job.key.owner_uid}): over "
                                  f"{self._budget.capacity} a minute: {notification.kind.value} "
                                  f"for {job.key.name} not sent ({self.suppressed} suppressed "
                                  "since start)", job.key.owner_uid)
                return False
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
                log.warning("notification queue full: dropped the oldest notification")
            queue.put_nowait(notification)
        return True
