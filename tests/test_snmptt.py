"""SNMPTT (Debian's snmptt) translates every CRON-JOBS-MIB notification with its severity.

packaging/snmptt/cronwrap.conf is generated from the MIB's --#SUMMARY/--#ARGUMENTS/--#SEVERITY
hints (packaging/snmptt/generate.sh).  The end-to-end test sends one notification of every
kind from the real standalone agent's sender (pysnmp) to a real snmptrapd running with the
shipped settings (packaging/snmptrapd), which hands each trap to snmptt in standalone mode with
the shipped snmptt.ini: every line readable (dates, "-" for what is empty or not sent).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from cronwrap.agent import mib
from cronwrap.agent.main import notification_payload
from cronwrap.agent.mibview import NO_SUCH_OBJECT, NoSuch
from cronwrap.agent.model import (
    DAEMON_KINDS,
    AnyNotification,
    BoundKind,
    CronDaemon,
    CronDaemonState,
    DaemonNotification,
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

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SNMPTT_DIR = REPO / "packaging" / "snmptt"
SHIPPED = SNMPTT_DIR / "cronwrap.conf"
SNMPTRAPD_CONF = REPO / "packaging" / "snmptrapd" / "cronwrap.conf"
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
        "Cron job backup of root missed its schedule, last start 2027-01-15 08:00:00 UTC, "
        "misses 1"),
    NotificationKind.overrunning: (
        "WARNING",
        "Cron job backup of root is overrunning, pid 4242, started 2027-01-15 08:00:00 UTC"),
    NotificationKind.recovered: ("NORMAL", "Cron job backup of root recovered: exit status 0"),
    NotificationKind.log_failing: (
        "WARNING", "Cron job backup of root cannot write its log: disk full"),
    NotificationKind.log_recovered: ("NORMAL", "Cron job backup of root writes its log again"),
    NotificationKind.forgotten: (
        "NORMAL", "Cron job backup of root was forgotten by alice after 7 runs"),
    NotificationKind.retired: (
        "NORMAL",
        "Cron job backup of root retired: no crontab line runs it, last start "
        "2027-01-15 08:00:00 UTC"),
    NotificationKind.wrapper_lost: (
        "MAJOR",
        "Cron job backup of root lost its wrapper: pid 4242, started 2027-01-15 08:00:00 UTC"),
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
    NotificationKind.crontab_ignored: (
        "MAJOR", "Cron job backup of root will never run: INSECURE MODE (group/other writable): "
        "mode 0664"),
    NotificationKind.output_discarded: (
        "WARNING", "Cron job backup of root: its output is discarded (no MTA), 3 runs so far"),
    NotificationKind.cron_not_running: (
        "CRITICAL", "The cron daemon is not running (stopped) since 2027-01-15 08:00:00 UTC: no "
        "cron job runs, 3 starts missed so far"),
    NotificationKind.cron_running: (
        "NORMAL", "The cron daemon runs again (running) since 2027-01-15 08:10:00 UTC, after an "
        "outage from 2027-01-15 08:00:00 UTC: 3 starts were missed"),
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
    # cronJobFailed and cronJobTimedOut twice: with cronNotifyMessage and without it
    assert len(formats) == len(NotificationKind) + 2
    assert sum(f.startswith("Cron job $2 of $1") for f in formats) == len(formats) - len(
        DAEMON_KINDS), formats
    assert sum(f.startswith("The cron daemon ") for f in formats) == len(DAEMON_KINDS)
    assert sum(f.endswith(", last line: -") for f in formats) == 2


@pytest.mark.skipif(shutil.which("snmpttconvertmib") is None, reason="snmptt is not installed")
def test_the_shipped_file_is_what_the_mib_hints_generate(tmp_path: Path) -> None:
    out = tmp_path / "cronwrap.conf"
    subprocess.run(["sh", str(SNMPTT_DIR / "generate.sh"), str(out)], check=True, timeout=120,
                   capture_output=True)
    assert out.read_text() == SHIPPED.read_text(), "run packaging/snmptt/generate.sh"


def notification(kind: NotificationKind) -> AnyNotification:
    if kind in DAEMON_KINDS:  # stopped at T0 for ten minutes, three starts missed
        down = CronDaemon(CronDaemonState.stopped, T0, T0, None, True, 3, 1)
        if kind == NotificationKind.cron_running:
            down = replace(down, state=CronDaemonState.running, since=T0 + 600, up_again=T0 + 600)
        return DaemonNotification(kind, down, T0 + 601)
    job = JobRecord(JobKey(0, "backup"), "root", runs=7, failures=2, timeouts=1, misses=1,
                    last_exit_status=3, last_start=T0, last_duration_ms=61_000,
                    state=JobState.failed, running_pid=4242, log_problem="disk full",
                    last_result=JobState.failed, counters_since=T0 - 86_400,
                    start_problem="cronwrap was not found",
                    ignored_by_cron="INSECURE MODE (group/other writable): mode 0664",
                    outputs_discarded=3)
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


def unsent() -> list[tuple[Notification, tuple[str, str]]]:
    """Notifications with values the receiver must not print raw, and their lines: a job that
    does not send its last line (the agent leaves cronNotifyMessage out) and a last start that
    is "never" (an empty DateAndTime)."""
    failed = notification(NotificationKind.failed)
    retired = notification(NotificationKind.retired)
    assert isinstance(failed, Notification) and isinstance(retired, Notification)
    quiet = replace(failed, job=replace(failed.job, key=JobKey(0, "quiet")), message=None)
    never = replace(retired, job=replace(retired.job, key=JobKey(0, "never"), last_start=None))
    return [
        (quiet, ("MAJOR", "Cron job quiet of root failed: exit status 3, signal 0, last line: -")),
        (never, ("NORMAL",
                 "Cron job never of root retired: no crontab line runs it, last start -")),
    ]


def snmptt_ini(directory: Path) -> Path:
    """The shipped snmptt.ini, logging to files in `directory` instead of syslog and reading
    the shipped cronwrap.conf from the source tree."""
    text = (SNMPTT_DIR / "snmptt.ini").read_text()
    for shipped, here in (
            ("log_enable = 0", f"log_enable = 1\nlog_file = {directory / 'snmptt.log'}"),
            ("unknown_trap_log_enable = 0", "unknown_trap_log_enable = 1\n"
             f"unknown_trap_log_file = {directory / 'unknown.log'}"),
            ("syslog_enable = 1", "syslog_enable = 0"),
            ("/usr/share/cronwrap/snmptt/cronwrap.conf", str(SHIPPED))):
        assert text.count(f"\n{shipped}\n") == 1, shipped
        text = text.replace(f"\n{shipped}\n", f"\n{here}\n")
    ini = directory / "snmptt.ini"
    ini.write_text(text)
    return ini


async def send_all(trapd: Snmptrapd, state_dir: Path) -> None:
    """Every kind of notification through the standalone agent's real sender, until snmptrapd
    has logged them all."""
    queue: asyncio.Queue[AnyNotification] = asyncio.Queue()
    target = NotifyTarget("127.0.0.1", trapd.port, "trap", community="public")
    frontend = StandaloneFrontend([f"udp:127.0.0.1:{free_port()}"], _EmptyView(), mib.ROOT,
                                  SnmpConfig(targets=(target,)), state_dir, queue,
                                  notification_payload)
    task = asyncio.create_task(frontend.run())
    try:
        await asyncio.wait_for(frontend.wait_ready(), 30)
        sent = [notification(kind) for kind in NotificationKind] + [n for n, _ in unsent()]
        for each in sent:
            queue.put_nowait(each)
        trap_oids = re.compile(re.escape(_dotted(mib.NOTIFICATIONS)) + r"\.\d+\b")
        for _ in range(600):
            if len(trap_oids.findall(trapd.text())) >= len(sent):
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
    # the shipped snmptrapd settings, with the test's ini and the MIBs of the source tree
    shipped = "/usr/bin/perl -X /usr/sbin/snmptt --ini=/usr/share/cronwrap/snmptt/snmptt.ini"
    config = SNMPTRAPD_CONF.read_text()
    assert config.count(f"traphandle default {shipped}\n") == 1
    config = config.replace(shipped, f"/usr/bin/env MIBDIRS=+{REPO / 'mibs'} /usr/bin/perl -X "
                                     f"/usr/sbin/snmptt --ini={ini}")
    # names, not -On, as the shipped snmptrapd.service drop-in runs it
    trapd = Snmptrapd(tmp_path / "trapd", config=config, mibs="CRON-JOBS-MIB:SNMPv2-MIB")
    state = tmp_path / "state"
    state.mkdir()
    with trapd:
        asyncio.run(send_all(trapd, state))
        log = work / "snmptt.log"
        lines = _wait_lines(log, len(NotificationKind) + len(unsent()))
    assert not (work / "unknown.log").exists() or not (work / "unknown.log").read_text()
    # snmptt's default log line: DATE TRAP-OID SEVERITY "CATEGORY" HOST - FORMAT
    logged = []
    for line in lines:
        match = re.fullmatch(r'.* (\.[0-9.]+) (\S+) "Status Events" \S+ - (.*)', line)
        assert match, line
        logged.append((match[1], match[2], match[3]))
    expected = [(_dotted(mib.notification_oid(kind)), *EXPECTED[kind]) for kind in NotificationKind]
    expected += [(_dotted(mib.notification_oid(n.kind)), *line) for n, line in unsent()]
    assert sorted(logged) == sorted(expected)


def _wait_lines(path: Path, count: int) -> list[str]:
    def enough() -> list[str]:
        text = path.read_text() if path.exists() else ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines if len(lines) >= count else []

    return wait_until(enough, 60, f"{count} lines in {path}")
