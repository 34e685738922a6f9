"""Transitions of a job's runs: a start, an end or an overlap, from its wrapper or cron's log."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from cronwrap.wrapper.events import Cadence, Event, Finished, Overlapped, Started

from .. import schedule
from ..lifeevents import RunReported
from ..model import DurationAnomaly, JobKey, JobState, NotificationKind, RunRecord, StartBurst
from ..store import Job
from . import durations
from .life import end_pause, with_line
from .outcome import RUNNING_STATES, Context, EventFacts, Outcome, Raised, raised, utc_text

# States raised by a notification that a successful end of the run clears (cronJobCleared).
CLEARED_BY_SUCCESS = frozenset({JobState.overlapped, JobState.overrunning})
# A job runs too often when its schedule has fewer than one start per this many of its starts.
TOO_OFTEN_FACTOR = 4


def run_reported(job: Job, reported: RunReported, ctx: Context) -> Outcome:
    """The row after a run's event: an expired pause ends, the reporting source becomes the
    row's, the state machine (apply_event) decides, and a burst of starts is noticed."""
    event, config = reported.event, ctx.config
    if job.record.owner != reported.owner:
        job = replace(job, record=replace(job.record, owner=reported.owner))
    job = with_line(job, reported.command_line)
    if job.record.paused_until is not None and ctx.now >= job.record.paused_until:
        job = end_pause(job, ctx.cadence_of(job), ctx.now, config.cron_timezone)
    retired = job.record.state == JobState.retired
    if job.record.source != reported.source or job.record.start_problem is not None:
        # this source reports the job (again): its events are the truth from now on
        job = replace(job, record=replace(job.record, source=reported.source,
                                          start_problem=None))
    runs_before = job.record.runs
    anomaly = None
    if isinstance(event, Finished):
        cadence = ctx.cadence_of(with_declared_cadence(job, event))
        anomaly = durations.judge(job, event, cadence, config)
    job, kinds = apply_event(job, event, ctx.cadence_of, config.cron_timezone, anomaly)
    if isinstance(event, Finished) and job.record.runs > runs_before:
        job = durations.learn(job, event, anomaly, ctx.cadence_of(job), config)
        job = with_run(job, event, reported.late, config.run_history, anomaly)
    burst = None
    if isinstance(event, Started | Overlapped):
        job, burst = note_start(job, event.time, ctx.cadence_of(job), config.cron_timezone,
                                config.too_often_starts)
    owner = job.record.owner
    warnings: tuple[tuple[str, str], ...] = ()
    if retired and job.record.state != JobState.retired:
        warnings = (("runs again", f"job {job.record.key.name} of {owner} runs again: no "
                                   "longer retired"),)
    notices = raised(job, kinds, run_time_of(event), reported.late, facts_of(event, anomaly))
    if burst is None:
        return Outcome(job, notices, warnings)
    warnings += (("runs too often", (
        f"job {job.record.key.name} of {owner} started {burst.starts} times since "
        f"{utc_text(burst.since)}, where its schedule has {burst.expected} starts: it runs "
        "too often")),)
    too_often = Raised(NotificationKind.runs_too_often, job.record.key, event.time,
                       reported.late, job.record, facts=EventFacts(event.time), burst=burst)
    return Outcome(job, (*notices, too_often), warnings)


def apply_event(job: Job, event: Event, cadence_of: Callable[[Job], Cadence], cron_zone: str = "",
                anomaly: DurationAnomaly | None = None) -> tuple[Job, list[NotificationKind]]:
    """The state machine: the job after `event`, and the notifications the transition raises.

    cron_zone: the zone cron reads crontabs in (config cron_timezone; "": the local zone).
    anomaly: the duration bound a successful finished run broke (durations.judge).
    """
    job = replace(with_declared_cadence(job, event), reported=True, misses_in_a_row=0)
    if isinstance(event, Started):
        return _started(job, event, cadence_of(job), cron_zone), []
    if isinstance(event, Finished):
        return _finished(job, event, cadence_of(job), cron_zone, anomaly)
    if isinstance(event, Overlapped):
        return _overlapped(job, event, cadence_of(job), cron_zone)
    raise TypeError(f"not an event: {event!r}")


