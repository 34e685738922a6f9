"""A run's life end to end (real wrapper, agent, snmpd, snmptrapd): start times, lost wrappers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from agent_support import cronwrap_command
from cronwrap.wrapper.logs import log_name
from e2e_support import Rig, instance, parse_date_and_time, received, rig
from netsnmp import have_netsnmp
from wrapper_helpers import holds_open, process_gone, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]


def test_a_failed_run_after_a_lock_wait_is_failed_with_its_exit_status(tmp_path: Path) -> None:
    release, running = tmp_path / "release", tmp_path / "running"
    with rig(tmp_path) as r:
        first = r.start_wrap("-n", "waity", "--", "sh", "-c",
                             f"touch {running}; while [ ! -e {release} ]; do sleep 0.05; done")
        wait_for(running.exists, "the first run to start")
        second = r.start_wrap("-n", "waity", "--lock-wait", "60s", "--", "sh", "-c", "exit 3")
        lock_file = tmp_path / "locks" / "waity.0.lock"
        wait_for(lambda: holds_open(second.pid, lock_file), "the second run to wait for the lock")
        time.sleep(0.5)  # a wait longer than the waiting run's own duration, as in the field
        release.touch()
        first.communicate(timeout=60)
        second.communicate(timeout=60)
        assert (first.returncode, second.returncode) == (0, 3)
        r.wait_for_runs("waity", 2)
        line = received(r.trapd, "cronJobFailed", "waity")
        assert 'cronJobLastExitStatus."root"."waity" = INTEGER: 3' in line
        row = r.agent.status("waity")["root/waity"]
        assert (row["state"], row["last_exit_status"], row["running_pid"]) == ("failed", 3, None)
        assert r.get(instance("cronJobState", "waity")) == ["INTEGER: failed(2)"]
        # the row's start is the second run's start, the one its log is named after
        assert Path(row["last_log_path"]).name == log_name(row["last_start"])


def test_the_last_success_of_a_successful_last_run_is_its_start(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        for _ in range(2):
            assert r.wrap("-n", "good", "--", "true").returncode == 0
        r.wait_for_runs("good", 2)
        row = r.agent.status("good")["root/good"]
        assert row["state"] == "ok" and row["last_success"] == row["last_start"]
        start, success = r.get(instance("cronJobLastStart", "good"),
                               instance("cronJobLastSuccess", "good"))
        assert parse_date_and_time(start.split(": ", 1)[1]) == parse_date_and_time(
            success.split(": ", 1)[1])



def start_lost_run(r: Rig, tmp_path: Path, name: str) -> tuple[int, int, Path]:
    """Start a run of `name`, SIGKILL its wrapper once the job runs; (wrapper pid, job pid,
    the file whose creation ends the orphaned job)."""
    job_pid_file, release = tmp_path / "job.pid", tmp_path / "release"
    wrapper = r.start_wrap("-n", name, "--", "sh", "-c",
                           f"echo $$ > {job_pid_file}.tmp; mv {job_pid_file}.tmp {job_pid_file}; "
                           f"while [ ! -e {release} ]; do sleep 0.05; done")
    wait_for(job_pid_file.exists, "the job to start")
    wait_for(lambda: r.agent.status(name)[f"root/{name}"]["state"] == "running",
             "the agent to see the run")
    wrapper.kill()
    wrapper.communicate(timeout=30)
    return wrapper.pid, int(job_pid_file.read_text()), release


def test_a_killed_wrapper_is_noticed_and_the_next_start_names_the_orphan(tmp_path: Path) -> None:
    config = "[agent]\n# seconds a wrapper pid may be gone\ndead_pid_grace = 0.5\n"
    with rig(tmp_path, config=config) as r:
        wrapper_pid, job_pid, release = start_lost_run(r, tmp_path, "lost")
        try:
            line = received(r.trapd, "cronJobWrapperLost", "lost")
            assert f'cronJobRunningPid."root"."lost" = Gauge32: {wrapper_pid}' in line
            start = r.agent.status("lost")["root/lost"]["last_start"]
            (row_start,) = r.get(instance("cronJobLastStart", "lost"))
            assert f'cronJobLastStart."root"."lost" = {row_start}\t' in line  # the lost run's
            assert r.get(instance("cronJobState", "lost")) == ["INTEGER: wrapperLost(12)"]
            check = subprocess.run([cronwrap_command() or "cronwrap", "status", "--socket",
                                    str(r.agent.socket), "--nagios", "lost"],
                                   capture_output=True, text=True, timeout=60, check=False)
            assert (check.returncode, check.stdout.split(" - ")[0]) == (2, "CRONWRAP CRITICAL")
            second = r.wrap("-n", "lost", "--", "true")
            assert second.returncode == 75, second.stderr
            assert f"pid {job_pid} since" in second.stderr
            overlapped = received(r.trapd, "cronJobOverlapped", "lost")
            assert f'cronJobRunningPid."root"."lost" = Gauge32: {job_pid}' in overlapped
        finally:
            release.touch()
        assert r.trapd.text().count("CRON-JOBS-MIB::cronJobWrapperLost\t") == 1
        row = r.agent.status("lost")["root/lost"]
        assert (row["state"], row["running_pid"], row["last_start"]) == (
            "wrapperLost", job_pid, start)
        wait_for(lambda: process_gone(job_pid), "the orphaned job to end")
        assert r.wrap("-n", "lost", "--", "true").returncode == 0
        received(r.trapd, "cronJobRecovered", "lost")
        assert r.get(instance("cronJobState", "lost")) == ["INTEGER: ok(1)"]


def test_a_start_that_finds_the_orphan_reports_the_lost_wrapper_at_once(tmp_path: Path) -> None:
    config = "[agent]\n# the watcher would wait an hour\ndead_pid_grace = 3600\n"
    with rig(tmp_path, config=config) as r:
        _, job_pid, release = start_lost_run(r, tmp_path, "lost")
        try:
            assert r.wrap("-n", "lost", "--", "true").returncode == 75
            line = received(r.trapd, "cronJobWrapperLost", "lost")
        finally:
            release.touch()
        assert f'cronJobRunningPid."root"."lost" = Gauge32: {job_pid}' in line
        received(r.trapd, "cronJobOverlapped", "lost")
        assert r.get(instance("cronJobState", "lost")) == ["INTEGER: wrapperLost(12)"]
