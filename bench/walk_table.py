"""The N-job table the walk benchmarks serve: job records, and a MibSnapshot holding them."""

from __future__ import annotations

import time

from cronwrap.agent.model import AgentStats, JobKey, JobRecord, JobState
from cronwrap.agent.snapshot import MibSnapshot
from cronwrap.agent.store import Job


def jobs(count: int) -> list[Job]:
    """`count` jobs that have run (every column set), as a restarted agent would load them."""
    now = time.time()
    out = []
    for n in range(count):
        record = JobRecord(
            key=JobKey(0, f"job-{n:05d}"), owner="root", runs=n, failures=n % 7,
            overlaps=n % 3, timeouts=n % 5, misses=n % 2, last_exit_status=n % 4,
            last_start=now - n, last_success=now - 2 * n, last_duration_ms=n * 10,
            state=JobState.ok, next_expected=now + 3600 + n, last_log_path=None)
        out.append(Job(record, reported=True))
    return out


def snapshot_of(table: list[Job]) -> MibSnapshot:
    """A snapshot with the table's rows and the agent-wide scalars, as the agent serves them."""
    snapshot = MibSnapshot()
    snapshot.stats_changed(AgentStats(len(table), 0, 0, time.time()))
    for job in table:
        snapshot.job_changed(job.record)
    return snapshot
