"""CRON-JOBS-MIB version 2: notifications that carry their own event, a last outcome apart from
activity, a notification that clears overlapped/overrunning, discontinuity indicators.

The end-to-end tests send wrapper events to a real agent and read what a real snmptrapd (MIB
loaded) logged; the unit tests drive the core and store with real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from agent_support import cronwrap_command, send_or_spool
from cronwrap.agent import mib, store
from cronwrap.agent.config import Config
from cronwrap.agent.core import AgentCore
from cronwrap.agent.model import JobState, NotificationKind
from cronwrap.agent.store import Store
from cronwrap.wrapper.events import Finished, Overlapped, Started, new_event_id
from e2e_support import instance, parse_date_and_time, received, rig
from netsnmp import Snmptrapd, free_port, have_netsnmp
from test_agent_core_unit import KEY, T0, run_machine


def oid_text(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def started(t: float, pid: int = 10, name: str = KEY.name) -> Started:
    return Started(new_event_id(), name, t, pid)


def finished(t: float, exit_status: int = 0, pid: int = 10, name: str = KEY.name,
             signal: int = 0) -> Finished:
    return Finished(new_event_id(), name, t + 1, pid, start_time=t, exit_status=exit_status,
                    signal=signal, duration_ms=1000)


# --- the state machine -----------------------------------------------------------------------

def test_last_result_keeps_the_outcome_while_the_next_run_runs() -> None:
    job, _ = run_machine(started(T0), finished(T0, exit_status=2), started(T0 + 60, pid=11))
    assert job.record.state is JobState.running
    assert job.record.last_result is JobState.failed  # the alarm stays up while it runs again
    job, kinds = run_machine(started(T0), finished(T0, exit_status=2), started(T0 + 60, pid=11),
                             finished(T0 + 60, pid=11))
    assert job.record.last_result is JobState.ok and NotificationKind.recovered in kinds


def test_a_successful_end_of_an_overlapped_run_clears_it() -> None:
    overlap = Overlapped(new_event_id(), KEY.name, T0 + 30, 11, holder_pid=10)
    _, kinds = run_machine(started(T0), overlap, finished(T0))
    assert kinds == [NotificationKind.overlapped, NotificationKind.cleared]
    _, kinds = run_machine(started(T0), overlap, finished(T0, exit_status=1))
    assert kinds == [NotificationKind.overlapped, NotificationKind.failed]  # no clear: failed
    _, kinds = run_machine(started(T0), finished(T0))
    assert kinds == []  # nothing to clear


# --- the core: each notification carries the row as its own event left it ----------------------

def test_notifications_of_one_batch_carry_their_own_event(tmp_path: Path) -> None:
    async def scenario() -> list:
        core = AgentCore(Store(tmp_path), Config(), clock=lambda: T0 + 100)
        writer = asyncio.create_task(core.run())
        queue = core.notifications.subscribe()
        # one batch: a failure, then a success of the next run
        await asyncio.gather(core.submit(KEY.owner_uid, "alice", finished(T0, exit_status=3)),
                             core.submit(KEY.owner_uid, "alice", finished(T0 + 10, pid=11)))
        writer.cancel()
        return [queue.get_nowait() for _ in range(queue.qsize())]

    failed, recovered = asyncio.run(scenario())
    assert failed.kind is NotificationKind.failed and recovered.kind is NotificationKind.recovered
    assert failed.job.last_exit_status == 3 and failed.job.last_result is JobState.failed
    assert (failed.exit_status, failed.event_time) == (3, T0 + 1)
    assert recovered.job.last_exit_status == 0 and recovered.event_time == T0 + 11


def test_rows_have_a_counters_since_and_the_table_a_last_change(tmp_path: Path) -> None:
    clock = [T0]

    async def scenario() -> AgentCore:
        core = AgentCore(Store(tmp_path), Config(), clock=lambda: clock[0])
        writer = asyncio.create_task(core.run())
        assert core.stats().table_changed_at is None
        clock[0] = T0 + 5
        await core.submit(KEY.owner_uid, "alice", finished(T0))
        clock[0] = T0 + 9
        await core.submit(KEY.owner_uid, "alice", finished(T0 + 8))  # no new row
        writer.cancel()
        return core

    core = asyncio.run(scenario())
    assert core.stats().table_changed_at == T0 + 5
    assert core.records()[0].counters_since == T0 + 5
    assert Store(tmp_path).load_jobs()[KEY].record.counters_since == T0 + 5


def test_rows_stored_before_version_2_get_a_result_and_the_upgrade_time(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / store.DB_NAME, isolation_level=None)
    for number, script in enumerate(store.MIGRATIONS[:3], start=1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
    db.execute("INSERT INTO jobs (owner_uid, name, owner, state, last_exit_status) "
               "VALUES (1000, 'backup', 'alice', 3, 2)")  # running, after a failed run
    db.close()
    before = time.time()
    record = Store(tmp_path).load_jobs()[KEY].record
    assert record.state is JobState.running and record.last_result is JobState.failed
    assert record.counters_since is not None and before - 1 <= record.counters_since


# --- end to end: real agent, real snmptrapd ----------------------------------------------------

e2e = pytest.mark.skipif(not have_netsnmp() or cronwrap_command() is None,
                         reason="Net-SNMP tools or the cronwrap package are not installed")


def _standalone(tmp_path: Path):
    port = free_port()
    config = f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\ncommunity = "public"\n'
    return rig(tmp_path, agentx=False, listen=True, trap_port=port, config=config)


@pytest.mark.integration
@e2e
def test_a_late_failure_of_an_older_run_carries_its_own_exit_status(tmp_path: Path) -> None:
    # Regression (issue 14): a cronJobFailed about a run older than the row's last run carried
    # the row's exit status, 0, from the newer successful run.
    with _standalone(tmp_path) as r:
        now = time.time()
        newer = finished(now - 10, pid=os.getpid(), name="older")
        older = Finished(new_event_id(), "older", now - 50, os.getpid() + 1,
                         start_time=now - 100, exit_status=3, signal=0, duration_ms=50_000)
        assert send_or_spool(r.agent.socket, r.agent.spool, newer) == "acked"
        assert send_or_spool(r.agent.socket, r.agent.spool, older) == "acked"
        line = received(r.trapd, "cronJobFailed", "older")
        assert "CRON-JOBS-MIB::cronNotifyExitStatus.0 = INTEGER: 3\t" in line
        assert "CRON-JOBS-MIB::cronNotifySignal.0 = INTEGER: 0\t" in line
        event_time = parse_date_and_time(
            line.split("cronNotifyEventTime.0 = STRING: ")[1].split("\t")[0])
        assert event_time is not None and abs(event_time.timestamp() - (now - 50)) < 0.2
        assert 'cronJobLastResult."root"."older" = INTEGER: ok(1)' in line  # the row's
        assert r.get(instance("cronJobLastExitStatus", "older")) == ["INTEGER: 0"]


@pytest.mark.integration
@e2e
def test_running_again_keeps_last_result_and_an_overlap_is_cleared(tmp_path: Path) -> None:
    with _standalone(tmp_path) as r:
        now = time.time()
        pid = os.getpid()
        for event in (started(now - 60, pid, "flaky"), finished(now - 60, 2, pid, "flaky"),
                      started(now - 30, pid + 1, "flaky")):
            assert send_or_spool(r.agent.socket, r.agent.spool, event) == "acked"
        assert r.get(instance("cronJobState", "flaky"), instance("cronJobLastResult", "flaky")) \
            == ["INTEGER: running(3)", "INTEGER: failed(2)"]
        for event in (Overlapped(new_event_id(), "flaky", now - 20, pid + 2, holder_pid=pid + 1),
                      finished(now - 30, 0, pid + 1, "flaky")):
            assert send_or_spool(r.agent.socket, r.agent.spool, event) == "acked"
        recovered = received(r.trapd, "cronJobRecovered", "flaky")
        assert "cronNotifyExitStatus.0 = INTEGER: 0\t" in recovered
        assert r.get(instance("cronJobLastResult", "flaky")) == ["INTEGER: ok(1)"]
        # an overlap of a job with no alarm: cleared by its holder's successful end
        for event in (started(now - 10, pid + 3, "steady"),
                      Overlapped(new_event_id(), "steady", now - 5, pid + 4, holder_pid=pid + 3),
                      finished(now - 10, 0, pid + 3, "steady")):
            assert send_or_spool(r.agent.socket, r.agent.spool, event) == "acked"
        cleared = received(r.trapd, "cronJobCleared", "steady")
        assert 'cronJobState."root"."steady" = INTEGER: ok(1)' in cleared


# --- a receiver set up as docs/mib.md says prints names ---------------------------------------

def documented_mibs_line() -> str:
    """The module list of docs/mib.md's snmp.conf `mibs +...` line."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "mib.md").read_text()
    (line,) = [line.strip() for line in doc.splitlines() if line.strip().startswith("mibs +")]
    return line.removeprefix("mibs +")


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_snmptrapd_with_the_documented_mibs_prints_every_varbind_by_name(tmp_path: Path) -> None:
    # Regression (issue 14): without SNMPv2-MIB (Debian ships none) snmptrapd printed
    # SNMPv2-SMI::mib-2.1.3.0 and snmpModules.1.1.4.1.0, so handlers matching snmpTrapOID.0
    # found nothing.
    modules = documented_mibs_line()
    assert "SNMPv2-MIB" in modules.split(":")
    with Snmptrapd(tmp_path / "trapd", mibs=modules) as trapd:
        subprocess.run(["snmptrap", "-v2c", "-c", "public", "-m", "", f"127.0.0.1:{trapd.port}",
                        "", oid_text(mib.notification_oid(NotificationKind.failed)),
                        oid_text(mib.notify_object_oid(mib.NotifyObject.cronNotifyJobName)
                                 + (0,)), "s", "backup"], check=True, timeout=30)
        (line,) = trapd.wait_for(r"[^\n]*cronNotifyJobName[^\n]*")
    assert "SNMPv2-MIB::sysUpTime.0 = Timeticks:" in line
    assert "SNMPv2-MIB::snmpTrapOID.0 = OID: CRON-JOBS-MIB::cronJobFailed\t" in line
    assert "SNMPv2-SMI" not in line and "iso." not in line
