"""Runs that end too fast, and what a run used, end to end: the real wrapper running sleep and
python3, the real agent under a real snmpd, a real snmptrapd receiving cronJobDurationAnomaly
and cronJobCleared, and the table read over SNMP and through `cronwrap status --json`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from agent_support import run_cronwrap
from e2e_support import instance, received, rig
from netsnmp import have_netsnmp

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP is not installed")]

ANOMALY = "cronJobDurationAnomaly"
MB60 = "x = b'\\1' * 60_000_000"  # touched, not only allocated: 60 MB resident


def varbind(line: str, name: str) -> str:
    """The printed value of notification object `name` (instance .0) in a logged trap line."""
    match = re.search(rf"CRON-JOBS-MIB::{name}\.0 = (?:\w+: )?([^\t]*)", line)
    assert match, f"no {name} in {line}"
    return match.group(1)


def count(trapd_text: str, kind: str) -> int:
    return trapd_text.count(f"OID: CRON-JOBS-MIB::{kind}\t")


def test_a_run_15_times_faster_than_its_history_raises_an_anomaly_then_clears(
        tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        for _ in range(5):
            assert r.wrap("-n", "backup", "--", "sleep", "1.5").returncode == 0
        r.wait_for_runs("backup", 5)
        assert count(r.trapd.text(), ANOMALY) == 0
        assert r.wrap("-n", "backup", "--", "sleep", "0.1").returncode == 0  # quiet: it exited 0
        line = received(r.trapd, ANOMALY, "backup")
        assert varbind(line, "cronNotifyDurationBoundKind") == "learnedLow(3)"
        took = int(varbind(line, "cronNotifyDuration").split()[0])
        bound = int(varbind(line, "cronNotifyDurationBound").split()[0])
        median = int(varbind(line, "cronNotifyDurationMedian").split()[0])
        assert took < 1500 // 15 + 100 < bound < median  # 0.1 s against halved 1.5 s runs
        assert 'cronJobLastResult."root"."backup" = INTEGER: durationAnomaly(20)' in line
        assert r.get(instance("cronJobState", "backup"), instance("cronJobDurationAnomalies",
                                                                   "backup")) == [
            "INTEGER: durationAnomaly(20)", "Counter32: 1"]
        status = json.loads(run_cronwrap(r.agent, "status", "backup", "--json").stdout)[0]
        assert status["history"][-1]["result"] == "durationAnomaly"
        table = run_cronwrap(r.agent, "status", "backup").stdout.splitlines()
        assert table[1].split()[2] == "durationAnomaly"
        # the run's own time, as status prints it: 0.1s, or a little more on a busy machine
        assert re.match(r"root/backup: its last run succeeded in 0\.\ds: a duration anomaly "
                        r"\(its bounds now: ", table[2]), table[2]

        assert r.wrap("-n", "backup", "--", "sleep", "1.5").returncode == 0
        cleared = received(r.trapd, "cronJobCleared", "backup")
        assert 'cronJobLastResult."root"."backup" = INTEGER: ok(1)' in cleared
        assert count(r.trapd.text(), ANOMALY) == 1
        minimum, median_now, maximum, low, high = (int(v.split()[1]) for v in r.get(*(
            instance(column, "backup") for column in (
                "cronJobDurationMin", "cronJobDurationMedian", "cronJobDurationMax",
                "cronJobDurationLowBound", "cronJobDurationHighBound"))))
        assert minimum < 1000 < 1500 <= median_now <= maximum
        assert low < median_now < high


def test_a_run_shorter_than_min_duration_and_a_60_mb_run(tmp_path: Path) -> None:
    with rig(tmp_path) as r:
        assert r.wrap("-n", "quick", "--min-duration", "2s", "--", "sleep", "0.1"
                      ).returncode == 0
        line = received(r.trapd, ANOMALY, "quick")
        assert varbind(line, "cronNotifyDurationBoundKind") == "minDuration(1)"
        assert varbind(line, "cronNotifyDurationBound").split()[0] == "2000"

        assert r.wrap("-n", "big", "--", "python3", "-c", MB60).returncode == 0
        r.wait_for_runs("big", 1)
        rss, cpu = (int(v.split()[1]) for v in r.get(
            instance("cronJobLastMaxRss", "big"), instance("cronJobLastCpuTime", "big")))
        assert rss >= 58_000 and cpu > 0
        (run_rss,) = r.get('CRON-JOBS-MIB::cronJobRunMaxRss."root"."big".1')
        assert int(run_rss.split()[1]) == rss
        status = json.loads(run_cronwrap(r.agent, "status", "big", "--json").stdout)[0]
        assert (status["last_max_rss_kib"], status["last_cpu_ms"]) == (rss, cpu)
        assert count(r.trapd.text(), ANOMALY) == 1  # the 60 MB run has no bounds yet
