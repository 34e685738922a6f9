"""A run that could not write its log: silent on success, seen by the agent, the table and the NMS.

Real wrappers with an unusable log directory (a file in its way) or a full file system (a small
tmpfs, where mounting is allowed), a real agent serving AgentX to a real snmpd, a real
snmptrapd: one cronJobLogFailing per outage, one cronJobLogRecovered when logging works again.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_support import cronwrap_command
from cronwrap.agent.model import JobKey, JobRecord, NotificationKind
from cronwrap.agent.store import Job
from cronwrap.wrapper.events import Finished, new_event_id
from e2e_support import Rig, instance, received, rig
from netsnmp import have_netsnmp


def needs_daemons(test):  # noqa: ANN001, ANN201 - a decorator
    """Marks a test that runs real wrappers, an agent, snmpd and snmptrapd."""
    test = pytest.mark.integration(test)
    test = pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")(test)
    return pytest.mark.skipif(cronwrap_command() is None,
                              reason="the wrapper is not installed")(test)


NO_SPACE = "No space left on device"


def status_table(r: Rig) -> str:
    done = subprocess.run([cronwrap_command() or "cronwrap", "status", "--socket",
                           str(r.agent.socket)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def count(r: Rig, kind: str) -> int:
    return sum(f"OID: CRON-JOBS-MIB::{kind}\t" in line for line in r.trapd.text().splitlines())


def log_problem_cell(r: Rig, name: str) -> str:
    return r.get(instance("cronJobLogProblem", name))[0]


def outage_and_recovery(r: Rig, broken: tuple[str, ...], reason: str,
                        restore: Callable[[], object] | None = None) -> None:
    """An ok run that cannot log, a failing one that cannot either, then one that logs."""
    done = r.wrap(*broken, "-n", "backup", "--", "sh", "-c", "echo hello; echo world")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # cron mails nothing
    failing = received(r.trapd, "cronJobLogFailing", "backup")
    assert 'cronJobLogProblem."root"."backup" = STRING: ' in failing and reason in failing
    assert reason in log_problem_cell(r, "backup")
    assert r.get(instance("cronJobState", "backup")) == ["INTEGER: ok(1)"]
    assert "root/backup: its last run could not write its log: " in status_table(r)

    # the outage goes on, and this run fails: its report says why there is no (whole) log,
    # and the agent raises cronJobFailed but no second cronJobLogFailing
    again = r.wrap(*broken, "-n", "backup", "--", "sh", "-c", "echo oops; exit 2")
    assert again.returncode == 2 and reason in again.stderr
    received(r.trapd, "cronJobFailed", "backup")

    if restore is not None:
        restore()
    fine = r.wrap("-n", "backup", "--", "true")
    assert (fine.returncode, fine.stderr) == (0, "")
    received(r.trapd, "cronJobLogRecovered", "backup")
    assert count(r, "cronJobLogFailing") == 1 and count(r, "cronJobLogRecovered") == 1
    assert log_problem_cell(r, "backup").strip() == "STRING:"
    assert "could not write its log" not in status_table(r)


@needs_daemons
def test_an_unusable_log_directory_is_one_notification_per_outage(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with rig(tmp_path) as r:
        outage_and_recovery(r, ("--log-dir", str(blocker / "logs")),
                            f"cannot write a log under {blocker}/logs: ")



@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled up (we run as root); skipped where mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the log dir: {proc.stderr.strip()}")
    try:
        filler = mount / "filler"
        with filler.open("wb", buffering=0) as fh:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        fh.write(b"\0" * size)
                except OSError as exc:
                    assert exc.errno == 28, exc  # ENOSPC
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@needs_daemons
def test_a_full_log_file_system_is_one_notification_per_outage(
        tmp_path: Path, full_tmpfs: Path) -> None:
    with rig(tmp_path) as r:
        outage_and_recovery(r, ("--log-dir", str(full_tmpfs / "logs")), NO_SPACE,
                            restore=(full_tmpfs / "filler").unlink)


# --- the state machine alone --------------------------------------------------------------


def finished(start: float, problem: str | None) -> Finished:
    return Finished(new_event_id(), "backup", start + 1, 10, start_time=start,
                    duration_ms=1000, log_problem=problem)


def test_only_the_newest_run_moves_the_log_state() -> None:
    from cronwrap.agent.core import apply_event

    job = Job(JobRecord(JobKey(0, "backup"), "root"))
    seen = []
    for event in (finished(100, None), finished(200, "disk full"), finished(300, "disk full"),
                  finished(150, None),  # an older run from the spool: counted, no transition
                  finished(400, None)):
        job, kinds = apply_event(job, event, lambda j: j.cadence)
        seen.append((kinds, job.record.log_problem))
    assert seen == [([], None), ([NotificationKind.log_failing], "disk full"),
                    ([], "disk full"), ([], "disk full"),
                    ([NotificationKind.log_recovered], None)]
    assert job.record.runs == 5
