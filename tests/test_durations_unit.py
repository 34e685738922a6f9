"""Runs judged by their duration: the learned bounds' statistics (one outlier does not move
them), explicit bounds, the durationAnomaly result, its notification and its clearing, and the
sample kept across a store round trip, a crontab line's bounds (transitions/durations.py, no
sockets)."""

from __future__ import annotations

import asyncio
import os
import statistics
from pathlib import Path

import pytest
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore, with_line_bounds
from cronwrap.agent.lifeevents import RunReported
from cronwrap.agent.linenames import LineJob, line_job
from cronwrap.agent.model import BoundKind, JobKey, JobRecord, JobState, NotificationKind
from cronwrap.agent.sources import crontabs
from cronwrap.agent.store import Job, Store
from cronwrap.agent.transitions import durations, transition
from cronwrap.agent.transitions.durations import MIN_BASELINE_RUNS, learned_bounds, refresh
from cronwrap.agent.transitions.outcome import Context
from cronwrap.wrapper.events import Cadence, Finished, Started, new_event_id

KEY = JobKey(1000, "backup")
T0 = 1_800_000_000.0
CONFIG = Config()
NO_CADENCE = Cadence()
TYPICAL = [1500, 1520, 1480, 1510, 1490, 1505, 1495, 1530, 1470, 1500]


def test_too_few_runs_give_no_learned_bounds() -> None:
    assert learned_bounds(TYPICAL[:MIN_BASELINE_RUNS - 1], 4.0, 2.0) is None
    assert learned_bounds(TYPICAL[:MIN_BASELINE_RUNS], 4.0, 2.0) is not None


def test_steady_runs_are_bounded_by_the_minimum_ratio() -> None:
    """Runs within 2% of each other: the bounds are the median halved and doubled."""
    low, high = learned_bounds(TYPICAL, 4.0, 2.0)  # type: ignore[misc]
    assert (low, high) == (750, 3000)


def test_one_outlier_does_not_move_the_bounds() -> None:
    """A run 40 times the usual, kept in the sample, leaves the bounds where they were; the
    mean and standard deviation, by contrast, move by more than the bounds' width."""
    before = learned_bounds(TYPICAL, 4.0, 2.0)
    with_outlier = [*TYPICAL[1:], 60_000]
    after = learned_bounds(with_outlier, 4.0, 2.0)
    assert before is not None and after is not None
    assert abs(after[0] - before[0]) <= 10 and abs(after[1] - before[1]) <= 40
    mean_shift = statistics.mean(with_outlier) - statistics.mean(TYPICAL)
    assert mean_shift > before[1] - before[0]
    assert statistics.stdev(with_outlier) > 10 * statistics.stdev(TYPICAL)


def test_a_job_of_milliseconds_is_not_judged_on_its_jitter() -> None:
    """A job of 3 ms whose runs take 2 to 7 ms under load: no lower bound (a second below its
    median is below zero), an upper one a second above its median."""
    assert learned_bounds([3, 2, 3, 7, 3, 4], 4.0, 2.0, margin_ms=1000) == (None, 1003)
    job = history([3, 2, 3, 7, 3, 4])
    assert (job.record.durations.low, job.record.durations.high) == (None, 1003)
    job, kinds, _ = run(job, T0 + 600, 30)
    assert kinds == []


def test_a_spread_job_gets_bounds_by_its_spread() -> None:
    """Runs from 30 to 70 minutes: several typical deviations wide, wider than the ratio."""
    minutes = [30, 35, 40, 45, 50, 50, 55, 60, 65, 70]
    low, high = learned_bounds([m * 60_000 for m in minutes], 4.0, 2.0)  # type: ignore[misc]
    assert low < 25 * 60_000 and high > 100 * 60_000
    assert low > 2 * 60_000  # a two-minute "success" is still far outside


