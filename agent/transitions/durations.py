"""Transitions of a run's duration: judging a successful run against its bounds, and learning
each job's recent successful durations (docs/agent.md, "Runs that end too fast or too slow").

The learned bounds come from the job's last `duration_window` successful runs, kept apart from
the run history.  From MIN_BASELINE_RUNS of them on: the median M, and the median absolute
deviation of the runs' durations from M measured as ratios (MAD of ln(d / M)), scaled by
1.4826 to estimate a standard deviation S.  A successful run is anomalous outside
M / T .. M * T, where ln T = max(duration_factor * S, ln duration_min_ratio): several typical
deviations away, and never closer to M than the minimum ratio, nor than duration_min_margin
seconds (a job of a few milliseconds varies by more than twice with the machine's load).
Median and MAD each move by at most one rank per run, so one outlier cannot drag the bounds
towards itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

from cronwrap.wrapper.events import Cadence, Finished

from ..config import Config
from ..model import BoundKind, DurationAnomaly, DurationStats, JobKey
from ..store import Job

MIN_BASELINE_RUNS = 5  # successful runs needed before learned bounds judge a run
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation


def learned_bounds(sample: Iterable[int], factor: float, min_ratio: float, margin_ms: int = 0
                   ) -> tuple[int | None, int] | None:
    """(low, high) in ms from successful runs' durations (ms), each at least `margin_ms` from
    the median (low None: no lower bound left); None with too few runs."""
    durations = sorted(sample)
    if len(durations) < MIN_BASELINE_RUNS:
        return None
    middle = median_of(durations)
    centre = math.log(max(middle, 1))
    spread = MAD_TO_SIGMA * median_of(sorted(abs(math.log(max(d, 1)) - centre)
                                             for d in durations))
    tolerance = max(factor * spread, math.log(max(min_ratio, 1.0)))
    low = min(round(math.exp(centre - tolerance)), round(middle - margin_ms))
    high = max(round(math.exp(centre + tolerance)), round(middle + margin_ms))
    return (low if low > 0 else None), high


def median_of(ordered: list[int] | list[float]) -> float:
    """The median of a sorted, non-empty list (the mean of the middle two for an even length)."""
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def stats(sample: tuple[int, ...], cadence: Cadence, config: Config) -> DurationStats:
    """The statistics of `sample` and the bounds the job's next successful run is judged by."""
    low = high = None
    low_kind = high_kind = None
    learned = (learned_bounds(sample, config.duration_factor, config.duration_min_ratio,
                              round(config.duration_min_margin * 1000))
               if cadence.duration_baseline is not False else None)
    if learned is not None:
        low, high = learned
        low_kind = None if low is None else BoundKind.learnedLow
        high_kind = BoundKind.learnedHigh
    if cadence.min_duration is not None and (low is None or cadence.min_duration * 1000 > low):
        low, low_kind = math.ceil(cadence.min_duration * 1000), BoundKind.minDuration
    if cadence.max_duration is not None and (high is None or cadence.max_duration * 1000 < high):
        high, high_kind = math.floor(cadence.max_duration * 1000), BoundKind.maxDuration
    if not sample:
        return DurationStats(low=low, low_kind=low_kind, high=high, high_kind=high_kind)
    ordered = sorted(sample)
    return DurationStats(len(ordered), ordered[0], round(median_of(ordered)), ordered[-1],
                         low, low_kind, high, high_kind)


def judge(job: Job, event: Finished, cadence: Cadence, config: Config) -> DurationAnomaly | None:
    """The bound a successful run broke, judged by the job's runs before it; None for a run
    within its bounds and for a run that failed (failures are judged by their exit)."""
    if event.exit_status != 0 or event.signal != 0 or event.timed_out:
        return None
    bounds = stats(job.duration_sample, cadence, config)
    took = event.duration_ms
    if bounds.low is not None and bounds.low_kind is not None and took < bounds.low:
        return DurationAnomaly(took, bounds.low, bounds.low_kind, bounds.median)
    if bounds.high is not None and bounds.high_kind is not None and took > bounds.high:
        return DurationAnomaly(took, bounds.high, bounds.high_kind, bounds.median)
    return None


def learn(job: Job, event: Finished, anomaly: DurationAnomaly | None, cadence: Cadence,
          config: Config) -> Job:
    """The job after a counted run: an anomaly counted; a successful run's duration added to
    its sample (anomalous ones too: a lasting change becomes the norm within half a window);
    the statistics and the next run's bounds recomputed."""
    rec = job.record
    if anomaly is not None:
        rec = replace(rec, duration_anomalies=rec.duration_anomalies + 1)
    sample = job.duration_sample
    if event.exit_status == 0 and event.signal == 0 and not event.timed_out:
        sample = (*sample, event.duration_ms)[-config.duration_window:] \
            if config.duration_window else ()
    return replace(job, duration_sample=sample, durations_under=inputs_of(cadence, config),
                   record=replace(rec, durations=stats(sample, cadence, config)))


def inputs_of(cadence: Cadence, config: Config) -> str:
    """What `stats` reads besides the sample (the settings, the cadence's bounds), as a job
    stores it beside the statistics it computed (Job.durations_under)."""
    return repr((config.duration_window, config.duration_factor, config.duration_min_ratio,
                 config.duration_min_margin, cadence.min_duration, cadence.max_duration,
                 cadence.duration_baseline))


def refresh(jobs: dict[JobKey, Job], config: Config) -> dict[JobKey, Job]:
    """The jobs as loaded, with samples cut to duration_window (it may have shrunk) and their
    statistics computed with the configuration now in force and their declared cadence.  A job
    whose stored statistics were computed from those very inputs (durations_under) keeps them
    as stored: `stats` would give the same, and 10,000 jobs' recomputation would delay READY."""
    refreshed = dict(jobs)
    for key, job in jobs.items():
        under = inputs_of(job.cadence, config)
        if job.durations_under == under:
            continue
        sample = job.duration_sample[-config.duration_window:] if config.duration_window else ()
        refreshed[key] = replace(job, duration_sample=sample, durations_under=under,
                                 record=replace(job.record, durations=stats(sample, job.cadence,
                                                                            config)))
    return refreshed
