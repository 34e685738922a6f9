"""End to end through snmpd: cronwrap -> cronwrap-agent -> AgentX -> snmpd -> managers, traps."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from agent_support import cronwrap_command, request, wait_for
from cronwrap.agent import mib
from cronwrap.wrapper.events import Finished, new_event_id
from e2e_support import (
    BAD,
    COUNT,
    GOOD,
    ROOT,
    TABLE,
    V2C,
    Rig,
    assert_rows,
    instance,
    parse_table_walk,
    received,
    rig,
    run_good_and_bad,
    serving,
)
from netsnmp import free_port, have_netsnmp, snmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]


def test_counts_states_and_times_through_snmpd(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        before, after = run_good_and_bad(r)
        events = 2 * (GOOD + BAD)  # a started and a finished per run
        assert r.get(COUNT, "CRON-JOBS-MIB::cronEventsAccepted.0",
                     "CRON-JOBS-MIB::cronEventsRejected.0") == [
            "Gauge32: 2", f"Counter32: {events}", "Counter32: 0"]
        assert r.get(instance("cronJobRuns", "good"), instance("cronJobFailures", "bad"),
                     instance("cronJobState", "bad"), instance("cronJobLastExitStatus", "bad")
                     ) == [f"Counter32: {GOOD}", f"Counter32: {BAD}", "INTEGER: failed(2)",
                           "INTEGER: 3"]

        walked = r.walk("snmpwalk", "CRON-JOBS-MIB::cronJobTable")
        assert r.walk("snmpbulkwalk", "CRON-JOBS-MIB::cronJobTable") == walked
        assert_rows(parse_table_walk(walked), before, after)

        table = r.walk("snmptable", "CRON-JOBS-MIB::cronJobTable", "-Cf", "|", "-Ci", "-CH")
        cells = {}
        for line in table.splitlines():
            if line.strip():
                index, *values = line.split("|")
                cells[index] = values
        assert set(cells) == {'"root"."good"', '"root"."bad"'}
        # columns 3..15 in order: runs, failures, ..., state is the 11th
        assert cells['"root"."good"'][:2] == [str(GOOD), "0"]
        assert cells['"root"."bad"'][:2] == [str(BAD), str(BAD)]
        assert cells['"root"."bad"'][10] == "failed" and cells['"root"."good"'][10] == "ok"


def oid_of(line: str) -> tuple[int, ...]:
    return tuple(int(part) for part in line.split(" = ", 1)[0].strip(".").split("."))


def test_walks_across_the_subtree_edges(tmp_path: Path) -> None:
    root = tuple(int(part) for part in ROOT.split("."))
    with rig(tmp_path) as r:
        run_good_and_bad(r)
        ours = r.walk("snmpwalk", ROOT, "-On", mibs=False).splitlines()
        # the scalars, two rows, and their GOOD + BAD runs in cronJobRunTable
        assert len(ours) == len(mib.Scalar) + 2 * len(mib.VALUE_COLUMNS) \
            + (GOOD + BAD) * len(mib.RUN_VALUE_COLUMNS)
        for tool in ("snmpwalk", "snmpbulkwalk"):
            for parent in ("1.3.6.1.4.1.8072.9999", "1.3.6.1.4.1.8072"):
                lines = r.walk(tool, parent, "-On", mibs=False).splitlines()
                oids = [oid_of(line) for line in lines]
                assert oids == sorted(oids) and len(set(oids)) == len(oids)
                assert [line for line, oid in zip(lines, oids, strict=True)
                        if oid[:len(root)] == root] == ours
                if parent == "1.3.6.1.4.1.8072":  # snmpd's NET-SNMP-MIB objects come first
                    assert oids[0] < root
        # each column lists the rows in index order: "root"."bad" before "root"."good"
        # (length-prefixed strings: the shorter name sorts first)
        runs = [oid_of(line) for line in ours if line.startswith(f".{TABLE}.1.3.")]
        suffix = len(root) + 4
        assert [oid[suffix:] for oid in runs] == [(4, *b"root", 3, *b"bad"),
                                                 (4, *b"root", 4, *b"good")]
        after_last = snmp("snmpgetnext", *V2C, "-On", r.address,
                          ours[-1].split(" = ", 1)[0], check=False)
        # snmpd goes on past our subtree with its own objects (snmpModules, 1.3.6.1.6.3...)
        following = oid_of(after_last.stdout.strip())
        assert following > oid_of(ours[-1]) and following[:len(root)] != root


def test_failed_and_recovered_traps(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        assert r.wrap("-n", "flaky", "--", "sh", "-c", "exit 3").returncode == 3
        failed = received(r.trapd, "cronJobFailed", "flaky")
        assert 'cronJobLastExitStatus."root"."flaky" = INTEGER: 3' in failed
        assert 'cronJobFailures."root"."flaky" = Counter32: 1' in failed

        assert r.wrap("-n", "flaky", "--", "true").returncode == 0
        recovered = received(r.trapd, "cronJobRecovered", "flaky")
        assert 'cronJobFailures."root"."flaky" = Counter32: 1' in recovered
        assert r.get(instance("cronJobState", "flaky")) == ["INTEGER: ok(1)"]


def test_overlap_trap(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        holder = r.start_wrap("-n", "long", "--", "sleep", "30")
        try:
            wait_for(lambda: state_of(r, "long") == "INTEGER: running(3)",
                     "the first run to be running")
            second = r.wrap("-n", "long", "--", "true")
            assert second.returncode == 75, second.stderr
            line = received(r.trapd, "cronJobOverlapped", "long")
            assert f'cronJobRunningPid."root"."long" = Gauge32: {holder.pid}' in line
            assert 'cronJobOverlaps."root"."long" = Counter32: 1' in line
        finally:
            holder.terminate()
            holder.wait(30)


def state_of(r: Rig, name: str) -> str:
    """cronJobState of `name` as snmpget prints it (-Ov), or its error text."""
    probe = snmp("snmpget", *V2C, "-Ov", r.address, instance("cronJobState", name),
                 mibs=True, check=False)
    return probe.stdout.strip()


def test_timeout_trap_status_and_snmp_agree(tmp_path: Path) -> None:
    """A timed-out run: exit 124 (what cron saw) and SIGTERM (what ended the job) alike in
    the table, the notification and `cronwrap status`."""
    with rig(tmp_path) as r:
        done = r.wrap("-n", "slow", "--timeout", "1s", "--", "sleep", "30")
        assert done.returncode == 124, done.stderr
        line = received(r.trapd, "cronJobTimedOut", "slow")
        assert 'cronJobTimeouts."root"."slow" = Counter32: 1' in line
        assert "CRON-JOBS-MIB::cronNotifySignal.0 = INTEGER: 15\t" in line
        assert r.get(instance("cronJobState", "slow"), instance("cronJobLastExitStatus", "slow"),
                     instance("cronJobLastSignal", "slow")) == [
            "INTEGER: timedOut(5)", "INTEGER: 124", "INTEGER: 15"]
        shown = subprocess.run(
            [str(cronwrap_command()), "status", "--socket", str(r.agent.socket), "slow"],
            capture_output=True, text=True, timeout=60, check=True).stdout
        header, row = (re.split(r"\s{2,}", line.strip()) for line in shown.splitlines())
        assert dict(zip(header, row, strict=True))["EXIT"] == "124 (sig 15)"


def test_missed_trap(tmp_path: Path) -> None:
    # --every 2s: next expected 2 s after the start, grace min(300 s, 0.5 x 2 s) = 1 s
    with rig(tmp_path, config="[agent]\nmin_every = 1.0\n") as r:  # below the 60 s floor
        assert r.wrap("-n", "tick", "--every", "2s", "--", "true").returncode == 0
        line = received(r.trapd, "cronJobMissed", "tick", timeout=30)
        assert re.search(r'cronJobMisses\."root"\."tick" = Counter32: [1-9]', line)
        wait_for(lambda: r.get(instance("cronJobState", "tick")) == ["INTEGER: missed(6)"],
                 "the row to say missed")


def test_inform_through_snmpd(tmp_path: Path) -> None:
    port = free_port()
    with rig(tmp_path, trap2sink=False, trap_port=port,
             snmpd_config=f"informsink 127.0.0.1:{port} public") as r:
        assert r.wrap("-n", "informed", "--", "sh", "-c", "exit 3").returncode == 3
        line = received(r.trapd, "cronJobFailed", "informed")
        assert 'cronJobLastExitStatus."root"."informed" = INTEGER: 3' in line


def test_snmpv3_authpriv_trap_through_snmpd(tmp_path: Path) -> None:
    engine = "0x80001f8804637261776c6579"  # snmpd's fixed engine id: snmptrapd must know it
    v3 = "-u trapuser -l authPriv -a SHA -A authpass123 -x AES -X privpass123"
    snmpd_config = (f"exactEngineID {engine}\n"
                    "createUser trapuser SHA authpass123 AES privpass123\n"
                    "trapsess -v 3 {v3} 127.0.0.1:{port}")
    port = free_port()
    trapd_config = (f"createUser -e {engine} trapuser SHA authpass123 AES privpass123\n"
                    "authUser log trapuser priv")
    with rig(tmp_path, trap2sink=False, trap_port=port, trapd_config=trapd_config,
             snmpd_config=snmpd_config.format(v3=v3, port=port)) as r:
        assert r.master is not None
        reported = snmp("snmpget", *V2C, "-Ov", "-Ox", r.master.address,
                        "1.3.6.1.6.3.10.2.1.1.0").stdout
        assert re.sub(r"[^0-9A-Fa-f]", "", reported.split(":", 1)[1]).lower() == engine[2:]
        assert r.wrap("-n", "secret", "--", "sh", "-c", "exit 3").returncode == 3
        line = received(r.trapd, "cronJobFailed", "secret")
        assert 'cronJobLastExitStatus."root"."secret" = INTEGER: 3' in line


def test_sigkilled_snmpd_comes_back_and_the_subagent_answers_again(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        assert r.master is not None and r.agent.proc is not None
        run_good_and_bad(r)
        before = r.walk("snmpwalk", ROOT, "-On", mibs=False)
        agent_pid = r.agent.proc.pid
        r.master.stop(signal.SIGKILL)
        r.master.start()  # same port, same AgentX socket path
        wait_for(lambda: serving(r.master.address), "the subagent to answer after the restart",
                 timeout=15, proc=r.agent.proc, log=r.agent.log)
        assert r.agent.proc.pid == agent_pid and r.agent.proc.poll() is None
        assert r.walk("snmpwalk", ROOT, "-On", mibs=False) == before
        sessions = re.findall(r"session \d+ serving", r.agent.log.read_text())
        assert len(sessions) == 2


JOBS = 2000


def finished(name: str) -> bytes:
    now = time.time()
    return Finished(new_event_id(), name, now, 4242, start_time=now - 0.01, exit_status=0,
                    duration_ms=10).to_wire()


def send_all(socket_path: Path, names: list[str], workers: int = 16) -> None:
    def one(name: str) -> None:
        reply = request(socket_path, finished(name))
        assert reply["ok"], reply

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, names))


def test_concurrent_bulkwalks_of_2000_jobs_while_events_arrive(tmp_path: Path) -> None:
    names = [f"job{i:04d}" for i in range(JOBS)]
    with rig(tmp_path, config=f"[agent]\nmax_jobs_per_owner = {JOBS}\n") as r:
        assert r.master is not None
        send_all(r.agent.socket, names)
        wait_for(lambda: r.get(COUNT) == [f"Gauge32: {JOBS}"], f"{JOBS} rows", timeout=60)

        stop = threading.Event()
        sent = Counter[str]()

        def keep_sending() -> None:
            while not stop.is_set():
                name = names[sent.total() % JOBS]
                reply = request(r.agent.socket, finished(name))
                assert reply["ok"], reply
                sent[name] += 1

        def bulkwalk(_: int) -> str:
            return r.walk("snmpbulkwalk", "CRON-JOBS-MIB::cronJobTable", "-Cr25")

        with ThreadPoolExecutor(5) as pool:
            sender = pool.submit(keep_sending)
            try:
                walks = list(pool.map(bulkwalk, range(4)))
            finally:
                stop.set()
            sender.result()
        assert sent.total() > 0
        for walked in walks:
            lines = walked.splitlines()
            assert len(lines) == len(mib.VALUE_COLUMNS) * JOBS
            rows = parse_table_walk(walked)
            assert list(rows) == names  # index order, each row complete
            assert all(len(row) == len(mib.VALUE_COLUMNS) and row["cronJobState"] == "ok(1)"
                       for row in rows.values())
        print(f"{sent.total()} events sent during the walks")
        accepted = r.get("CRON-JOBS-MIB::cronEventsAccepted.0")
        assert accepted == [f"Counter32: {JOBS + sent.total()}"]
        # snmpd 5.9.3 logs nothing when it drops a slow subagent (seen with a SIGSTOPped agent:
        # the manager gets genErr, which fails the walk, and the agent logs the lost session
        # and a new one), so the agent's log is the witness that the session never dropped
        agent_log = r.agent.log.read_text()
        assert "connection to the master lost" not in agent_log, agent_log
        assert len(re.findall(r"session \d+ serving", agent_log)) == 1, agent_log
        assert r.master.alive()
