"""Transitions at the agent's door: a refused row or deferred work changes no job row; each
decides which agent-wide statistic counts it and what its owner's one log line says."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..config import Config
from ..lifeevents import Deferral, DoorEvent, RowOverLimit, WorkDeferred


class Statistic(Enum):
    """The agent-wide counters door events add to (AgentStats, CRON-JOBS-MIB scalars)."""

    rows_refused = "rows_refused"  # cronJobRowsRefused, kept across restarts
    events_deferred = "events_deferred"  # cronEventsDeferred, since the agent started
    status_deferred = "status_deferred"  # cronStatusDeferred, since the agent started
    crontab_reads_deferred = "crontab_reads_deferred"  # said in the log only (no MIB object)


class DoorLog(Enum):
    """Which of the core's rate-limited logs a door line goes to (its prefix)."""

    job_limit = "job limit"
    refused_event = "rejected event"
    drain = "spool drain deferred"
    crontab = "crontab"


@dataclass(frozen=True)
class DoorLine:
    """One line about the owner: a log, a class of problem (never the user's text), detail."""

    log: DoorLog
    cause: str
    detail: str


@dataclass(frozen=True)
class DoorOutcome:
    """What a door event counts (None: nothing) and the line it logs (None: none)."""

    counted: Statistic | None
    line: DoorLine | None


def door_transition(event: DoorEvent, config: Config) -> DoorOutcome:
    """The statistic and the line of a refused row or of deferred work."""
    if isinstance(event, RowOverLimit):
        return _row_over_limit(event, config)
    return _work_deferred(event, config)


def _row_over_limit(event: RowOverLimit, config: Config) -> DoorOutcome:
    if event.again:  # a crontab line refused since an earlier scan: counted and said then
        return DoorOutcome(None, None)
    key, limit = event.key, config.max_jobs_per_owner
    return DoorOutcome(Statistic.rows_refused, DoorLine(DoorLog.job_limit, "rows", (
        f"{event.owner} (uid {key.owner_uid}) has {limit} jobs, the limit ([agent] "
        f"max_jobs_per_owner): no row for job {key.name} from {event.where}; new jobs of "
        f"{event.owner} are refused, whatever their source (cronJobRowsRefused)")))


def _work_deferred(event: WorkDeferred, config: Config) -> DoorOutcome:
    if event.work in (Deferral.event, Deferral.event_in_doubt):
        cause = "over the event rate" if event.work == Deferral.event else "events in doubt"
        return DoorOutcome(Statistic.events_deferred,
                           DoorLine(DoorLog.refused_event, cause, event.why))
    if event.work == Deferral.status:  # the request waits and is served: no line
        return DoorOutcome(Statistic.status_deferred, None)
    if event.work == Deferral.crontab:
        return DoorOutcome(Statistic.crontab_reads_deferred,
                           DoorLine(DoorLog.crontab, "crontab read deferred", event.why))
    return DoorOutcome(None, DoorLine(DoorLog.drain, "over budget", (
        f"{event.left} spooled events of uid {event.owner_uid} left for later passes: over the "
        f"drain budget of {config.spool_events_per_second} events a second per user "
        "([agent] spool_events_per_second)")))
