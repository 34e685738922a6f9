"""Transitions of passing time: missed starts, overrunning runs, vanished wrappers, pauses that
end, jobs that retire, clock jumps and changes of cron's zone."""

from __future__ import annotations

import math
from dataclasses import replace

from cronwrap.wrapper.events import Cadence

from .. import cronclock, schedule
from ..config import Config
from ..lifeevents import ClockJumped, TimePassed, ZoneChanged
from ..model import CronDaemon, JobState, NotificationKind
from ..ratelimit import RateLimitedLog
from ..store import Job
from .life import end_pause
from .outcome import RUNNING_STATES, Context, Outcome, raised

# a job's missed slots counted in one pass (the next pass counts the rest): no more than the
# watcher's writer item holds (watch.WORK_PER_UPDATE), so one job's far backlog never makes an
# item of its owner's whole budget while other users' events wait
MAX_SLOTS_PER_PASS = 250
SLOTS_PER_OWNER_PER_PASS = 1000  # slots one owner's jobs may have evaluated in a pass together


def time_passed(job: Job, event: TimePassed, ctx: Context) -> Outcome:
    """`check` at the event's time, spending at most its slot limit; misses the cron daemon's
    outage caused are held (counted, no notification of their own: the daemon's is theirs)."""
    budget = SlotBudget(event.slot_limit)
    new, kinds = check(job, ctx.cadence_of(job), event.now, ctx.config, event.pid_lost,
                       event.in_crontab, budget, ctx.cron_daemon)
    held = 0
    if not kinds and new.record.state == JobState.cronNotRunning:
        held = new.record.misses - job.record.misses
    return Outcome(new, raised(new, kinds), slots=event.slot_limit - budget.left,
                   held_misses=held)


def clock_jumped(job: Job, event: ClockJumped, ctx: Context) -> Outcome:
    return Outcome(rebase(job, ctx.cadence_of(job), event.now, ctx.config.cron_timezone))


def zone_changed(job: Job, event: ZoneChanged, ctx: Context) -> Outcome:
    """A schedule read in cron's zone is expected again from now in the new zone, as cron sorts
    the move of its offset (cronclock.next_start); a job with a zone of its own (--tz, CRON_TZ)
    or only a period (--every) keeps its expectation, as does a retired job."""
    cadence = ctx.cadence_of(job)
    rec = job.record
    if (rec.state == JobState.retired or cadence.tz or not cadence.schedule
            or not schedule.is_valid_schedule(cadence.schedule)):
        return Outcome(job)
    shift = cronclock.Change(math.floor(event.now), event.before, event.after)
    upcoming = schedule.next_after(cadence, event.now, ctx.config.cron_timezone, shift)
    return Outcome(replace(job, record=replace(rec, next_expected=upcoming)))


class SlotBudget:
    """How many expected starts of one owner's jobs the watcher may still evaluate in a pass.

    A cron schedule's slots are evaluated one by one; an owner whose jobs report starts far in
    the past (a spooled run from 1970) spends their own budget, never another owner's time. A
    job evaluates at least one slot per pass, so every backlog shrinks.
    """

    def __init__(self, slots: int = SLOTS_PER_OWNER_PER_PASS) -> None:
        self.left = slots


def grace_for(cadence: Cadence, at: float, config: Config) -> float:
    """Declared grace, else the smaller of the default and a fraction of the period."""
    if cadence.grace is not None:
        return cadence.grace
    every = schedule.period(cadence, at, config.cron_timezone)
    if every is None:
        return config.default_grace
    return min(config.default_grace, every * config.grace_fraction)


def runtime_limit(cadence: Cadence, config: Config) -> float | None:
    """max_runtime if declared, else the timeout plus slack for the wrapper's own kill."""
    if cadence.max_runtime is not None:
        return cadence.max_runtime
    if cadence.timeout is not None:
        return cadence.timeout + config.timeout_slack
    return None


# lines about one job that its owner can cause at will (a pause of a second, a started run
# whose wrapper pid is dead): a line per owner and kind a minute, then a count
JOB_LINES = RateLimitedLog("watcher")


