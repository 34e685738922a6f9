"""The core's transition function: the only place a job's row, counters and state change.

`transition(job, event, ctx)` is pure: it returns the row after `event` (agent/lifeevents.py)
and the notifications the change raises (an Outcome), and touches nothing else; the core's
writer stores the row and publishes the notifications once the batch is committed.  Each kind
of event has its rules in one module: runs.py (a run's start, end, overlap), cron_log.py (what
only cron's log tells), clock.py (passing time, clock jumps, zone changes), life.py (pauses,
forgetting, crontab lines), ignored.py (lines cron will never run, as discovery or cron's log
tells).  Refusals and deferrals at the agent's door change no row: door.py decides what each
counts and logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..lifeevents import (
    ClockJumped,
    ForgetAsked,
    LifeEvent,
    LineGone,
    LineRefused,
    LineSeen,
    OutputDiscarded,
    PauseAsked,
    ResumeAsked,
    RunCut,
    RunReported,
    StartLogged,
    TimePassed,
    WrapperNotStarted,
    ZoneChanged,
)
from ..store import Job
from . import clock, cron_log, ignored, life, runs
from .outcome import Context, Outcome

RULES: dict[type, Callable[[Job, Any, Context], Outcome]] = {
    RunReported: runs.run_reported,
    StartLogged: cron_log.start_logged,
    RunCut: cron_log.run_cut,
    WrapperNotStarted: cron_log.wrapper_not_started,
    TimePassed: clock.time_passed,
    ClockJumped: clock.clock_jumped,
    ZoneChanged: clock.zone_changed,
    PauseAsked: life.pause_asked,
    ResumeAsked: life.resume_asked,
    ForgetAsked: life.forget_asked,
    LineSeen: ignored.line_found,
    LineGone: life.line_gone,
    LineRefused: ignored.line_refused,
    OutputDiscarded: cron_log.output_discarded,
}


def transition(job: Job, event: LifeEvent, ctx: Context) -> Outcome:
    """The row after `event` and what it raises."""
    return ignored.held(job, event, RULES[type(event)](job, event, ctx))
