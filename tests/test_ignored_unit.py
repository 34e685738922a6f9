"""A crontab line cron will never run, through the core's transitions: its row is held in
ignoredByCron while the line exists, whatever else happens, and cronCrontabIgnored is raised
once per reason (tests/test_ignored_by_cron.py runs the real cron)."""

from __future__ import annotations

from dataclasses import replace

from cronwrap.agent.config import Config
from cronwrap.agent.lifeevents import LineGone, LineSeen, RunReported, TimePassed
from cronwrap.agent.model import JobKey, JobRecord, JobSource, JobState, NotificationKind
from cronwrap.agent.schedule import Discovered
from cronwrap.agent.store import Job
from cronwrap.agent.transitions import transition
from cronwrap.agent.transitions.outcome import Context, Outcome
from cronwrap.wrapper.events import Cadence, Finished, Started

KEY = JobKey(0, "backup")
NOW = 1_800_000_000.0
SCHEDULE = "*/5 * * * *"
CTX = Context(NOW, Config(cron_timezone="UTC"), lambda job: Cadence(schedule=SCHEDULE))


def found(ignored: str | None) -> Discovered:
    return Discovered(KEY, "root", SCHEDULE, None, JobSource.cron_log, "/etc/cron.d/backup.sh",
                      ignored=ignored)


def seen(job: Job, ignored: str | None, changed: bool = True) -> Outcome:
    return transition(job, LineSeen(KEY, found(ignored), changed, NOW), CTX)


def kinds(outcome: Outcome) -> list[NotificationKind]:
    return [raised.kind for raised in outcome.raised]


def fresh() -> Job:
    return Job(JobRecord(KEY, "root", counters_since=NOW, source=JobSource.cron_log))


def test_an_ignored_line_is_held_and_notified_once_per_reason() -> None:
    first = seen(fresh(), "INSECURE MODE (group/other writable): mode 0664")
    assert first.job is not None
    assert first.job.record.state == JobState.ignoredByCron
    assert first.job.record.next_expected is None
    assert kinds(first) == [NotificationKind.crontab_ignored]
    again = seen(first.job, "INSECURE MODE (group/other writable): mode 0664", changed=False)
    assert kinds(again) == [] and again.job == first.job
    other = seen(first.job, "WRONG FILE OWNER: owned by uid 1000, not root")
    assert kinds(other) == [NotificationKind.crontab_ignored]
    assert other.job is not None and other.job.record.ignored_by_cron.startswith("WRONG")


def test_the_state_wins_over_time_and_runs_while_the_line_exists() -> None:
    held = seen(fresh(), "syntax error on line 2 (bad schedule '61 * * * *')").job
    assert held is not None
    passing = transition(held, TimePassed(KEY, NOW + 86_400, False, True, 1000), CTX)
    assert passing.job == held and kinds(passing) == []  # no miss: cron never runs it
    start = Started(job="backup", id="e1", time=NOW + 60, pid=4242)
    ran = transition(held, RunReported(KEY, "root", start), CTX)
    assert ran.job is not None and ran.job.record.state == JobState.ignoredByCron
    end = Finished(job="backup", id="e2", time=NOW + 61, pid=4242, start_time=NOW + 60,
                   exit_status=0, duration_ms=1000)
    done = transition(ran.job, RunReported(KEY, "root", end), CTX)
    assert done.job is not None and done.job.record.state == JobState.ignoredByCron
    assert done.job.record.runs == 1  # a run by hand is still counted


def test_a_fixed_line_leaves_the_state_and_a_gone_one_its_row() -> None:
    held = seen(fresh(), "missing newline before EOF: cron ignores the whole file").job
    assert held is not None
    fixed = seen(held, None)
    assert fixed.job is not None and kinds(fixed) == []
    assert fixed.job.record.state == JobState.unknown
    assert fixed.job.record.ignored_by_cron is None
    assert fixed.job.record.next_expected is not None  # expected again on its schedule
    assert transition(held, LineGone(KEY, NOW), CTX).job is None  # only its line made it
    reported = replace(held, reported=True)
    gone = transition(reported, LineGone(KEY, NOW), CTX).job
    assert gone is not None and gone.record.state != JobState.ignoredByCron
