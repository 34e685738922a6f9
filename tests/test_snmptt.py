"""SNMPTT (Debian's snmptt) translates every CRON-JOBS-MIB notification with its severity.

packaging/snmptt/cronwrap.conf is generated from the MIB's --#SUMMARY/--#ARGUMENTS/--#SEVERITY
hints (packaging/snmptt/generate.sh).  The end-to-end test sends one notification of every
kind from the real standalone agent's sender (pysnmp) to a real snmptrapd, which hands each
trap to snmptt in standalone mode (`traphandle default snmptt`) as the shipped file says.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cronwrap.agent import mib
from cronwrap.agent.main import notification_payload
from cronwrap.agent.mibview import NO_SUCH_OBJECT, NoSuch
from cronwrap.agent.model import (
    BoundKind,
    DurationAnomaly,
    JobKey,
    JobRecord,
    JobState,
    Notification,
    NotificationKind,
    StartBurst,
)
from cronwrap.agent.snmp_config import NotifyTarget, SnmpConfig
from cronwrap.agent.standalone import StandaloneFrontend
from netsnmp import Snmptrapd, free_port, have_netsnmp, wait_until

REPO = Path(__file__).resolve().parent.parent
SNMPTT_DIR = REPO / "packaging" / "snmptt"
SHIPPED = SNMPTT_DIR / "cronwrap.conf"
T0 = 1_800_000_000.0

# What each notification must say: the severity and the words of its FORMAT once snmptt has
# filled in the varbinds of the notification below (job "backup" of "root").
EXPECTED: dict[NotificationKind, tuple[str, str]] = {
    NotificationKind.failed: (
        "MAJOR",
        "Cron job backup of root failed: exit status 3, signal 0, last line: disk quota exceeded"),
    NotificationKind.overlapped: (
        "WARNING",
        "Cron job backup of root overlapped: pid 4242 still holds its lock, the start was skipped"),
    NotificationKind.timed_out: (
        "MAJOR",
        "Cron job backup of root timed out after 61000 milliseconds and was killed, signal 15, "
        "last line: disk quota exceeded"),
    NotificationKind.missed: (
        "MINOR",
        "Cron job backup of root missed its schedule, last start 2027-1-15,8:0:0.0,+0:0, "
        "misses 1"),
    NotificationKind.overrunning: (
        "WARNING",
        "Cron job backup of root is overrunning, pid 4242, started 2027-1-15,8:0:0.0,+0:0"),
    NotificationKind.recovered: ("NORMAL", "Cron job backup of root recovered: exit status 0"),
    NotificationKind.log_failing: (
        "WARNING", "Cron job backup of root cannot write its log: disk full"),
    NotificationKind.log_recovered: ("NORMAL", "Cron job backup of root writes its log again"),
    NotificationKind.forgotten: (
        "NORMAL", "Cron job backup of root was forgotten by alice after 7 runs"),
    NotificationKind.retired: (
        "NORMAL",
        "Cron job backup of root retired: no crontab line runs it, last start "
        "2027-1-15,8:0:0.0,+0:0"),
    NotificationKind.wrapper_lost: (
        "MAJOR",
        "Cron job backup of root lost its wrapper: pid 4242, started 2027-1-15,8:0:0.0,+0:0"),
    NotificationKind.cleared: (
        "NORMAL", "Cron job backup of root: its overlap, overrun or duration anomaly is over, "
        "exit status 0"),
    NotificationKind.not_started: (
        "MAJOR", "Cron job backup of root did not start: cronwrap exited 127 (cronwrap was not "
        "found)"),
    NotificationKind.runs_too_often: (
        "WARNING", "Cron job backup of root runs too often: 10 starts where its schedule has 1"),
    NotificationKind.duration_anomaly: (
        "WARNING", "Cron job backup of root succeeded in 100 milliseconds, outside its bound of "
        "750 milliseconds (learnedLow)"),
}


def event_lines(text: str) -> dict[str, tuple[str, str]]:
    """EVENT name -> (trap OID, severity) of an SNMPTT configuration."""
    found = re.findall(r'^EVENT (\S+) (\S+) "[^"]*" (\S+)$', text, re.M)
    return {name: (oid, severity) for name, oid, severity in found}


def test_every_notification_has_an_event_with_a_severity_and_a_summary() -> None:
    events = event_lines(SHIPPED.read_text())
    assert set(events) == {kind.value for kind in NotificationKind}
    for kind in NotificationKind:
        oid, severity = events[kind.value]
        assert oid == _dotted(mib.notification_oid(kind))
        assert severity == EXPECTED[kind][0]
    formats = re.findall(r"^FORMAT (.*)$", SHIPPED.read_text(), re.M)
    assert len(formats) == len(NotificationKind)
    assert all(f.startswith("Cron job $2 of $1") for f in formats), formats


@pytest.mark.skipif(shutil.which("snmpttconvertmib") is None, reason="snmptt is not installed")
def test_the_shipped_file_is_what_the_mib_hints_generate(tmp_path: Path) -> None:
    out = tmp_path / "cronwrap.conf"
    subprocess.run(["sh", str(SNMPTT_DIR / "generate.sh"), str(out)], check=True, timeout=120,
                   capture_output=True)
    assert out.read_text() == SHIPPED.read_text(), "run packaging/snmptt/generate.sh"


def notification(kind: NotificationKind) -> Notification:
    job = JobRecord(JobKey(0, "backup"), "root", runs=7, failures=2, timeouts=1, misses=1,
                    last_exit_status=3, last_start=T0, last_duration_ms=61_000,
                    state=JobState.failed, running_pid=4242, log_problem="disk full",
                    last_result=JobState.failed, counters_since=T0 - 86_400,
                    start_problem="cronwrap was not found")
    exit_status, signal = {NotificationKind.failed: (3, 0), NotificationKind.timed_out: (124, 15),
                           NotificationKind.recovered: (0, 0),
                           NotificationKind.cleared: (0, 0),
                           NotificationKind.not_started: (127, 0)}.get(kind, (None, 0))
    burst = StartBurst(10, 1, T0 - 9) if kind == NotificationKind.runs_too_often else None
    anomaly = DurationAnomaly(100, 750, BoundKind.learnedLow, 1500) \
        if kind == NotificationKind.duration_anomaly else None
    return Notification(kind, job, T0 + 61, run_time=T0, requester="alice",
                        exit_status=exit_status, signal=signal, event_time=T0 + 61, burst=burst,
                        message="disk quota exceeded", anomaly=anomaly)


def snmptt_ini(directory: Path) -> Path:
    ini = directory / "snmptt.ini"
    ini.write_text(f"""[General]
