"""The Prometheus snmp_exporter module for CRON-JOBS-MIB, run by the real exporter."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cronwrap.agent.model import RESULTS, JobState
from cronwrap.agent.snmp_config import parse_snmp_config
from netsnmp import REPO, free_port, have_netsnmp, snmp, wait_until
from pysnmp.proto import rfc1902
from standalone_views import JOB_ENTRY, SUBTREE, AgentRunner, SortedView, row_index, runner

EXPORTER = shutil.which("prometheus-snmp-exporter")
GENERATOR = shutil.which("prometheus-snmp-generator")
PROMETHEUS_DIR = REPO / "packaging" / "prometheus"
SNMP_YML = PROMETHEUS_DIR / "snmp.yml"

__all__ = ["runner"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(EXPORTER is None, reason="prometheus-snmp-exporter is not installed "
                       "(Debian package prometheus-snmp-exporter)"),
]

LAST_START = datetime(2026, 11, 25, 5, 0, 0, tzinfo=UTC)
LAST_SUCCESS = datetime(2026, 11, 24, 5, 0, 0, tzinfo=UTC)
NEXT_EXPECTED = datetime(2026, 11, 26, 5, 0, 0, tzinfo=UTC)
AGENT_START = datetime(2026, 11, 25, 4, 30, 15, tzinfo=UTC)
COUNTERS_SINCE = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)
TABLE_CHANGED = datetime(2026, 11, 25, 4, 45, 0, tzinfo=UTC)
DISK_FULL = "writing /var/log/cronwrap/root/backup/x.log failed: No space left on device"
STATES = tuple(state.name for state in JobState)  # the MIB's cronJobState names
HOURLY = b"cd / && run-parts --report /etc/cron.hourly"
PAUSED_UNTIL = datetime(2026, 11, 25, 7, 0, 0, tzinfo=UTC)


def date_and_time(when: datetime | None) -> rfc1902.OctetString:
    """SNMPv2-TC DateAndTime, 11-octet UTC form; zero-length for "never"."""
    if when is None:
        return rfc1902.OctetString(b"")
    return rfc1902.OctetString(struct.pack(
        ">HBBBBBBcBB", when.year, when.month, when.day, when.hour, when.minute, when.second,
        0, b"+", 0, 0))


def job(owner: str, name: str, runs: int, failures: int, state: str, exit_status: int,
        last_success: datetime | None, log_problem: bytes = b"",
        paused_until: datetime | None = None, last_message: bytes = b"",
        command_line: bytes = b"") -> dict[tuple[int, ...], object]:
    index = row_index(owner, name)
    columns: dict[int, object] = {
        3: rfc1902.Counter32(runs), 4: rfc1902.Counter32(failures),
        5: rfc1902.Counter32(1), 6: rfc1902.Counter32(0), 7: rfc1902.Counter32(0),
        8: rfc1902.Integer32(exit_status), 9: rfc1902.Integer32(0),
        10: date_and_time(LAST_START), 11: date_and_time(last_success),
        12: rfc1902.Unsigned32(1500), 13: rfc1902.Integer32(JobState[state]),
        14: date_and_time(NEXT_EXPECTED), 15: rfc1902.Unsigned32(0),
        16: rfc1902.OctetString(log_problem), 17: date_and_time(paused_until),
        26: rfc1902.Integer32(JobState.ok if exit_status == 0 else JobState.failed),
        27: date_and_time(COUNTERS_SINCE), 36: rfc1902.OctetString(last_message),
        45: rfc1902.OctetString(command_line),
    }
    return {JOB_ENTRY + (column,) + index: value for column, value in columns.items()}


def known_view() -> SortedView:
    scalars = {
        SUBTREE + (1, 1, 0): rfc1902.Gauge32(2),
        SUBTREE + (1, 2, 0): rfc1902.Counter32(12),
        SUBTREE + (1, 3, 0): rfc1902.Counter32(1),
        SUBTREE + (1, 4, 0): date_and_time(AGENT_START),
        SUBTREE + (1, 15, 0): date_and_time(TABLE_CHANGED),
        SUBTREE + (1, 21, 0): rfc1902.Unsigned32(5),
    }
    return SortedView({
        **scalars,
        **job("root", "backup", runs=7, failures=2, state="failed", exit_status=3,
              last_success=None, log_problem=DISK_FULL.encode(),
              last_message=b"user quota exceeded on /srv", command_line=HOURLY),
        **job("alice", "report", runs=3, failures=0, state="paused", exit_status=0,
              last_success=LAST_SUCCESS, paused_until=PAUSED_UNTIL),
    })


class Exporter:
    """The real snmp_exporter on a loopback port, stopped on close."""

    def __init__(self, config: Path, log: Path) -> None:
        assert EXPORTER is not None
        self.port = free_port(socket.SOCK_STREAM)
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [EXPORTER, f"--config.file={config}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        wait_until(self._answers, 30, "snmp_exporter to listen")

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"snmp_exporter exited {self.proc.returncode}: "
                               f"{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def scrape(self, target: str, module: str = "cronwrap") -> dict[str, float]:
        """GET /snmp and return {series: value} for every sample line."""
        url = f"http://127.0.0.1:{self.port}/snmp?target={target}&module={module}"
        with urllib.request.urlopen(url, timeout=60) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                samples[series] = float(value)
        return samples

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    running = Exporter(SNMP_YML, tmp_path / "snmp_exporter.log")
    yield running
    running.close()


def test_exporter_turns_the_job_table_into_labelled_series(runner: AgentRunner,
                                                          exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    backup = 'name="backup",owner="root"'
    report = 'name="report",owner="alice"'
    assert samples[f"cronjob_runs{{{backup}}}"] == 7
    assert samples[f"cronjob_failures{{{backup}}}"] == 2
    assert samples[f"cronjob_runs{{{report}}}"] == 3
    assert samples[f"cronjob_failures{{{report}}}"] == 0
    assert samples[f"cronjob_overlaps{{{backup}}}"] == 1
    assert samples[f"cronjob_last_exit_status{{{backup}}}"] == 3
    assert samples[f"cronjob_last_duration{{{backup}}}"] == 1500
    assert samples["cronjob_count"] == 2
    assert samples["cron_events_accepted"] == 12
    assert samples["cron_events_rejected"] == 1
    assert samples["cronjob_run_history_size"] == 5
    assert not [series for series in samples if series.startswith("cronjob_run_")
                and series != "cronjob_run_history_size"]  # the run table is not walked


def test_state_is_a_state_set(runner: AgentRunner, exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    for owner, name, current in (("root", "backup", "failed"), ("alice", "report", "paused")):
        series = {state: samples[f'cronjob_state{{cronjob_state="{state}",name="{name}",'
                                 f'owner="{owner}"}}'] for state in STATES}
        assert series == {state: float(state == current) for state in STATES}


def test_last_result_is_a_state_set(runner: AgentRunner, exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    results = [s.name for s in RESULTS]
    for owner, name, last in (("root", "backup", "failed"), ("alice", "report", "ok")):
        series = {result: samples[f'cronjob_last_result{{cronjob_last_result="{result}",'
                                  f'name="{name}",owner="{owner}"}}'] for result in results}
        assert series == {result: float(result == last) for result in results}


def test_last_message_is_a_label_and_empty_when_not_sent(runner: AgentRunner,
                                                         exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    assert samples['cronjob_last_message{cronjob_last_message="user quota exceeded on /srv",'
                   'name="backup",owner="root"}'] == 1
    assert samples['cronjob_last_message{cronjob_last_message="",name="report",owner="alice"}'] \
        == 1


def test_command_line_is_a_label(runner: AgentRunner, exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    assert samples[f'cronjob_command_line{{cronjob_command_line="{HOURLY.decode()}",'
                   'name="backup",owner="root"}'] == 1
    assert samples['cronjob_command_line{cronjob_command_line="",name="report",owner="alice"}'] \
        == 1


def test_log_problem_is_a_label_and_empty_when_the_run_logged(runner: AgentRunner,
                                                              exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    assert samples[f'cronjob_log_problem{{cronjob_log_problem="{DISK_FULL}",name="backup",'
                   'owner="root"}'] == 1
    assert samples['cronjob_log_problem{cronjob_log_problem="",name="report",owner="alice"}'] == 1


def test_date_and_time_columns_are_unix_timestamps(runner: AgentRunner,
                                                   exporter: Exporter) -> None:
    agent = runner.start(view=known_view())
    samples = exporter.scrape(agent.address)
    backup = 'name="backup",owner="root"'
    report = 'name="report",owner="alice"'
    assert samples[f"cronjob_last_start{{{backup}}}"] == LAST_START.timestamp()
    assert samples[f"cronjob_next_expected{{{backup}}}"] == NEXT_EXPECTED.timestamp()
    assert samples[f"cronjob_last_success{{{report}}}"] == LAST_SUCCESS.timestamp()
    assert samples[f"cronjob_paused_until{{{report}}}"] == PAUSED_UNTIL.timestamp()
    assert f"cronjob_paused_until{{{backup}}}" not in samples  # not paused: no series
    assert samples["cron_agent_start_time"] == AGENT_START.timestamp()
    assert samples[f"cronjob_counters_since{{{backup}}}"] == COUNTERS_SINCE.timestamp()
    assert samples["cronjob_table_last_change"] == TABLE_CHANGED.timestamp()
    # "never" (a zero-length DateAndTime) gives no series rather than a bogus time.
    assert f"cronjob_last_success{{{backup}}}" not in samples


# The SNMPv3 block packaging/prometheus/README.md documents for snmp.yml (snmp_exporter 0.21).
V3_AUTH = """  auth:
    username: monitor
    security_level: authPriv
    auth_protocol: SHA256
    password: auth-pass-123
    priv_protocol: AES
    priv_password: priv-pass-456
