"""Runs that failed while the agent was down still notify, late: real wrappers, agent, snmpd, trapd.

The wrappers spool their events while the agent is stopped; after the restart the agent applies
them from the spool and raises each failed, timed-out and overlapped run's notification, marked
late (cronNotifyLate true) and carrying the run's own start time (cronNotifyRunTime). Hundreds
of late failures of one job are coalesced: the first few one by one, the rest in one
notification whose cronNotifyRunCount says how many runs it stands for.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest
from agent_support import cronwrap_command, spool, wait_for
from cronwrap.agent.config import Config
from cronwrap.wrapper.events import Finished, new_event_id
from e2e_support import Rig, instance, notification, parse_date_and_time, received, rig
from netsnmp import free_port, have_netsnmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

LATE = "CRON-JOBS-MIB::cronNotifyLate.0 = INTEGER: true(1)"
ON_TIME = "CRON-JOBS-MIB::cronNotifyLate.0 = INTEGER: false(2)"
RUN_TIME = re.compile(r"CRON-JOBS-MIB::cronNotifyRunTime\.0 = STRING: ([^\t]+)")
RUN_COUNT = re.compile(r"CRON-JOBS-MIB::cronNotifyRunCount\.0 = Gauge32: (\d+)")


def run_time(line: str) -> dt.datetime:
    match = RUN_TIME.search(line)
    assert match, f"no cronNotifyRunTime in {line!r}"
    when = parse_date_and_time(match.group(1))
    assert when is not None
    return when


def spooled(r: Rig) -> list[Path]:
    return list(r.agent.spool.glob("*/*.json"))


def fail_while_the_agent_is_down(r: Rig) -> tuple[dt.datetime, dt.datetime]:
    """With the agent stopped: a failing run, a timed-out run, an overlapped run and the
    killed holder of the lock; returns the window they ran in."""
    r.agent.stop()
    before = dt.datetime.now(dt.UTC)
    assert r.wrap("-n", "nightly", "--", "sh", "-c", "exit 3").returncode == 3
    done = r.wrap("-n", "slow", "--timeout", "1s", "--", "sleep", "30")
    assert done.returncode == 124, done.stderr
    holder = r.start_wrap("-n", "long", "--", "sleep", "60")
    try:
        # the holder's started event is spooled once it holds the lock and runs the job
        wait_for(lambda: any('"long"' in p.read_text() for p in spooled(r)),
                 "the holder's started event in the spool")
        second = r.wrap("-n", "long", "--", "true")
        assert second.returncode == 75, second.stderr
    finally:
        holder.terminate()
        holder.wait(30)
    after = dt.datetime.now(dt.UTC)
    assert len(spooled(r)) == 2 + 2 + 1 + 2  # started + finished of three runs, one overlap
    return before, after


def assert_late_traps(r: Rig, before: dt.datetime, after: dt.datetime) -> None:
    earliest = before - dt.timedelta(seconds=0.1)  # DateAndTime has deciseconds
    failed = received(r.trapd, "cronJobFailed", "nightly", timeout=30)
    assert LATE in failed and 'cronJobLastExitStatus."root"."nightly" = INTEGER: 3' in failed
    assert earliest <= run_time(failed) <= after
    timed_out = received(r.trapd, "cronJobTimedOut", "slow", timeout=30)
    assert LATE in timed_out and 'cronJobTimeouts."root"."slow" = Counter32: 1' in timed_out
    assert earliest <= run_time(timed_out) <= after
    overlapped = received(r.trapd, "cronJobOverlapped", "long", timeout=30)
    assert LATE in overlapped and 'cronJobOverlaps."root"."long" = Counter32: 1' in overlapped
    r.trapd.wait_for(r"cronJobFailed\t", count=2, timeout=30)  # nightly's, then long's
    killed = received(r.trapd, "cronJobFailed", "long", timeout=30)
    assert LATE in killed and 'cronJobLastSignal."root"."long" = INTEGER: 15' in killed
    # the overlapped start came after the holder's start, both inside the window
    assert earliest <= run_time(killed) <= run_time(overlapped) <= after
    for line in (failed, timed_out, overlapped, killed):
        assert RUN_COUNT.search(line).group(1) == "1"  # type: ignore[union-attr]
    r.wait_for_runs("nightly", 1)
    assert not spooled(r)


def test_failures_spooled_while_the_agent_was_down_trap_late_through_snmpd(
        tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        before, after = fail_while_the_agent_is_down(r)
        r.agent.start()
        assert_late_traps(r, before, after)
        # a live failure afterwards is not late, and carries its own start time too
        assert r.wrap("-n", "nightly", "--", "sh", "-c", "exit 4").returncode == 4
        r.trapd.wait_for(r"cronJobFailed\t", count=3, timeout=30)
        live = notification(r.trapd.text(), "cronJobFailed", "nightly")
        assert ON_TIME in live and 'INTEGER: 4' in live
        assert run_time(live) > after


def test_late_traps_wait_for_snmpd_when_it_comes_up_after_the_agent(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        assert r.master is not None
        before, after = fail_while_the_agent_is_down(r)
        r.master.stop()
        r.agent.start()  # drains the spool with no snmpd to send to: the traps are queued
        wait_for(lambda: not spooled(r), "the spool drained", proc=r.agent.proc,
                 log=r.agent.log)
        assert "cronJobFailed" not in r.trapd.text()
        r.master.start()
        assert_late_traps(r, before, after)


def test_late_traps_from_the_standalone_agent(tmp_path: Path) -> None:
    port = free_port()
    config = f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\ncommunity = "public"\n'
    with rig(tmp_path, agentx=False, listen=True, trap_port=port, config=config) as r:
        before, after = fail_while_the_agent_is_down(r)
        r.agent.start()
        assert_late_traps(r, before, after)


FLOOD = 300


def test_hundreds_of_late_failures_of_one_job_are_coalesced(tmp_path: Path) -> None:
    individually = Config().late_notifications_per_job
    with rig(tmp_path) as r:
        r.agent.stop()
        # one real wrapper run, then a flood spooled exactly as the wrapper spools
        assert r.wrap("-n", "flood", "--", "sh", "-c", "exit 1").returncode == 1
        first = dt.datetime.now(dt.UTC).timestamp()
        for i in range(FLOOD - 1):
            start = first + i
            spool(r.agent.spool, os.getuid(), Finished(
                new_event_id(), "flood", start + 0.5, 4242, start_time=start, exit_status=1,
                duration_ms=500))
        r.agent.start()
        summary = r.trapd.wait_for(r"cronNotifyRunCount\.0 = Gauge32: (?!1\t)\d+", timeout=60)
        r.wait_for_runs("flood", FLOOD)
        lines = [line for line in r.trapd.text().splitlines()
                 if "OID: CRON-JOBS-MIB::cronJobFailed\t" in line]
        counts = [int(RUN_COUNT.search(line).group(1)) for line in lines]  # type: ignore[union-attr]
        assert counts == [1] * individually + [FLOOD - individually], summary
        assert all(LATE in line for line in lines)
        assert 'cronJobFailures."root"."flood" = Counter32: 300' in lines[-1]
        newest = dt.datetime.fromtimestamp(first + FLOOD - 2, dt.UTC)
        assert abs(run_time(lines[-1]) - newest) < dt.timedelta(seconds=0.2)
        assert r.get(instance("cronJobFailures", "flood")) == ["Counter32: 300"]
        status = subprocess.run([cronwrap_command() or "cronwrap", "status", "flood", "--json",
                                 "--socket", str(r.agent.socket)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert '"failures": 300' in status.stdout