mode = standalone
net_snmp_perl_enable = 0
dns_enable = 0
[Logging]
stdout_enable = 0
log_enable = 1
log_file = {directory / "snmptt.log"}
log_system_enable = 0
unknown_trap_log_enable = 1
unknown_trap_log_file = {directory / "unknown.log"}
syslog_enable = 0
syslog_system_enable = 0
[Debugging]
DEBUGGING = 0
[TrapFiles]
snmptt_conf_files = <<END
{SHIPPED}
END
""")
    return ini


async def send_all(trapd: Snmptrapd, state_dir: Path) -> None:
    """Every kind of notification through the standalone agent's real sender, until snmptrapd
    has logged them all."""
    queue: asyncio.Queue[Notification] = asyncio.Queue()
    target = NotifyTarget("127.0.0.1", trapd.port, "trap", community="public")
    frontend = StandaloneFrontend([f"udp:127.0.0.1:{free_port()}"], _EmptyView(), mib.ROOT,
                                  SnmpConfig(targets=(target,)), state_dir, queue,
                                  notification_payload)
    task = asyncio.create_task(frontend.run())
    try:
        await asyncio.wait_for(frontend.wait_ready(), 30)
        for kind in NotificationKind:
            queue.put_nowait(notification(kind))
        trap_oids = re.compile(re.escape(_dotted(mib.NOTIFICATIONS)) + r"\.\d+\b")
        for _ in range(600):
            if len(trap_oids.findall(trapd.text())) >= len(NotificationKind):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _dotted(oid: tuple[int, ...]) -> str:
    return "." + ".".join(map(str, oid))


class _EmptyView:
    """A MibView with nothing in it: the test only needs the agent's notification sender."""

    def get(self, oid: tuple[int, ...]) -> NoSuch:
        return NO_SUCH_OBJECT

    def get_next(self, start: tuple[int, ...], include: bool = False,
                 end: tuple[int, ...] | None = None) -> None:
        return None


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp() or shutil.which("snmptt") is None,
                    reason="Net-SNMP or snmptt is not installed")
def test_snmptt_translates_every_notification_with_its_severity(tmp_path: Path) -> None:
    work = tmp_path / "snmptt"
    work.mkdir()
    ini = snmptt_ini(work)
    config = f"authCommunity log,execute public\ntraphandle default /usr/sbin/snmptt --ini={ini}"
    trapd = Snmptrapd(tmp_path / "trapd", config=config, mibs="CRON-JOBS-MIB:SNMPv2-MIB",
                      numeric=True)
    state = tmp_path / "state"
    state.mkdir()
    with trapd:
        asyncio.run(send_all(trapd, state))
        log = work / "snmptt.log"
        lines = _wait_lines(log, len(NotificationKind))
    assert not (work / "unknown.log").exists() or not (work / "unknown.log").read_text()
    # snmptt's default log line: DATE TRAP-OID SEVERITY "CATEGORY" HOST - FORMAT
    logged = {}
    for line in lines:
        match = re.fullmatch(r'.* (\.[0-9.]+) (\S+) "Status Events" \S+ - (.*)', line)
        assert match, line
        logged[match[1]] = (match[2], match[3])
    assert len(logged) == len(lines) == len(NotificationKind)
    for kind in NotificationKind:
        assert logged[_dotted(mib.notification_oid(kind))] == EXPECTED[kind]


def _wait_lines(path: Path, count: int) -> list[str]:
    def enough() -> list[str]:
        text = path.read_text() if path.exists() else ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines if len(lines) >= count else []

    return wait_until(enough, 60, f"{count} lines in {path}")
