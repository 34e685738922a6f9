"""Transitions of a crontab line cron will never run, as discovery or cron's own log tells: its
row is held in ignoredByCron, with the reason, while the line exists, and cronCrontabIgnored is
raised once per problem."""

from __future__ import annotations

from dataclasses import replace

from ..lifeevents import LifeEvent, LineGone, LineRefused, LineSeen, TimePassed
from ..model import CRON_LOG_SAYS, JobState, NotificationKind
from ..store import Job
from .life import in_crontab, line_seen, unretired
from .outcome import Context, EventFacts, Outcome, raised


def line_found(job: Job, event: LineSeen, ctx: Context) -> Outcome:
    """A line cron ignores holds its row in ignoredByCron; a line cron runs (again) is adopted
    as any line is, its row no longer ignored."""
    reason = event.found.ignored
    if reason is None:
        return line_seen(_runs_again(job), event, ctx)
    before = job.record.ignored_by_cron
    back = unretired(job)
    return _ignored(in_crontab(job, event.found), reason, before, event.now, back)


def line_refused(job: Job, event: LineRefused, ctx: Context) -> Outcome:
    """cron's log says cron refused the line's crontab: a row discovery did not find ignored
    is held in ignoredByCron for cron's reason; one it did keeps discovery's (more precise)
    reason, and nothing is raised again."""
    if job.record.ignored_by_cron is not None:
        return Outcome(job)
    return _ignored(job, event.reason, None, event.time)


def _ignored(job: Job, reason: str, before: str | None, now: float,
             back: tuple[tuple[str, str], ...] = ()) -> Outcome:
    """The row held in ignoredByCron for `reason` (it had `before`; `back`: what is said of
    its coming back); cronCrontabIgnored is raised for a new problem: not when the reason
    stays, nor when cron's log and discovery take turns telling the same refusal."""
    job = replace(job, record=replace(job.record, state=JobState.ignoredByCron,
                                      ignored_by_cron=reason, next_expected=None))
    same_problem = before is not None and (before.startswith(CRON_LOG_SAYS)
                                           or reason.startswith(CRON_LOG_SAYS))
    if before == reason or same_problem:
        return Outcome(job, warnings=back)
    said = back + (("line ignored", f"{job.crontab or 'a crontab'}: cron will never run the "
                    f"line of job {job.record.key.name} of {job.record.owner}: {reason}"),)
    return Outcome(job, raised(job, (NotificationKind.crontab_ignored,),
                               facts=EventFacts(time=now)), warnings=said)


def held(job: Job, event: LifeEvent, outcome: Outcome) -> Outcome:
    """`outcome` of another rule for a row whose line cron ignores: no slot is expected of it
    (passing time changes nothing), and it stays ignoredByCron until its line is gone."""
    if job.record.ignored_by_cron is None or outcome.job is None:
        return outcome
    if isinstance(event, TimePassed):
        return Outcome(job)
    if isinstance(event, LineGone):
        return replace(outcome, job=_runs_again(outcome.job))
    rec = outcome.job.record
    if rec.ignored_by_cron is None or rec.state == JobState.ignoredByCron:
        return outcome  # its line runs again, or the state is held already
    return replace(outcome, job=replace(outcome.job, record=replace(
        rec, state=JobState.ignoredByCron, next_expected=None)))


def _runs_again(job: Job) -> Job:
    """The row without its ignored line: its state is what its runs left."""
    rec = job.record
    if rec.ignored_by_cron is None:
        return job
    return replace(job, record=replace(rec, ignored_by_cron=None, state=rec.last_result))
