"""Transitions only cron's log tells of: a start without a pid, a run cut by a reboot, and a
wrapped line whose cronwrap never started."""

from __future__ import annotations

from dataclasses import replace

from cronwrap.wrapper.events import Cadence, Finished

from .. import schedule
from ..lifeevents import OutputDiscarded, RunCut, StartLogged, WrapperNotStarted
from ..model import JobSource, JobState, NotificationKind
from ..store import Job
from .life import with_line
from .outcome import RUNNING_STATES, Context, EventFacts, Outcome, raised, utc_text
from .runs import with_run

START_SLACK = 2.0  # a wrapper's start this long before cron's CMD line is still that run's


def start_logged(job: Job, event: StartLogged, ctx: Context) -> Outcome:
    """The last start and the next expected one noted (so misses are seen); the outcome stays
    unknown.  A start at or before the last one known changes nothing."""
    job = with_line(job, event.command_line)
    rec = job.record
    if rec.last_start is not None and event.time <= rec.last_start:
        return Outcome(job)
    upcoming = schedule.next_after(ctx.cadence_of(job), event.time, ctx.config.cron_timezone)
    state = JobState.unknown if rec.state == JobState.missed else rec.state
    return Outcome(replace(job, reported=True, record=replace(
        rec, last_start=event.time, next_expected=upcoming, state=state,
        source=JobSource.cron_log)))


def run_cut(job: Job, event: RunCut, ctx: Context) -> Outcome:
    """The row's run ended with its boot: its outcome is unknown, no run is counted, no
    notification, and one line says so (nothing when the row is no longer that run)."""
    rec = job.record
    if rec.running_pid != event.pid or rec.state not in RUNNING_STATES:
        return Outcome(job)
    said = ("run cut", f"job {rec.key.name} of {rec.owner} started at {utc_text(event.start)} "
            "in an earlier boot and cron logged no end: its outcome is unknown (state unknown, "
            "no run counted)")
    return Outcome(replace(job, record=replace(rec, state=JobState.unknown, running_pid=None)),
                   warnings=(said,))


def wrapper_not_started(job: Job, event: WrapperNotStarted, ctx: Context) -> Outcome:
    """Unless the wrapper reported this run (or a later one), a failed run counted and
    cronJobNotStarted raised."""
    started = job.record.last_start
    if started is not None and started >= event.start - START_SLACK:
        return Outcome(job)  # the wrapper reported this run (or a later one): its events count
    job, kinds = not_started(job, event, ctx.cadence_of(job), ctx.config.cron_timezone)
    run = Finished(id="", job=event.key.name, time=event.end, pid=0, start_time=event.start,
                   exit_status=event.status, duration_ms=job.record.last_duration_ms or 0)
    job = with_run(job, run, False, ctx.config.run_history)
    return Outcome(job, raised(job, kinds, event.start,
                               facts=EventFacts(event.end, event.status, 0)))


def not_started(job: Job, event: WrapperNotStarted, cadence: Cadence, cron_zone: str
                ) -> tuple[Job, list[NotificationKind]]:
    """The row after a run whose wrapper never started, and the notification it raises."""
    rec = job.record
    rec = replace(rec, runs=rec.runs + 1, failures=rec.failures + 1,
                  last_exit_status=event.status, last_signal=0, last_result=JobState.failed,
                  last_duration_ms=max(0, round((event.end - event.start) * 1000)),
                  start_problem=event.problem)
    if rec.last_start is None or event.start > rec.last_start:
        rec = replace(rec, last_start=event.start, state=JobState.failed, running_pid=None,
                      next_expected=schedule.next_after(cadence, event.start, cron_zone))
    return replace(job, record=rec, alarm=True, reported=True,
                   last_end=max(job.last_end or 0.0, event.end)), [NotificationKind.not_started]


def output_discarded(job: Job, event: OutputDiscarded, ctx: Context) -> Outcome:
    """A run's output cron discarded is counted; the job's first raises cronJobOutputDiscarded
    (once per job: every later run of it prints into the void too)."""
    rec = job.record
    job = replace(job, record=replace(rec, outputs_discarded=rec.outputs_discarded + 1))
    if rec.outputs_discarded:
        return Outcome(job)
    return Outcome(job, raised(job, (NotificationKind.output_discarded,),
                               facts=EventFacts(time=event.time)))
