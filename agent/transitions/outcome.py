"""What a transition returns: the row after the event, the notifications it raises, and why."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cronwrap.wrapper.events import Cadence

from ..config import Config
from ..model import (
    CronDaemon,
    DurationAnomaly,
    JobKey,
    JobRecord,
    JobState,
    NotificationKind,
    StartBurst,
)
from ..store import Job

RUNNING_STATES = frozenset({JobState.running, JobState.overlapped, JobState.overrunning})
# Notifications about a job's life itself: sent even while it is paused.
LIFE_KINDS = frozenset({NotificationKind.forgotten, NotificationKind.retired})


@dataclass(frozen=True)
class EventFacts:
    """What a notification tells about its event itself, not about the row."""

    time: float | None = None  # when it happened (None: when the agent noticed it)
    exit_status: int | None = None  # a finished run's exit status
    signal: int = 0  # the signal that ended a finished run
    message: str | None = None  # a finished run's last line of output (--last-message)
    anomaly: DurationAnomaly | None = None  # the duration bound a successful run broke


@dataclass(frozen=True)
class Raised:
    """A notification a transition raised; published with the job's row once it is committed."""

    kind: NotificationKind
    key: JobKey
    run_time: float | None = None  # the start of the run it is about (overlapped: the attempt)
    late: bool = False  # the event came from the spool
    # the row as the event left it, whatever later events of the batch do (also for a job the
    # event removed: forgotten); None: the row as the batch leaves it
    record: JobRecord | None = None
    requester: str | None = None  # who asked (cronwrap forget)
    facts: EventFacts | None = None  # the event's own exit status, signal and time
    burst: StartBurst | None = None  # cronJobRunsTooOften: the starts that were too many


@dataclass(frozen=True)
class Context:
    """What a transition may know beyond the row: the time, the configuration, how to find
    a job's cadence (the crontab's schedule when the events gave none) and the cron daemon."""

    now: float
    config: Config
    cadence_of: Callable[[Job], Cadence]
    cron_daemon: CronDaemon = CronDaemon()


@dataclass(frozen=True)
class Outcome:
    """The row after an event (None: there is none, or it was removed) and what it raised."""

    job: Job | None
    raised: tuple[Raised, ...] = ()
    # rate-limited log lines about the job, (cause, text): its owner can cause them
    warnings: tuple[tuple[str, str], ...] = ()
    slots: int = 0  # expected starts evaluated (TimePassed: spent from the owner's budget)
    held_misses: int = 0  # misses the cron daemon's outage caused: no cronJobMissed of their own


def raised(job: Job, kinds: Iterable[NotificationKind], run_time: float | None = None,
           late: bool = False, facts: EventFacts | None = None) -> tuple[Raised, ...]:
    """The notifications `kinds` about `job`'s row as it is now."""
    return tuple(Raised(kind, job.record.key, run_time, late, job.record, facts=facts)
                 for kind in kinds)


def utc_text(when: float) -> str:
    """`when` (wall clock) as an ISO 8601 UTC time, for log lines."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