def run(job: Job, start: float, duration_ms: int, exit_status: int = 0,
        cadence: Cadence = NO_CADENCE, config: Config = CONFIG
        ) -> tuple[Job, list[NotificationKind], list]:
    """A start and a finish through the transition function; the row, the kinds raised and
    the anomaly facts of those raised."""
    ctx = Context(start, config, lambda j: j.cadence)
    kinds, facts = [], []
    for event in (Started(new_event_id(), KEY.name, start, 10, cadence=cadence),
                  Finished(new_event_id(), KEY.name, start + duration_ms / 1000, 10,
                           start_time=start, exit_status=exit_status, duration_ms=duration_ms,
                           cadence=cadence, cpu_ms=duration_ms // 10, max_rss_kib=4096)):
        outcome = transition(job, RunReported(KEY, "alice", event), ctx)
        assert outcome.job is not None
        job = outcome.job
        kinds += [r.kind for r in outcome.raised]
        facts += [r.facts.anomaly for r in outcome.raised if r.facts and r.facts.anomaly]
    return job, kinds, facts


def history(durations: list[int], cadence: Cadence = NO_CADENCE, config: Config = CONFIG
            ) -> Job:
    job = Job(JobRecord(KEY, "alice"))
    for n, took in enumerate(durations):
        job, kinds, _ = run(job, T0 + 60 * n, took, cadence=cadence, config=config)
        assert kinds == []
    return job


def test_a_run_15_times_faster_is_an_anomaly_and_the_next_normal_one_clears_it() -> None:
    job = history([1500] * 5)
    job, kinds, facts = run(job, T0 + 600, 100)
    assert kinds == [NotificationKind.duration_anomaly]
    assert (facts[0].duration_ms, facts[0].bound_ms, facts[0].kind, facts[0].median_ms) == (
        100, 500, BoundKind.learnedLow, 1500)  # half the median, or a second less: the wider
    rec = job.record
    assert (rec.state, rec.last_result, rec.duration_anomalies) == (
        JobState.durationAnomaly, JobState.durationAnomaly, 1)
    assert rec.history[-1].result == JobState.durationAnomaly
    assert (rec.last_cpu_ms, rec.last_max_rss_kib, rec.history[-1].max_rss_kib) == (10, 4096, 4096)
    assert rec.last_success == T0 + 600  # it did succeed: no failure, no recovery
    job, kinds, _ = run(job, T0 + 660, 1500)
    assert kinds == [NotificationKind.cleared]
    assert (job.record.state, job.record.last_result, job.record.duration_anomalies) == (
        JobState.ok, JobState.ok, 1)
    job, kinds, _ = run(job, T0 + 720, 1500)
    assert kinds == []


def test_statistics_in_the_row() -> None:
    job = history([1000, 3000, 2000])
    stats = job.record.durations
    assert (stats.runs, stats.minimum, stats.median, stats.maximum) == (3, 1000, 2000, 3000)
    assert stats.low is None and stats.high is None  # fewer than 5 runs: nothing learnt yet


def test_explicit_bounds_judge_from_the_first_run() -> None:
    bounded = Cadence(min_duration=1.0, max_duration=10.0)
    job, kinds, facts = run(Job(JobRecord(KEY, "alice")), T0, 500, cadence=bounded)
    assert kinds == [NotificationKind.duration_anomaly]
    assert (facts[0].bound_ms, facts[0].kind, facts[0].median_ms) == (
        1000, BoundKind.minDuration, None)
    job, kinds, facts = run(job, T0 + 60, 11_000, cadence=bounded)
    assert kinds == [NotificationKind.duration_anomaly]
    assert (facts[0].bound_ms, facts[0].kind) == (10_000, BoundKind.maxDuration)
    assert job.record.duration_anomalies == 2


def test_the_tighter_bound_wins_and_says_whose_it_is() -> None:
    job = history([1500] * 5, cadence=Cadence(min_duration=1.0))
    assert (job.record.durations.low, job.record.durations.low_kind) == (
        1000, BoundKind.minDuration)
    assert (job.record.durations.high, job.record.durations.high_kind) == (
        3000, BoundKind.learnedHigh)


def test_failures_are_not_judged_nor_learnt() -> None:
    job = history([1500] * 5)
    job, kinds, _ = run(job, T0 + 600, 100, exit_status=3)
    assert kinds == [NotificationKind.failed]
    assert job.record.durations.runs == 5 and job.record.duration_anomalies == 0


def test_no_duration_baseline_and_window_zero() -> None:
    off = Cadence(duration_baseline=False)
    job, kinds, _ = run(history([1500] * 5, cadence=off), T0 + 600, 100, cadence=off)
    assert kinds == [] and job.record.durations.runs == 6
    windowless = Config(duration_window=0)
    job, kinds, _ = run(history([1500] * 5, config=windowless), T0 + 600, 100,
                        config=windowless)
    assert kinds == [] and job.record.durations.runs == 0


def test_a_lasting_change_becomes_the_norm() -> None:
    """Anomalous runs enter the sample: a job that now takes four times as long stops being
    an anomaly once it makes up half the window."""
    job = history([1000] * 20)
    anomalies = 0
    for n in range(20):
        job, kinds, _ = run(job, T0 + 3600 + 60 * n, 4000)
        anomalies += NotificationKind.duration_anomaly in kinds
    assert 0 < anomalies <= 11
    assert job.record.state == JobState.ok


@pytest.mark.parametrize("window", [20, 3])
def test_the_sample_survives_a_restart(tmp_path: Path, window: int) -> None:
    job = history([1500] * 5 + [1600])
    db = Store(tmp_path)
    db.commit([job], [], [], {})
    db.close()
    loaded = Store(tmp_path).load_jobs()[KEY]
    assert loaded.duration_sample == job.duration_sample
    again = refresh({KEY: loaded}, Config(duration_window=window))[KEY]
    assert again.duration_sample == job.duration_sample[-window:]
    assert again.record.durations.median == 1500
    assert again.record.history[-1].cpu_ms == 160


@pytest.mark.parametrize("cadence", [NO_CADENCE, Cadence(min_duration=1.0, max_duration=1.9),
                                     Cadence(duration_baseline=False, max_duration=2.0)])
def test_the_statistics_survive_a_restart_exactly_and_are_not_recomputed(
        tmp_path: Path, cadence: Cadence, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted agent shows each job's statistics (bounds and their kinds, None included) as
    they were, without recomputing them; a job computed under other settings, or never (a job
    stored before they were kept), is recomputed as before."""
    learnt = history([1500, 1700, 1400, 1600, 1550, 1450], cadence)
    never = Job(JobRecord(JobKey(1000, "new"), "alice"), cadence, duration_sample=(1500,) * 6)
    db = Store(tmp_path)
    db.commit([learnt, never], [], [], {})
    db.close()
    loaded = Store(tmp_path).load_jobs()
    assert loaded[KEY].record.durations == learnt.record.durations
    assert loaded[KEY].durations_under == learnt.durations_under
    computed: list[tuple[int, ...]] = []
    real_stats = durations.stats

    def counted_stats(sample: tuple[int, ...], cadence: Cadence, config: Config) -> object:
        computed.append(sample)
        return real_stats(sample, cadence, config)

    monkeypatch.setattr(durations, "stats", counted_stats)
    same = refresh(loaded, CONFIG)
    assert same[KEY] is loaded[KEY] and computed == [(1500,) * 6]
    assert same[never.record.key].record.durations == real_stats((1500,) * 6, cadence, CONFIG)
    wider = refresh(loaded, Config(duration_factor=CONFIG.duration_factor * 2))
    assert wider[KEY].record.durations == real_stats(
        learnt.duration_sample, cadence, Config(duration_factor=CONFIG.duration_factor * 2))


def test_a_crontab_lines_bounds_apply_where_the_events_give_none() -> None:
    line = line_job("cronwrap -n nightly --min-duration 30m --max-duration=bogus "
                    "--no-duration-baseline -- /usr/local/bin/backup")
    assert line == LineJob("nightly", True, Cadence(min_duration=1800.0,
                                                    duration_baseline=False))
    declared = Cadence(schedule="0 3 * * *", max_duration=7200.0)
    assert with_line_bounds(declared, line.bounds) == Cadence(
        schedule="0 3 * * *", min_duration=1800.0, max_duration=7200.0, duration_baseline=False)
    assert with_line_bounds(declared, Cadence()) is declared


def test_the_core_judges_a_run_by_its_crontab_lines_bound(tmp_path: Path) -> None:
    """A line `cronwrap --min-duration 2s` found by discovery: a run whose events declare no
    bound (an older wrapper) is still judged by the line's."""
    spool = tmp_path / "root/var/spool/cron/crontabs"
    spool.mkdir(parents=True)
    (spool / "root").write_text("0 3 * * * cronwrap -n nightly --min-duration 2s -- backup\n")
    os.chmod(spool / "root", 0o600)  # as crontab(1) leaves it: cron reads it
    key = JobKey(0, "nightly")
    published: list[NotificationKind] = []

    async def scenario() -> None:
        core = AgentCore(Store(tmp_path), CONFIG, clock=lambda: T0 + 30)
        queue = core.notifications.subscribe()
        writer = asyncio.create_task(core.run())
        try:
            await core.set_discovered(crontabs.discover(tmp_path / "root"))
            await core.submit(0, "root", Finished(new_event_id(), key.name, T0 + 1, 10,
                                                  start_time=T0, duration_ms=500))
        finally:
            core.stop()
            await writer
        while not queue.empty():
            published.append(queue.get_nowait().kind)

    asyncio.run(scenario())
    assert published == [NotificationKind.duration_anomaly]
