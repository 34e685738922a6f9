"""Rows an older agent stored with control characters in a user's text are escaped on load."""

from __future__ import annotations

from pathlib import Path

from cronwrap.agent.model import JobKey, JobRecord
from cronwrap.agent.store import Job, Store
from cronwrap.wrapper.events import Cadence


def test_bad_text_in_a_stored_row_comes_back_escaped(tmp_path: Path) -> None:
    key = JobKey(1000, "old")
    record = JobRecord(key, "alice", last_message="x\x1b[2J\ny", log_problem="disk\x07 full",
                       last_log_path="/tmp/\x1b]0;owned\x07")
    store = Store(tmp_path)
    store.commit([Job(record, Cadence(schedule="0 3 * * *\x1b", tz="Europe/\nX"))], [], [],
                 {})
    store.close()
    (job,) = Store(tmp_path).load_jobs().values()
    assert job.record.last_message == "x\\x1b[2J\\ny"
    assert job.record.log_problem == "disk\\x07 full"
    assert job.record.last_log_path == "/tmp/\\x1b]0;owned\\x07"
    assert (job.cadence.schedule, job.cadence.tz) == ("0 3 * * *\\x1b", "Europe/\\nX")
    clean = Job(JobRecord(JobKey(1000, "new"), "alice", last_message="as sent \\ stays"))
    store = Store(tmp_path)
    store.commit([clean], [], [], {})
    assert store.load_jobs()[JobKey(1000, "new")].record.last_message == "as sent \\ stays"
