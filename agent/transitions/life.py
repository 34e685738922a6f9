"""Transitions of a job's life outside its runs: pauses, forgetting, and its crontab line."""

from __future__ import annotations

from dataclasses import replace

from cronwrap.wrapper.events import Cadence

from .. import schedule
from ..lifeevents import ForgetAsked, LineGone, LineSeen, PauseAsked, ResumeAsked
from ..model import JobState, NotificationKind
from ..schedule import Discovered
from ..store import Job
from .outcome import Context, Outcome, Raised, utc_text


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


def in_crontab(job: Job, found: Discovered) -> Job:
    """A job seen on a crontab line: its schedule, crontab and command remembered; a retired
    job, or one whose line was gone, expected again."""
    rec = job.record
    if rec.state == JobState.retired:
        rec = replace(rec, state=JobState.unknown, next_expected=None)
    elif rec.line_gone is not None:
        rec = replace(rec, next_expected=None)  # expected on the line as it is now
    job = replace(job, record=replace(rec, line_gone=None), crontab_schedule=found.schedule,
                  crontab=found.crontab or None)
    return with_line(job, found.command_line)


def with_line(job: Job, command_line: str | None) -> Job:
    """The row with the command of the crontab line it was seen on (cronJobCommandLine), when
    the event knows it."""
    if command_line is None or command_line == job.record.command_line:
        return job
    return replace(job, record=replace(job.record, command_line=command_line))


def unretired(job: Job) -> tuple[tuple[str, str], ...]:
    """What is said when a line brings `job` back: something only if it was retired (through
    the core's per-owner limiter: a user may put many lines back at once)."""
    rec = job.record
    if rec.state != JobState.retired:
        return ()
    return (("back from retirement", f"job {rec.key.name} of {rec.owner} is in a crontab "
             "again: no longer retired"),)


def line_seen(job: Job, event: LineSeen, ctx: Context) -> Outcome:
    """Its schedule and command remembered; the next expected start kept unless the line
    changed (a deadline computed before a restart still holds)."""
    said = unretired(job)
    job = in_crontab(job, event.found)
    if job.record.next_expected is not None and not event.changed:
        return Outcome(job, warnings=said)
    return Outcome(_expect_next(job, event.now, ctx), warnings=said)


def line_gone(job: Job, event: LineGone, ctx: Context) -> Outcome:
    """A row only its line made goes with it; a retired job stays; another stays expected on
    its declared cadence, else on the schedule its line had (core.cadence_of): its next missed
    slot raises cronJobMissed saying the line is gone, and retirement ends that."""
    rec = job.record
    if not job.reported:
        return Outcome(None)
    if rec.state == JobState.retired or rec.line_gone is not None:
        return Outcome(job)  # it stopped already, or was told already
    cause = f"line gone from {job.crontab or 'its crontab'} (seen {utc_text(event.now)})"
    said = (("line gone", f"job {rec.key.name} of {rec.owner}: its {cause}; still expected on "
             f"{ctx.cadence_of(job).schedule or 'its cadence'} until it retires or is "
             "forgotten"),)
    job = replace(job, record=replace(rec, line_gone=cause))
    if rec.next_expected is None:
        job = _expect_next(job, event.now, ctx)
    return Outcome(job, warnings=said)


def _expect_next(job: Job, now: float, ctx: Context) -> Job:
    try:
        upcoming = schedule.next_after(ctx.cadence_of(job), now, ctx.config.cron_timezone)
    except ValueError:  # an old row's schedule that never fires: the watcher says so
        upcoming = None
    return replace(job, record=replace(job.record, next_expected=upcoming))
