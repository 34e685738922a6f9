"""A job's life end to end: `cronwrap forget`, `pause`/`resume` and retirement, seen through
snmpd (AgentX), a real snmptrapd and `cronwrap status`, with real wrapper runs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from agent_support import cronwrap_command, spool, wait_for
from cronwrap.wrapper.events import Finished, new_event_id
from e2e_support import COUNT, V2C, Rig, instance, received, rig, serving
from netsnmp import have_netsnmp, snmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

FAST_CADENCE = "[agent]\nmin_every = 1.0\n"  # 1-2 s cadences, below the 60 s floor
FAST_SPOOL = ("--watch-interval", "0.5", "--spool-interval", "0.5")


def cronwrap(r: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    """`cronwrap ARGS` (a subcommand) against the rig's agent."""
    command = cronwrap_command()
    assert command is not None
    return subprocess.run([command, *args, "--socket", str(r.agent.socket)],
                          capture_output=True, text=True, timeout=60, check=False)


def status(r: Rig, name: str) -> dict[str, object]:
    done = cronwrap(r, "status", name, "--json")
    assert done.returncode == 0, done.stderr
    (job,) = json.loads(done.stdout)
    return job


def cell(r: Rig, column: str, name: str) -> str:
    """One cell as snmpget -Ov prints it, or the error text (No Such Instance...)."""
    return snmp("snmpget", *V2C, "-Ov", r.address, instance(column, name), mibs=True,
                check=False).stdout.strip()


def traps(r: Rig, kind: str, name: str) -> int:
    return sum(f"OID: CRON-JOBS-MIB::{kind}\t" in line
               and f"cronNotifyJobName.0 = STRING: {name}\t" in line
               for line in r.trapd.text().splitlines())


def start_agent_again(r: Rig) -> None:
    """Start the rig's stopped agent; return once snmpd serves its subtree again."""
    r.agent.start()
    assert r.master is not None
    wait_for(lambda: serving(r.master.address), "the agent registered with snmpd again",
             proc=r.agent.proc, log=r.agent.log)


def test_forget_removes_the_row_and_its_counts_everywhere(tmp_path: Path) -> None:
    with rig(tmp_path, agent_options=FAST_SPOOL) as r:
        for _ in range(2):
            assert r.wrap("-n", "backup", "--", "sh", "-c", "exit 1").returncode == 1
        assert r.wrap("-n", "other", "--", "true").returncode == 0
        r.wait_for_runs("backup", 2)
        forgot_at = time.time()

        done = cronwrap(r, "forget", "backup")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("forgot job backup of root: 2 runs, 2 failures")
        line = received(r.trapd, "cronJobForgotten", "backup")
        assert 'cronJobRuns."root"."backup" = Counter32: 2' in line
        assert "\tCRON-JOBS-MIB::cronNotifyRequester.0 = STRING: root\t" in line + "\t"
        assert cell(r, "cronJobRuns", "backup").startswith("No Such Instance")
        assert r.get(COUNT) == ["Gauge32: 1"]
        assert cronwrap(r, "status", "backup").returncode == 1
        assert "job backup of root forgotten at the request of root" in r.agent.log.read_text()

        # a run from before the forget, spooled and drained after it, stays forgotten
        spool(r.agent.spool, os.getuid(), Finished(
            new_event_id(), "backup", forgot_at - 1, 4242, start_time=forgot_at - 2,
            exit_status=1, duration_ms=1000))
        wait_for(lambda: not list(r.agent.spool.glob("*/*.json")), "the spool drained")
        assert cell(r, "cronJobRuns", "backup").startswith("No Such Instance")

        # a later run of the same name starts a new row from zero
        assert r.wrap("-n", "backup", "--", "true").returncode == 0
        assert r.get(instance("cronJobRuns", "backup"),
                     instance("cronJobFailures", "backup")) == ["Counter32: 1", "Counter32: 0"]

        missing = cronwrap(r, "forget", "no-such-job")
        assert missing.returncode == 1
        assert "no job named no-such-job of root" in missing.stderr


