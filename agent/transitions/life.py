"""Transitions of a job's life outside its runs: pauses, forgetting, and its crontab line."""

from __future__ import annotations

import logging
from dataclasses import replace

from cronwrap.wrapper.events import Cadence

from .. import schedule
from ..lifeevents import ForgetAsked, LineGone, LineSeen, PauseAsked, ResumeAsked
from ..model import JobState, NotificationKind
from ..store import Job
from .outcome import Context, Outcome, Raised

log = logging.getLogger("cronwrap.agent.core")  # the core's lines, under one name for operators


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


def pause_asked(job: Job, event: PauseAsked, ctx: Context) -> Outcome:
    return Outcome(replace(job, record=replace(job.record, paused_until=event.until)))


def resume_asked(job: Job, event: ResumeAsked, ctx: Context) -> Outcome:
    return Outcome(end_pause(job, ctx.cadence_of(job), event.now, ctx.config.cron_timezone))


def forget_asked(job: Job, event: ForgetAsked, ctx: Context) -> Outcome:
    """The row is dropped; the notification carries it as it was."""
    return Outcome(None, (Raised(NotificationKind.forgotten, job.record.key, record=job.record,
                                 requester=event.requester),))


def in_crontab(job: Job, schedule_text: str) -> Job:
    """A job seen on a crontab line: its schedule remembered; a retired job expected again."""
    if job.record.state == JobState.retired:
        log.warning("job %s of %s is in a crontab again: no longer retired", job.record.key.name,
                    job.record.owner)
        job = replace(job, record=replace(job.record, state=JobState.unknown, next_expected=None))
    return replace(job, crontab_schedule=schedule_text)


def line_seen(job: Job, event: LineSeen, ctx: Context) -> Outcome:
    """Its schedule remembered; the next expected start kept unless the line changed (a
    deadline computed before a restart still holds)."""
    job = in_crontab(job, event.found.schedule)
    if job.record.next_expected is not None and not event.changed:
        return Outcome(job)
    return Outcome(_expect_next(job, event.now, ctx))


def line_gone(job: Job, event: LineGone, ctx: Context) -> Outcome:
    """A row only its line made goes with it; a retired job stays; another is expected on its
    declared cadence alone."""
    if not job.reported:
        return Outcome(None)
    if job.record.state == JobState.retired:
        return Outcome(job)  # its line is gone and it stopped: nothing is expected of it
    return Outcome(_expect_next(job, event.now, ctx))


def _expect_next(job: Job, now: float, ctx: Context) -> Job:
    try:
        upcoming = schedule.next_after(ctx.cadence_of(job), now, ctx.config.cron_timezone)
    except ValueError:  # an old row's schedule that never fires: the watcher says so
        upcoming = None
    return replace(job, record=replace(job.record, next_expected=upcoming))
