"""The JSON of a job and its runs in a status reply (documented in docs/agent.md)."""

from __future__ import annotations

from typing import Any

from cronwrap.wrapper.events import Cadence, safe_text

from .model import DurationStats, RunRecord
from .store import Job

SHOWN_LINE_CHARS = 255  # cronJobCommandLine's size, and what `cronwrap status JOB` shows


def job_json(job: Job, cadence: Cadence) -> dict[str, Any]:
    """The JSON of one job in a status reply (documented in docs/agent.md)."""
    rec = job.record
    return {
        "owner_uid": rec.key.owner_uid, "owner": rec.owner, "name": rec.key.name,
        "state": rec.shown_state.name, "runs": rec.runs, "failures": rec.failures,
        "overlaps": rec.overlaps, "timeouts": rec.timeouts, "misses": rec.misses,
        "last_exit_status": rec.last_exit_status, "last_signal": rec.last_signal,
        "last_start": rec.last_start, "last_success": rec.last_success,
        "last_duration_ms": rec.last_duration_ms, "running_pid": rec.running_pid,
        "next_expected": rec.next_expected, "last_log_path": rec.last_log_path,
        "log_problem": rec.log_problem, "paused_until": rec.paused_until,
        "last_result": rec.last_result.name, "counters_since": rec.counters_since,
        "source": rec.source.name, "start_problem": rec.start_problem,
        "line_gone": rec.line_gone, "ignored_by_cron": rec.ignored_by_cron,
        "outputs_discarded": rec.outputs_discarded,
        "last_cpu_ms": rec.last_cpu_ms, "last_max_rss_kib": rec.last_max_rss_kib,
        "duration_anomalies": rec.duration_anomalies, "durations": durations_json(rec.durations),
        "command_line": None if rec.command_line is None else safe_text(
            rec.command_line, SHOWN_LINE_CHARS),
        "cadence": {k: v for k, v in cadence._asdict().items() if v is not None},
        "history": [run_json(run) for run in rec.history],
    }


def durations_json(stats: DurationStats) -> dict[str, Any]:
    """A job's recent successful durations and its bounds (ms; null: none), and which bound
    is whose ("minDuration", "learnedLow"...)."""
    return {"runs": stats.runs, "min_ms": stats.minimum, "median_ms": stats.median,
            "max_ms": stats.maximum, "low_ms": stats.low,
            "low_from": stats.low_kind.name if stats.low_kind else None,
            "high_ms": stats.high,
            "high_from": stats.high_kind.name if stats.high_kind else None}


def run_json(run: RunRecord) -> dict[str, Any]:
    """One run of a job's history in a status reply, oldest first (docs/agent.md)."""
    return {"number": run.number, "start": run.start, "duration_ms": run.duration_ms,
            "exit_status": run.exit_status, "signal": run.signal, "result": run.result.name,
            "late": run.late, "cpu_ms": run.cpu_ms, "max_rss_kib": run.max_rss_kib}
