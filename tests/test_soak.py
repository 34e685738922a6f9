"""The soak seam stays tested: two simulated hours of 20 jobs through the real core and watcher."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from cronwrap.agent.model import JobKey, JobRecord, JobState
from cronwrap.agent.snapshot import MibSnapshot
from cronwrap.agent.store import Job

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak import OWNER, OWNER_UID, JobSpec, Truth, compare, soak  # noqa: E402


def test_two_simulated_hours_match_the_ground_truth_exactly(tmp_path: Path) -> None:
    result = soak(hours=2, jobs=20, state_dir=tmp_path)
    assert result["mismatches"] == []
    truth = result["truth"]
    assert all(truth[counter] > 0 for counter in
               ("runs", "failures", "overlaps", "timeouts", "misses")), truth
    assert result["notifications"]["cronJobOverrunning"] > 0
    assert result["notifications"]["cronJobRecovered"] > 0


def test_a_count_that_differs_from_the_truth_is_reported() -> None:
    spec = JobSpec("one", "* * * * *")
    key = JobKey(OWNER_UID, "one")
    record = JobRecord(key, OWNER, runs=3, failures=1, state=JobState.ok)
    snapshot = MibSnapshot()
    snapshot.job_changed(record)
    truth = Truth(Counter(runs=3, failures=2), Counter(cronJobFailed=2))
    problems = compare([spec], {"one": truth}, snapshot, {key: Counter(cronJobFailed=1)},
                       {key: Job(record)})
    assert problems == [
        "one: failures NMS 1 != truth 2",
        "one: failures in the database 1 != truth 2",
        "one: cronJobFailed notifications 1 != truth 2",
    ]