def test_a_paused_job_is_silent_until_resumed_also_across_a_restart(tmp_path: Path) -> None:
    with rig(tmp_path, config=FAST_CADENCE) as r:
        assert r.wrap("-n", "tick", "--every", "2s", "--", "true").returncode == 0
        done = cronwrap(r, "pause", "tick", "--for", "1h")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("paused job tick of root until ")
        assert cell(r, "cronJobState", "tick") == "INTEGER: paused(9)"
        assert cell(r, "cronJobPausedUntil", "tick").startswith("STRING: ")
        job = status(r, "tick")
        assert job["state"] == "paused"
        assert abs(float(job["paused_until"]) - (time.time() + 3600)) < 60  # type: ignore[arg-type]
        table = cronwrap(r, "status")
        assert "paused" in table.stdout and "root/tick: paused until " in table.stdout

        # runs are counted, but a failure raises nothing and passing slots are not missed
        assert r.wrap("-n", "tick", "--every", "2s", "--", "sh", "-c", "exit 5").returncode == 5
        slot = float(status(r, "tick")["next_expected"])  # type: ignore[arg-type]
        wait_for(lambda: float(status(r, "tick")["next_expected"]) > slot + 4,  # type: ignore[arg-type]
                 "two more slots to pass")
        assert (status(r, "tick")["runs"], status(r, "tick")["failures"]) == (2, 1)
        assert status(r, "tick")["misses"] == 0
        assert r.wrap("-n", "marker", "--", "false").returncode == 1
        received(r.trapd, "cronJobFailed", "marker")  # sent after anything tick raised
        assert traps(r, "cronJobFailed", "tick") == traps(r, "cronJobMissed", "tick") == 0

        r.agent.stop()
        start_agent_again(r)
        assert cell(r, "cronJobState", "tick") == "INTEGER: paused(9)"

        done = cronwrap(r, "resume", "tick")
        assert (done.returncode, done.stdout.strip()) == (0, "resumed job tick of root: "
                                                          "state failed")
        received(r.trapd, "cronJobMissed", "tick", timeout=30)
        assert cell(r, "cronJobPausedUntil", "tick") == 'STRING:'
        again = cronwrap(r, "resume", "tick")
        assert (again.returncode, again.stdout.strip()) == (0, "job tick of root was not paused")


def test_a_pause_that_ended_while_the_agent_was_down_is_over_after_the_restart(
        tmp_path: Path) -> None:
    with rig(tmp_path, config=FAST_CADENCE) as r:
        assert r.wrap("-n", "tick", "--every", "1h", "--", "true").returncode == 0
        assert cronwrap(r, "pause", "tick", "--for", "2s").returncode == 0
        until = float(status(r, "tick")["paused_until"])  # type: ignore[arg-type]
        r.agent.stop()
        wait_for(lambda: time.time() > until + 0.5, "the pause's end to pass")
        start_agent_again(r)
        wait_for(lambda: cell(r, "cronJobState", "tick") == "INTEGER: ok(1)",
                 "the pause to be over")
        assert status(r, "tick")["paused_until"] is None
        assert "job tick of root: its pause has ended" in r.agent.log.read_text()


def test_a_stopped_job_without_a_crontab_line_is_retired(tmp_path: Path) -> None:
    cron_d = tmp_path / "agent" / "root" / "etc" / "cron.d"
    cron_d.mkdir(parents=True)
    (cron_d / "beat").write_text("* * * * * root cronwrap -n beat --every 1s -- true\n")
    with rig(tmp_path, config=FAST_CADENCE) as r:
        assert r.wrap("-n", "gone", "--every", "1s", "--", "true").returncode == 0
        assert r.wrap("-n", "beat", "--every", "1s", "--", "true").returncode == 0
        line = received(r.trapd, "cronJobRetired", "gone", timeout=60)
        assert 'cronJobMisses."root"."gone" = Counter32: 3' in line
        assert cell(r, "cronJobState", "gone") == "INTEGER: retired(10)"
        assert cell(r, "cronJobNextExpected", "gone") == "STRING:"
        assert status(r, "gone")["state"] == "retired"
        assert "root/gone" not in cronwrap(r, "status").stderr

        # beat's line is in a crontab: it keeps being missed and is never retired; once it has
        # missed three more slots, the watcher has looked at gone as often
        seen = int(status(r, "beat")["misses"])  # type: ignore[call-overload]
        wait_for(lambda: int(status(r, "beat")["misses"]) >= seen + 3,  # type: ignore[call-overload]
                 "three more missed slots of beat", timeout=60)
        assert status(r, "beat")["state"] == "missed" and traps(r, "cronJobRetired", "beat") == 0
        assert status(r, "gone")["misses"] == 3 and traps(r, "cronJobMissed", "gone") == 3

        # a new run brings it back
        assert r.wrap("-n", "gone", "--every", "1h", "--", "true").returncode == 0
        assert cell(r, "cronJobState", "gone") == "INTEGER: ok(1)"
        assert status(r, "gone")["runs"] == 2
