"""cronJobRunsTooOften: a job that starts far more often than its schedule says, raised once.

The unit tests drive note_start with schedules read as cron reads them; the end-to-end test
runs the real wrapper in a loop against a real agent and counts what a real snmptrapd got.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cronwrap.agent.config import ConfigError, load
from cronwrap.agent.core import note_start
from cronwrap.agent.model import JobKey, JobRecord, StartBurst
from cronwrap.agent.store import Job
from cronwrap.wrapper.events import Cadence
from e2e_support import received, rig
from netsnmp import free_port, have_netsnmp

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC
DAY = 86_400.0


def starts(cadence: Cadence, times: list[float], window: int = 10
           ) -> tuple[Job, list[tuple[int, StartBurst]]]:
    """Feed the starts in order; the bursts raised, with the index of the start raising each."""
    job = Job(JobRecord(JobKey(0, "job"), "root"), cadence)
    raised = []
    for i, when in enumerate(times):
        job, burst = note_start(job, when, cadence, "UTC", window)
        if burst is not None:
            raised.append((i, burst))
    return job, raised


def test_a_daily_job_started_every_minute_raises_once_at_the_tenth_start() -> None:
    daily = Cadence(schedule="0 3 * * *")
    _, raised = starts(daily, [T0 + 60 * i for i in range(30)])
    assert raised == [(9, StartBurst(10, 1, T0))]


def test_jobs_that_keep_their_schedule_never_raise() -> None:
    assert starts(Cadence(schedule="* * * * *"), [T0 + 60 * i + 1 for i in range(50)])[1] == []
    assert starts(Cadence(schedule="0 3 * * *"), [T0 + DAY * i for i in range(50)])[1] == []
    assert starts(Cadence(every=300.0), [T0 + 300 * i for i in range(50)])[1] == []
    # twice as often as scheduled (two crontab lines, a retry): not "far more often"
    assert starts(Cadence(schedule="*/2 * * * *"), [T0 + 60 * i for i in range(50)])[1] == []


def test_a_job_without_a_schedule_is_never_judged() -> None:
    assert starts(Cadence(), [T0 + i for i in range(50)])[1] == []


def test_a_new_burst_after_the_starts_fit_again_raises_again() -> None:
    hourly = Cadence(schedule="0 * * * *")
    burst = [T0 + i for i in range(10)]
    calm = [T0 + 3600 * h for h in range(1, 12)]
    again = [T0 + 12 * 3600 + i for i in range(10)]
    job, raised = starts(hourly, burst + calm + again)
    # the second burst's 9th start: with the calm period's last start, 10 starts in an hour
    # and 8 seconds, in which the schedule has 2
    assert [(i, b.expected) for i, b in raised] == [(9, 1), (29, 2)]
    assert job.in_burst and len(job.recent_starts) == 10


def test_late_starts_are_judged_by_their_own_times_and_0_turns_it_off() -> None:
    daily = Cadence(schedule="0 3 * * *")
    times = [T0 + 60 * i for i in range(10)]
    assert [i for i, _ in starts(daily, times[::-1])[1]] == [9]  # applied newest first
    assert starts(daily, times, window=0)[1] == []


@pytest.mark.parametrize("value", ["1", "101", "-1", "true"])
def test_too_often_starts_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f"[agent]\ntoo_often_starts = {value}\n")
    with pytest.raises(ConfigError, match="too_often_starts"):
        load(path)


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_a_wrapper_in_a_loop_raises_it_once(tmp_path: Path) -> None:
    port = free_port()
    config = (f'[agent]\ntoo_often_starts = 5\n[[snmp.target]]\naddress = "127.0.0.1:{port}"\n'
              'type = "trap"\ncommunity = "public"\n')
    with rig(tmp_path, agentx=False, listen=True, trap_port=port, config=config) as r:
        for _ in range(8):
            assert r.wrap("-n", "loop", "--every", "1h", "--", "true").returncode == 0
        assert r.wrap("-n", "loop", "--every", "1h", "--", "false").returncode == 1
        line = received(r.trapd, "cronJobRunsTooOften", "loop")
        assert "CRON-JOBS-MIB::cronNotifyStarts.0 = Gauge32: 5\t" in line
        assert "CRON-JOBS-MIB::cronNotifyExpectedStarts.0 = Gauge32: 1\t" in line
        received(r.trapd, "cronJobFailed", "loop")  # sent after every start's notification
        text = r.trapd.text()
        assert len(re.findall(r"cronJobRunsTooOften\t", text)) == 1, text
        log = r.agent.log.read_text()
        assert len(re.findall(r"job loop of root started 5 times since .* runs too often",
                              log)) == 1, log
