"""A run's life end to end (real wrapper, agent, snmpd, snmptrapd): start times, lost wrappers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agent_support import cronwrap_command
from cronwrap.wrapper.logs import log_name
from e2e_support import instance, parse_date_and_time, received, rig
from netsnmp import have_netsnmp
from wrapper_helpers import holds_open, wait_for

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

