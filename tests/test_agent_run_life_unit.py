"""The state machine on a run's life without sockets: the run in progress, lost wrappers."""

from __future__ import annotations

from cronwrap.agent.config import Config
from cronwrap.agent.core import apply_event
from cronwrap.agent.model import JobKey, JobRecord, JobState, NotificationKind
from cronwrap.agent.store import Job
from cronwrap.agent.watch import check
from cronwrap.wrapper.events import Cadence, Finished, Overlapped, Started, new_event_id

KEY = JobKey(1000, "backup")
T0 = 1_800_000_000.0


def apply(job: Job, *events: Started | Finished | Overlapped) -> tuple[Job, list[NotificationKind]]:
    kinds: list[NotificationKind] = []
    for event in events:
        job, new = apply_event(job, event, lambda j: j.cadence)
        kinds += new
    return job, kinds


def test_the_finish_of_the_run_in_progress_applies_even_if_it_ends_before_the_last_end() -> None:
    # the run in progress (pid 42) started at T0 + 110; the previous run's end was recorded at
    # T0 + 200 (the wall clock was stepped back since): the failure is still this run's outcome
    job = Job(JobRecord(KEY, "alice", runs=1, state=JobState.running, running_pid=42,
                        last_start=T0 + 110, last_success=T0 + 90, last_exit_status=0),
              last_end=T0 + 200, reported=True)
    job, kinds = apply(job, Finished(new_event_id(), KEY.name, T0 + 111, 42, start_time=T0 + 110,
                                     exit_status=3, duration_ms=1000))
    rec = job.record
    assert (rec.state, rec.last_exit_status, rec.running_pid) == (JobState.failed, 3, None)
    assert (rec.runs, rec.failures, rec.last_start) == (2, 1, T0 + 110)
    assert kinds == [NotificationKind.failed]


def running(pid: int = 42) -> Job:
    """A job whose run started at T0 under wrapper `pid` and has not finished."""
    return apply(Job(JobRecord(KEY, "alice")), Started(new_event_id(), KEY.name, T0, pid))[0]


def overlap(t: float, holder: int, lost_wrapper: int | None = None) -> Overlapped:
    return Overlapped(new_event_id(), KEY.name, t, 77, holder, lost_wrapper_pid=lost_wrapper)


def test_a_wrapper_gone_without_a_finish_makes_the_run_lost_once() -> None:
    job, kinds = check(running(), Cadence(), T0 + 60, Config(), pid_lost=True)
    rec = job.record
    assert (rec.state, rec.running_pid, rec.last_start) == (JobState.wrapperLost, 42, T0)
    assert rec.last_result == JobState.wrapperLost
    assert kinds == [NotificationKind.wrapper_lost] and job.alarm
    # no longer a running state: the watcher does not look at its pid again
    assert check(job, Cadence(), T0 + 120, Config(), pid_lost=True) == (job, [])


def test_an_overlap_naming_a_lost_wrapper_makes_the_run_lost_at_once() -> None:
    job, kinds = apply(running(), overlap(T0 + 60, holder=4242, lost_wrapper=42))
    rec = job.record
    assert (rec.state, rec.running_pid, rec.overlaps) == (JobState.wrapperLost, 4242, 1)
    assert rec.last_result == JobState.wrapperLost  # as when the watcher finds the loss
    assert kinds == [NotificationKind.wrapper_lost, NotificationKind.overlapped]
    job, kinds = apply(job, overlap(T0 + 120, holder=4242, lost_wrapper=42))
    assert (job.record.state, job.record.overlaps) == (JobState.wrapperLost, 2)
    assert kinds == [NotificationKind.overlapped]  # the loss is announced once


def test_after_a_lost_run_the_next_success_recovers() -> None:
    job, _ = check(running(), Cadence(), T0 + 60, Config(), pid_lost=True)
    job, kinds = apply(job, Started(new_event_id(), KEY.name, T0 + 300, 43),
                       Finished(new_event_id(), KEY.name, T0 + 301, 43, start_time=T0 + 300,
                                duration_ms=1000))
    assert (job.record.state, job.record.running_pid) == (JobState.ok, None)
    assert kinds == [NotificationKind.recovered]


def test_an_ordinary_overlap_is_still_overlapped() -> None:
    job, kinds = apply(running(), overlap(T0 + 60, holder=42))
    assert (job.record.state, job.record.running_pid) == (JobState.overlapped, 42)
    assert kinds == [NotificationKind.overlapped]
