"""The soak seam stays tested: two simulated hours of 20 jobs through the real core and watcher."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
from cronwrap.agent.model import JobKey, JobRecord, JobState
from cronwrap.agent.snapshot import MibSnapshot
from cronwrap.agent.store import Job

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak import (  # noqa: E402
    OWNER,
    OWNER_UID,
    JobSpec,
    Truth,
    compare,
    local_start,
    soak,
)


def test_two_simulated_hours_match_the_ground_truth_exactly(tmp_path: Path) -> None:
    result = soak(hours=2, jobs=20, state_dir=tmp_path)
    assert result["mismatches"] == []
    truth = result["truth"]
    assert all(truth[counter] > 0 for counter in
               ("runs", "failures", "overlaps", "timeouts", "misses", "duration_anomalies")), truth
    assert result["notifications"]["cronJobOverrunning"] > 0
    assert result["notifications"]["cronJobRecovered"] > 0


@pytest.mark.parametrize(("zone", "wall"), [
    ("America/New_York", "2026-03-07T23:00"),  # 02:00 EST -> 03:00 EDT
    ("America/New_York", "2026-10-31T23:00"),  # 02:00 EDT -> 01:00 EST
    ("Europe/London", "2026-03-28T23:00"),  # 01:00 GMT -> 02:00 BST
    ("Europe/London", "2026-10-24T23:00"),  # 02:00 BST -> 01:00 GMT
    ("Asia/Kolkata", "2026-01-05T00:00"),  # +05:30, no DST
])
def test_a_dst_night_in_crons_zone_matches_the_ground_truth(tmp_path: Path, zone: str,
                                                            wall: str) -> None:
    """cron's starts come from a model of Debian cron's main loop; the agent uses the zone."""
    result = soak(hours=5, jobs=20, state_dir=tmp_path, zone=zone, start=local_start(zone, wall))
    assert result["mismatches"] == []
    assert result["truth"]["runs"] > 0 and result["truth"]["misses"] > 0


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
