"""The core's vocabulary: everything that can happen in a job's life, as small immutable events.

Sources (agent/sources/), the watcher and requests translate what they see into these events
and submit them to the core (`Txn.submit`); the core's transition function
(agent/transitions/) alone decides what each one does to the job's row and which
notifications it raises.  CronDaemonSeen is about no job: the cron daemon itself
(`Txn.see_daemon`, transitions/crond.py).  Times are wall-clock seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cronwrap.wrapper.events import Finished, Overlapped, Started

from .model import CronDaemonState, JobKey, JobSource
from .schedule import Discovered


@dataclass(frozen=True)
class RunReported:
    """A run's start, end or overlap, as its wrapper (socket or spool) or cron's log tells it."""

    key: JobKey
    owner: str
    event: Started | Finished | Overlapped
    late: bool = False  # learnt after the fact (the spool, or cron's log caught up on)
    source: JobSource = JobSource.wrapper  # who learnt it; the row says so from now on
    command_line: str | None = None  # cron's log: the plain line's command, as cron logs it


@dataclass(frozen=True)
class StartLogged:
    """cron logged a start without its pid (cron's default -L 1): no outcome will follow."""

    key: JobKey
    owner: str
    time: float
    command_line: str | None = None  # the plain line's command, as cron logs it


@dataclass(frozen=True)
class RunCut:
    """A run of a line that is not wrapped, which cron started (shell `pid`, at `start`) in an
    earlier boot and whose end was never logged."""

    key: JobKey
    pid: int
    start: float


@dataclass(frozen=True)
class WrapperNotStarted:
    """cron's shell for a wrapped line exited `status` (126, 127): unless the wrapper reported
    this run, cronwrap never started and the run is a failure."""

    key: JobKey
    owner: str
    start: float  # cron's start of the line
    end: float  # the shell's end
    status: int
    problem: str  # what went wrong, said the way cronJobStartProblem shows it


@dataclass(frozen=True)
class TimePassed:
    """The watcher looked at the job at `now`: a missed slot, an overrun, a lost wrapper, a
    pause that ended or a retirement may follow."""

    key: JobKey
    now: float
    pid_lost: bool  # its running wrapper's pid has been gone for dead_pid_grace
    in_crontab: bool  # a crontab line runs it
    slot_limit: int  # expected starts its owner may still evaluate in this pass (SlotBudget)


@dataclass(frozen=True)
class ClockJumped:
    """The wall clock jumped: the next expected start is counted from `now`, no miss declared."""

    key: JobKey
    now: float


@dataclass(frozen=True)
class ZoneChanged:
    """cron's zone changed (seen at `now`): its UTC offset went from `before` to `after` seconds
    east of UTC; the next expected start is recomputed in the new zone, no miss declared."""

    key: JobKey
    now: float
    before: int
    after: int


@dataclass(frozen=True)
class PauseAsked:
    """`cronwrap pause`: no notifications and no misses until `until`."""

    key: JobKey
    until: float


@dataclass(frozen=True)
class ResumeAsked:
    """`cronwrap resume`: the pause ends at `now`."""

    key: JobKey
    now: float


@dataclass(frozen=True)
class ForgetAsked:
    """`cronwrap forget`: the row and its counts are dropped at `now`."""

    key: JobKey
    requester: str  # who asked: a user name or a uid
    now: float


@dataclass(frozen=True)
class LineSeen:
    """A crontab scan found the job's line (`changed`: it differs from the previous scan's)."""

    key: JobKey
    found: Discovered
    changed: bool
    now: float


@dataclass(frozen=True)
class LineGone:
    """A crontab scan no longer finds the line the previous scan found for the job."""

    key: JobKey
    now: float


@dataclass(frozen=True)
class OutputDiscarded:
    """cron discarded a run's output (`No MTA installed, discarding output`) at `time`."""

    key: JobKey
    owner: str
    time: float
    source: JobSource  # a wrapped line's row is the wrapper's, even before its events


@dataclass(frozen=True)
class CronDaemonSeen:
    """The cron daemon was looked at, at `now`: it is in `state`, entered at `since` (as systemd
    tells it; None: the agent does not know, so the first look that saw it counts)."""

    state: CronDaemonState
    since: float | None
    now: float


@dataclass(frozen=True)
class LineRefused:
    """cron's log says, at `time`, that cron refused the crontab the job's line is in: it will
    not run the line, for `reason` (model.CRON_LOG_SAYS and cron's own words)."""

    key: JobKey
    reason: str
    time: float


LifeEvent = (RunReported | StartLogged | RunCut | WrapperNotStarted | TimePassed | ClockJumped
             | ZoneChanged | PauseAsked | ResumeAsked | ForgetAsked | LineSeen | LineGone
             | OutputDiscarded | LineRefused)


class Deferral(Enum):
    """What a per-owner budget at the agent's door made wait (nothing is dropped)."""

    event = "event"  # a socket event answered busy: its wrapper spools it (cronEventsDeferred)
    event_in_doubt = "event in doubt"  # the same, its owner having event_ids_per_owner in doubt
    status = "status"  # a slice of a status request waits for the rows budget (cronStatusDeferred)
    drain = "drain"  # spooled events left for the drain's later passes
    crontab = "crontab"  # a changed crontab's read put off for its owner's lines budget


@dataclass(frozen=True)
class WorkDeferred:
    """A per-owner budget at the door made `owner_uid`'s work wait."""

    owner_uid: int
    work: Deferral
    why: str = ""  # the budget it is over, as the agent says it (never the user's text)
    left: int = 0  # Deferral.drain: the owner's events still spooled


@dataclass(frozen=True)
class RowOverLimit:
    """A new row for `key` would pass its owner's max_jobs_per_owner: it is not made."""

    key: JobKey
    owner: str
    where: str  # where the job came from: "a crontab line", "a wrapper's event", "cron's log"
    again: bool = False  # a crontab line the previous scan refused too: counted once


DoorEvent = WorkDeferred | RowOverLimit