"""
V2C_AUTH = "  auth:\n    community: public\n"


def test_snmpv3_auth_block_from_the_readme(runner: AgentRunner, tmp_path: Path) -> None:
    agent = runner.start(view=known_view(), config=parse_snmp_config({"user": [{
        "name": "monitor", "auth": "SHA-256", "auth_key": "auth-pass-123",
        "priv": "AES-128", "priv_key": "priv-pass-456"}]}))
    generated = SNMP_YML.read_text()
    assert generated.endswith(V2C_AUTH) and "  version: 2\n" in generated
    config = tmp_path / "snmp-v3.yml"
    config.write_text(generated.removesuffix(V2C_AUTH).replace("  version: 2\n", "  version: 3\n")
                      + V3_AUTH)
    v3_exporter = Exporter(config, tmp_path / "v3.log")
    try:
        samples = v3_exporter.scrape(agent.address)
    finally:
        v3_exporter.close()
    assert samples['cronjob_runs{name="backup",owner="root"}'] == 7


def _mibs_load() -> bool:
    """True when Net-SNMP loads CRON-JOBS-MIB from mibs/ (the generator needs that)."""
    return have_netsnmp() and snmp("snmptranslate", "CRON-JOBS-MIB::cronJobTable", mibs=True,
                                   check=False).returncode == 0


@pytest.mark.skipif(GENERATOR is None, reason="prometheus-snmp-generator is not installed")
@pytest.mark.skipif(not _mibs_load(), reason="mibs/ does not load in Net-SNMP yet")
def test_snmp_yml_is_what_generate_sh_makes(tmp_path: Path) -> None:
    output = tmp_path / "snmp.yml"
    subprocess.run([PROMETHEUS_DIR / "generate.sh", output], check=True, timeout=120)
    assert output.read_text() == SNMP_YML.read_text()
