"""cronJobRunTable and `cronwrap status JOB --history`: each job's last N finished runs.

The end-to-end test reports runs to a real agent serving both front ends at once (AgentX under
a real snmpd, and standalone), one of them spooled (late), and reads the history back with
snmpwalk through each front end and with `cronwrap status --history`, before and after an
agent restart.  The unit tests drive the core and the store with real SQLite files.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from agent_support import run_cronwrap, send_or_spool, spool, wait_for
from cronwrap.agent import mib, mibvalues
from cronwrap.agent.config import Config, ConfigError, load
from cronwrap.agent.core import AgentCore, job_json
from cronwrap.agent.model import JobKey, JobState, RunRecord
from cronwrap.agent.snapshot import MibSnapshot
from cronwrap.agent.store import Store
from cronwrap.wrapper.events import Finished, Started, new_event_id
from e2e_support import V2C, rig, serving
from netsnmp import have_netsnmp, snmp

e2e = pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
T0 = 1_800_000_000.0
UID = os.getuid()


def finished(name: str, start: float, exit_status: int = 0, signal: int = 0,
             timed_out: bool = False, pid: int = 100) -> Finished:
    return Finished(new_event_id(), name, start + 2, pid, start_time=start,
                    exit_status=exit_status, signal=signal, duration_ms=2000 + exit_status,
                    timed_out=timed_out)


# --- the core and the store ------------------------------------------------------------------

def apply(tmp_path: Path, config: Config, *events: tuple[Finished | Started, bool]) -> AgentCore:
    async def scenario() -> AgentCore:
        core = AgentCore(Store(tmp_path), config, clock=lambda: T0 + 1000)
        runner = asyncio.create_task(core.run())
        for event, late in events:
            await core.submit(UID, "root", event, late=late)
        core.stop()
        await runner
        return core

    return asyncio.run(scenario())


def test_the_newest_runs_are_kept_with_their_own_facts_and_survive_a_restart(
        tmp_path: Path) -> None:
    config = Config(run_history=3)
    events = [(finished("job", T0 + 10 * i, exit_status=i), False) for i in range(4)]
    events.append((finished("job", T0 + 100, 124, 15, timed_out=True), True))
    core = apply(tmp_path, config, *events)
    history = core.jobs()[JobKey(UID, "job")].record.history
    assert history == (
        RunRecord(3, T0 + 20, 2002, 2, 0, JobState.failed, False),
        RunRecord(4, T0 + 30, 2003, 3, 0, JobState.failed, False),
        RunRecord(5, T0 + 100, 2124, 124, 15, JobState.timedOut, True),
    )
    again = AgentCore(Store(tmp_path), config)
    assert again.jobs()[JobKey(UID, "job")].record.history == history
    smaller = AgentCore(Store(tmp_path), Config(run_history=1))
    assert smaller.jobs()[JobKey(UID, "job")].record.history == history[-1:]
    none = AgentCore(Store(tmp_path), Config(run_history=0))
    assert none.jobs()[JobKey(UID, "job")].record.history == ()


def test_the_store_holds_exactly_the_history_after_a_forget_and_a_new_row(tmp_path: Path) -> None:
    config = Config(run_history=2)
    apply(tmp_path, config, *[(finished("job", T0 + i), False) for i in range(5)])

    async def forget_then_run() -> None:
        core = AgentCore(Store(tmp_path), config, clock=lambda: T0 + 1000)
        runner = asyncio.create_task(core.run())
        await core.forget(JobKey(UID, "job"), "root")
        await core.submit(UID, "root", finished("job", T0 + 2000, 7), late=False)
        core.stop()
        await runner

    asyncio.run(forget_then_run())
    reloaded = AgentCore(Store(tmp_path), config).jobs()[JobKey(UID, "job")].record.history
    assert reloaded == (RunRecord(1, T0 + 2000, 2007, 7, 0, JobState.failed, False),)


def test_no_history_when_run_history_is_0(tmp_path: Path) -> None:
    core = apply(tmp_path, Config(run_history=0), (finished("job", T0), False))
    assert core.jobs()[JobKey(UID, "job")].record.history == ()
    assert job_json(core.jobs()[JobKey(UID, "job")], core.jobs()[JobKey(UID, "job")].cadence)[
        "history"] == []


@pytest.mark.parametrize("value", ["101", "-1", "2.5", '"5"'])
def test_run_history_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f"[agent]\nrun_history = {value}\n")
    with pytest.raises(ConfigError, match="run_history"):
        load(path)


def test_the_snapshot_shows_exactly_the_history(tmp_path: Path) -> None:
    core = apply(tmp_path, Config(run_history=2),
                 *[(finished("job", T0 + i, exit_status=i), False) for i in range(3)])
    snapshot = MibSnapshot()
    core.add_listener(snapshot)
    record = core.jobs()[JobKey(UID, "job")].record
    index = mibvalues.row_index("root", "job")

    def run_cells() -> dict[tuple[int, ...], object]:
        cells = {}
        entry = snapshot.get_next(mib.RUN_TABLE)
        while entry is not None and entry.oid[:len(mib.RUN_TABLE)] == mib.RUN_TABLE:
            cells[entry.oid] = entry.value
            entry = snapshot.get_next(entry.oid)
        return cells

    cells = run_cells()
    exit_column = mib.run_column_oid(mib.RunColumn.cronJobRunExitStatus)
    assert {oid: int(v) for oid, v in cells.items() if oid[:len(exit_column)] == exit_column} \
        == {exit_column + index + (2,): 1, exit_column + index + (3,): 2}
    assert len(cells) == 2 * len(mib.RUN_VALUE_COLUMNS)
    newer = replace(record, history=(*record.history[1:], RunRecord(
        4, T0 + 9, 1, 0, 0, JobState.ok, True)))
    snapshot.job_changed(newer)
    cells = run_cells()
    late_column = mib.run_column_oid(mib.RunColumn.cronJobRunLate)
    assert sorted(oid[-1] for oid in cells if oid[:len(late_column)] == late_column) == [3, 4]
    assert int(cells[late_column + index + (4,)]) == 1
    snapshot.job_removed(record.key)
    assert run_cells() == {}


# --- end to end: both front ends and the status command -------------------------------------

def walk_runs(address: str) -> list[str]:
    out = snmp("snmpwalk", *V2C, "-Oq", address, "CRON-JOBS-MIB::cronJobRunTable", mibs=True,
               timeout=60).stdout
    # a standalone walk that reaches the end of the agent's view says so on one more line
    return [line for line in out.splitlines()
            if '"hist"' in line and "No more variables left" not in line]


@pytest.mark.integration
@e2e
def test_both_front_ends_and_status_show_the_last_runs(tmp_path: Path) -> None:
    config = "[agent]\nrun_history = 3\n"
    options = ("--watch-interval", "0.5", "--spool-interval", "0.5")
    with rig(tmp_path, agentx=True, listen=True, config=config, agent_options=options) as r:
        now = time.time()
        reported = [finished("hist", now - 500, 0), finished("hist", now - 400, 1),
                    finished("hist", now - 300, 143, 15),
                    finished("hist", now - 200, 124, 15, timed_out=True)]
        for event in reported:
            assert send_or_spool(r.agent.socket, r.agent.spool, event) == "acked"
        spool(r.agent.spool, UID, finished("hist", now - 100, 3))  # learnt late, from the spool
        r.wait_for_runs("hist", 5)
        through_snmpd = walk_runs(r.master.address)
        through_standalone = walk_runs(r.listener)
        assert through_snmpd == through_standalone
        by_column: dict[str, dict[int, str]] = {}
        for line in through_snmpd:
            match = re.fullmatch(r'CRON-JOBS-MIB::(\w+)\."root"\."hist"\.(\d+) (.*)', line)
            assert match, line
            by_column.setdefault(match[1], {})[int(match[2])] = match[3]
        assert by_column["cronJobRunExitStatus"] == {3: "143", 4: "124", 5: "3"}
        assert by_column["cronJobRunSignal"] == {3: "15", 4: "15", 5: "0"}
        assert by_column["cronJobRunResult"] == {3: "failed", 4: "timedOut", 5: "failed"}
        assert by_column["cronJobRunLate"] == {3: "false", 4: "false", 5: "true"}
        assert by_column["cronJobRunDuration"] == {3: "2143 milliseconds",
                                                   4: "2124 milliseconds",
                                                   5: "2003 milliseconds"}
        assert set(by_column) == {c.name for c in mib.RUN_VALUE_COLUMNS}
        assert snmp("snmpget", *V2C, "-Oqv", r.master.address,
                    "CRON-JOBS-MIB::cronJobRunHistorySize.0", mibs=True).stdout.strip() == "3"

        status = run_cronwrap(r.agent, "status", "hist", "--history")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0] == "root/hist: last 3 finished runs"
        assert lines[1].split() == ["RUN", "STARTED", "DURATION", "CPU", "MAXRSS", "EXIT",
                                    "SIGNAL", "RESULT", "LATE"]
        rows = [line.split() for line in lines[2:]]
        # RUN, STARTED (date and time), DURATION, CPU, MAXRSS, then EXIT, SIGNAL, RESULT, LATE
        assert [(row[0], row[6:]) for row in rows] == [
            ("3", ["143", "15", "failed"]), ("4", ["124", "15", "timedOut"]),
            ("5", ["3", "-", "failed", "late"])]

        r.agent.stop()
        r.agent.start()
        wait_for(lambda: serving(r.listener), "the restarted agent serving")
        wait_for(lambda: serving(r.master.address) and walk_runs(r.master.address),
                 "the restarted agent registered with snmpd")
        assert walk_runs(r.master.address) == through_snmpd
        assert walk_runs(r.listener) == through_snmpd
