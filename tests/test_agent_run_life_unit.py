"""The state machine on a run's life without sockets: the run in progress, lost wrappers."""

from __future__ import annotations

from cronwrap.agent.core import apply_event
from cronwrap.agent.model import JobKey, JobRecord, JobState, NotificationKind
from cronwrap.agent.store import Job
from cronwrap.wrapper.events import Finished, Started, new_event_id

KEY = JobKey(1000, "backup")
T0 = 1_800_000_000.0


def apply(job: Job, *events: Started | Finished) -> tuple[Job, list[NotificationKind]]:
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