def with_declared_cadence(job: Job, event: Event) -> Job:
    """The job with the cadence `event` declares: each start redeclares it, and any event
    that carries one."""
    cadence: Cadence = event.cadence  # type: ignore[attr-defined]
    if isinstance(event, Started) or cadence != Cadence():
        return replace(job, cadence=cadence)
    return job


def facts_of(event: Event, anomaly: DurationAnomaly | None = None) -> EventFacts:
    """The event's own time, and for a finished run its exit status, signal and the duration
    bound it broke."""
    if isinstance(event, Finished):
        return EventFacts(event.start_time + event.duration_ms / 1000, event.exit_status,
                          event.signal, event.last_message, anomaly)
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


def _finished(job: Job, event: Finished, cadence: Cadence, cron_zone: str,
              anomaly: DurationAnomaly | None) -> tuple[Job, list[NotificationKind]]:
    rec = job.record
    failed = event.exit_status != 0 or event.signal != 0 or event.timed_out
    kinds = [NotificationKind.timed_out if event.timed_out else NotificationKind.failed] if failed \
        else []
    if anomaly is not None:
        kinds.append(NotificationKind.duration_anomaly)
    rec = replace(rec, runs=rec.runs + 1, failures=rec.failures + failed,
                  timeouts=rec.timeouts + event.timed_out)
    end = event.start_time + event.duration_ms / 1000
    in_progress = rec.running_pid == event.pid and rec.last_start == event.start_time
    if not in_progress and job.last_end is not None and end < job.last_end:  # an older run
        return replace(job, record=rec), kinds
    if not failed and (rec.last_success is None or event.start_time > rec.last_success):
        rec = replace(rec, last_success=event.start_time)
    kinds += _log_transition(rec.log_problem, event.log_problem)
    anomaly_before = rec.last_result == JobState.durationAnomaly
    rec = replace(rec, last_exit_status=event.exit_status, last_signal=event.signal,
                  last_duration_ms=event.duration_ms,
                  last_log_path=event.log_path or rec.last_log_path,
                  log_problem=event.log_problem, last_message=event.last_message,
                  last_cpu_ms=event.cpu_ms, last_max_rss_kib=event.max_rss_kib)
    job = replace(job, last_end=end)
    newer_run = (rec.state in RUNNING_STATES and rec.running_pid not in (None, event.pid)
                 and rec.last_start is not None and rec.last_start > event.start_time)
    state = run_result(event, anomaly)
    if newer_run:  # another run started since: it keeps the row's state
        return replace(job, record=replace(rec, last_result=state),
                       alarm=failed or job.alarm), kinds
    if rec.last_start is None or event.start_time > rec.last_start:
        rec = replace(rec, last_start=event.start_time,
                      next_expected=schedule.next_after(cadence, event.start_time, cron_zone))
    if not failed and job.alarm:
        kinds.append(NotificationKind.recovered)
    elif not failed and anomaly is None and (rec.state in CLEARED_BY_SUCCESS or anomaly_before):
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


def run_result(event: Finished, anomaly: DurationAnomaly | None) -> JobState:
    """How a finished run ended: timedOut, failed, durationAnomaly or ok."""
    if event.timed_out:
        return JobState.timedOut
    if event.exit_status != 0 or event.signal != 0:
        return JobState.failed
    return JobState.durationAnomaly if anomaly is not None else JobState.ok


def with_run(job: Job, event: Finished, late: bool, keep: int,
             anomaly: DurationAnomaly | None = None) -> Job:
    """The job with its just counted run added to its history, keeping the newest `keep`."""
    run = RunRecord(job.record.runs, event.start_time, event.duration_ms, event.exit_status,
                    event.signal, run_result(event, anomaly), late, event.cpu_ms,
                    event.max_rss_kib)
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