def check(job: Job, cadence: Cadence, now: float, config: Config, pid_lost: bool,
          in_crontab: bool = True, budget: SlotBudget | None = None,
          daemon: CronDaemon | None = None) -> tuple[Job, list[NotificationKind]]:
    """The job after the watcher looked at it at `now` (unchanged when nothing is due).

    Every expected start whose grace has run out counts as one miss, on the job's own grid
    (the cron schedule, or --every's period from the last start); one notification per pass.
    A paused job misses nothing.  `in_crontab`: a crontab line runs the job; without one, a
    job that stopped running is retired once `retire_after_periods` passes in a row have found
    it missed.  `budget`: the owner's slots left in this pass (see SlotBudget).  Misses whose
    first slot fell while the cron `daemon` was not running are the outage's: state
    cronNotRunning, no notification, no step towards retirement.
    """
    zone = config.cron_timezone
    rec = job.record
    if rec.paused_until is not None and now >= rec.paused_until:
        JOB_LINES.warning("pause ended", f"job {rec.key.name} of {rec.owner}: its pause has "
                          "ended", rec.key.owner_uid)
        return end_pause(job, cadence, now, zone), []
    if rec.state == JobState.retired:
        return job, []
    if rec.state in RUNNING_STATES:
        if pid_lost:
            JOB_LINES.warning("wrapper gone", (
                f"job {rec.key.name} of {rec.owner}: wrapper pid {rec.running_pid} is gone "
                "without a finish event; state set to wrapperLost"), rec.key.owner_uid)
            return replace(job, record=replace(rec, state=JobState.wrapperLost,
                                               last_result=JobState.wrapperLost), alarm=True), [
                NotificationKind.wrapper_lost]
        limit = runtime_limit(cadence, config)
        if (rec.state != JobState.overrunning and limit is not None
                and rec.last_start is not None and now - rec.last_start > limit):
            return replace(job, record=replace(rec, state=JobState.overrunning)), [
                NotificationKind.overrunning]
        if rec.next_expected is not None and now > rec.next_expected:  # still running: no miss
            return replace(job, record=replace(
                rec, next_expected=schedule.next_on_grid(cadence, rec.next_expected, now, zone))
            ), []
        return job, []
    if rec.next_expected is None:
        upcoming = schedule.next_after(cadence, now, zone)
        if upcoming is None:  # nothing declared, and no line's schedule known
            return job, []
        return replace(job, record=replace(rec, next_expected=upcoming)), []
    limit = MAX_SLOTS_PER_PASS if budget is None else max(1, min(MAX_SLOTS_PER_PASS, budget.left))
    missed, slot = missed_slots(cadence, rec.next_expected, now, config, limit)
    if budget is not None:
        budget.left -= missed
    if not missed:
        return job, []
    if rec.paused_until is not None:  # paused: slots that pass are not missed
        return replace(job, record=replace(rec, next_expected=slot)), []
    if daemon is not None and daemon.caused(rec.next_expected):
        return replace(job, record=replace(
            rec, state=JobState.cronNotRunning, last_result=JobState.cronNotRunning,
            misses=rec.misses + missed, next_expected=slot)), []
    rec = replace(rec, state=JobState.missed, last_result=JobState.missed,
                  misses=rec.misses + missed, next_expected=slot)
    # Towards retirement a pass counts once, however many slots it found missed: a catch-up
    # after the agent was down (or a run reported far in the past) retires nothing by itself.
    job = replace(job, record=rec, alarm=True, misses_in_a_row=job.misses_in_a_row + 1)
    periods = config.retire_after_periods
    if not in_crontab and periods and job.misses_in_a_row >= periods:
        return retire(job, config), [NotificationKind.missed, NotificationKind.retired]
    return job, [NotificationKind.missed]


def missed_slots(cadence: Cadence, slot: float, now: float, config: Config, limit: int
                 ) -> tuple[int, float | None]:
    """How many expected starts from `slot` on have run out of grace by `now`, and the first
    one not counted.

    An --every grid's are counted in one step, however many; a cron schedule's slot by slot,
    at most `limit` (the next pass counts on from the slot returned).
    """
    if cadence.every and not (cadence.schedule and schedule.is_valid_schedule(cadence.schedule)):
        late = now - grace_for(cadence, slot, config) - slot  # slot k is missed if k*every < late
        missed = max(0, math.ceil(late / cadence.every))
        return missed, slot + missed * cadence.every
    missed = 0
    upcoming: float | None = slot
    while (upcoming is not None and missed < limit
           and now > upcoming + grace_for(cadence, upcoming, config)):
        missed += 1
        upcoming = schedule.next_after(cadence, upcoming, config.cron_timezone)
    return missed, upcoming


def next_look(job: Job, cadence: Cadence, now: float, config: Config) -> float:
    """The earliest wall-clock time at which `check` may change `job` (math.inf: not before the
    job, its crontab line or its wrapper's pid changes); before then `check` leaves it as is.

    A time in the past means at once (e.g. a backlog of missed slots the owner's budget left).
    """
    rec = job.record
    times = [rec.paused_until] if rec.paused_until is not None else []
    if rec.state == JobState.retired:
        return min(times, default=math.inf)
    if rec.state in RUNNING_STATES:
        limit = runtime_limit(cadence, config)
        if rec.state != JobState.overrunning and limit is not None and rec.last_start is not None:
            times.append(rec.last_start + limit)
        if rec.next_expected is not None:
            times.append(rec.next_expected)
    elif rec.next_expected is not None:
        times.append(rec.next_expected + grace_for(cadence, rec.next_expected, config))
    elif schedule.next_after(cadence, now, config.cron_timezone) is not None:
        times.append(now)  # `check` sets its next expected start
    return min(times, default=math.inf)


def retire(job: Job, config: Config) -> Job:
    """State `retired`: nothing is expected of it any more, so no more misses are declared."""
    rec = job.record
    why = f"its {rec.line_gone}" if rec.line_gone else "no crontab line runs it"
    JOB_LINES.warning("retired", (
        f"job {rec.key.name} of {rec.owner} retired: {why} and it has not started for "
        f"{config.retire_after_periods} periods; no more misses are declared, a new run or its "
        "line brings it back"), rec.key.owner_uid)
    return replace(job, record=replace(rec, state=JobState.retired, next_expected=None),
                   alarm=False)


def rebase(job: Job, cadence: Cadence, now: float, cron_zone: str = "") -> Job:
    """After a clock jump: the next expected start counted from now, no miss declared."""
    if job.record.state == JobState.retired:
        return job
    upcoming = schedule.next_after(cadence, now, cron_zone)
    if upcoming == job.record.next_expected:
        return job
    return replace(job, record=replace(job.record, next_expected=upcoming))
