"""The JSON of a job and its runs in a status reply (documented in docs/agent.md)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cronwrap.wrapper.events import Cadence

from .model import RunRecord
from .store import Job


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
        "line_gone": rec.line_gone,
        "cadence": {k: v for k, v in asdict(cadence).items() if v is not None},
        "history": [run_json(run) for run in rec.history],
    }


def run_json(run: RunRecord) -> dict[str, Any]:
    """One run of a job's history in a status reply, oldest first (docs/agent.md)."""
    return {"number": run.number, "start": run.start, "duration_ms": run.duration_ms,
            "exit_status": run.exit_status, "signal": run.signal, "result": run.result.name,
            "late": run.late}
