"""The Debian package on a booted Debian 13 (and 12), installed as README says, with Debian's
own services.

One container boots per release for the module (tests run in file order, each building on the
last): README's install and snmpd steps; crontab lines of root, of `nobody` (an /etc/cron.d
line, no home) and of a normal user firing every minute (ok, failing, overlapping, timing out);
then snmpd's view of cronJobTable must equal what cron's own log (`cron -L 15`) says it ran,
through restarts of snmpd and the agent, a hung agent killed by the watchdog, a reboot, and a
purge and reinstall.  Debian 12 runs the tests marked every_release: install, serving through
snmpd, cron-counted runs, notifications at snmptrapd, purge and reinstall.  "Outside" means this
machine's Net-SNMP tools in the container's network namespace, as a monitoring host sees it.
Every wait is bounded polling on a condition.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import readme
from .cronlog import JOURNAL_ARGS, CronLog, JobTally
from .cronlog import parse as parse_cron_log
from .machine import Container, HostError, wait_for
from .snmpview import (
    CRON_JOB_COUNT,
    CRON_JOB_ENTRY,
    WALK,
    Row,
    parse_traps,
    parse_walk,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

CLONE = "/root/cronwrap"  # where README's commands run inside: a clone with dist/ in it
BUILD_STEP = "bash scripts/build-deb"
TRAP_PORT = 1162
# Every line fires every minute.  Each pair of `overlap` lines starts together: one run holds
# the lock for 15 s, the other is skipped (exit 75); root's and nobody's `overlap` are two jobs
# with two locks.  `slow` is killed at its 2 s timeout (exit 124).
ROOT_CRONTAB = """\
* * * * * cronwrap -n ok -- true
* * * * * cronwrap -n fail -- sh -c 'echo about to fail; exit 3'
* * * * * cronwrap -n overlap -- sleep 15
* * * * * cronwrap -n overlap -- sleep 15
* * * * * cronwrap -n slow --timeout 2s -- sleep 60
"""
NOBODY_CRON_D = """\
# cronwrap host test: a system account whose home (/nonexistent) does not exist
* * * * * nobody cronwrap -n nobody-ok -- echo quiet on success
* * * * * nobody cronwrap -n nobody-fail -- false
* * * * * nobody cronwrap -n overlap -- sleep 15
* * * * * nobody cronwrap -n overlap -- sleep 15
"""
USER = "alice"
USER_CRONTAB = """\
* * * * * cronwrap -n report -- echo quiet on success
* * * * * cronwrap -n flaky -- sh -c 'exit 2'
* * * * * cronwrap -n slow --timeout 2s -- sleep 60
"""
EXPECTED_JOBS = {
    ("root", "ok"), ("root", "fail"), ("root", "overlap"), ("root", "slow"),
    ("nobody", "nobody-ok"), ("nobody", "nobody-fail"), ("nobody", "overlap"),
    (USER, "report"), (USER, "flaky"), (USER, "slow"),
}
OVERLAPPING = (("root", "overlap"), ("nobody", "overlap"))
TIMING_OUT = (("root", "slow"), (USER, "slow"))
CRON_MINUTE = 130.0  # bound on waiting for cron's next minute and its runs to end
SETTLE = 150.0  # bound on waiting for a moment when no job runs and the counts agree
SERVICE = 30.0  # bound on a service coming up or answering


# --- what cron ran, what SNMP shows ----------------------------------------------------------


def cron_log(machine: Container) -> CronLog:
    return parse_cron_log(machine.run(*JOURNAL_ARGS).stdout)


def snmp_rows(machine: Container) -> dict[tuple[str, str], Row] | None:
    """cronJobTable as walked from outside through the container's snmpd; None if no answer."""
    walk = machine.outside(*WALK, CRON_JOB_ENTRY, check=False, timeout=60)
    if walk.returncode != 0 or "No Such Object" in walk.stdout:
        return None
    return parse_walk(walk.stdout)


def counts(tally: JobTally | Row) -> tuple[int, int, int, int]:
    return (tally.runs, tally.failures, tally.overlaps, tally.timeouts)


def mismatches(log: CronLog, rows: dict[tuple[str, str], Row]) -> list[str]:
    """Each wrapped job whose (runs, failures, overlaps, timeouts) differ between cron's log
    and SNMP.  Rows of the host's unwrapped crontab lines (Debian's /etc/crontab run-parts
    lines, which the agent learns from cron's log) are not this suite's jobs."""
    tallies = log.tallies()
    differences = []
    for job in sorted(set(tallies) | (set(rows) & EXPECTED_JOBS)):
        by_cron = counts(tallies.get(job, JobTally()))
        by_snmp = counts(rows.get(job, Row()))
        if by_cron != by_snmp:
            differences.append(f"{job}: cron log {by_cron}, snmp {by_snmp}")
    return differences


def settled(machine: Container) -> tuple[CronLog, dict[tuple[str, str], Row]]:
    """Wait for a moment when every run cron started has ended and SNMP agrees with the log.

    The log is read before and after the walk; the snapshot counts only if it did not change
    in between.  On timeout the last consistent snapshot's differences are the failure.
    """
    last: list[str] = ["no moment without a running job, or no answer from snmpd"]

    def agree() -> tuple[CronLog, dict[tuple[str, str], Row]] | None:
        before = cron_log(machine)
        if not before.all_ended():
            return None
        rows = snmp_rows(machine)
        after = cron_log(machine)
        if rows is None or len(after.runs) != len(before.runs) or not after.all_ended():
            return None
        last[:] = mismatches(before, rows)
        return None if last else (before, rows)

    try:
        return wait_for(agree, "cronJobTable to equal cron's log", SETTLE, interval=1.0)
    except HostError:
        pytest.fail("counts differ (runs, failures, overlaps, timeouts):\n" + "\n".join(last))


def wait_for_firings(machine: Container, at_least: int) -> CronLog:
    """Wait until cron has started root's `ok` job at least this many times in all."""

    def fired() -> CronLog | None:
        log = cron_log(machine)
        started = sum(1 for run in log.runs if (run.user, run.job) == ("root", "ok"))
        return log if started >= at_least else None

    return wait_for(fired, f"cron to fire its jobs {at_least} times", CRON_MINUTE, interval=1.0)


def firings(log: CronLog) -> int:
    return sum(1 for run in log.runs if (run.user, run.job) == ("root", "ok"))


def unit_property(machine: Container, unit: str, name: str) -> str:
    return machine.run("systemctl", "show", "--value", "-p", name, unit).stdout.strip()


def wait_active(machine: Container, unit: str) -> None:
    def active() -> bool:
        return machine.run("systemctl", "is-active", unit, check=False).stdout.strip() == "active"

    wait_for(active, f"{unit} to be active", SERVICE)


# --- README's steps, inside the container -------------------------------------------------


def run_readme_block(machine: Container, needle: str, transcript: list[str]) -> None:
    """Run, in the clone directory inside, each command of README's ```sh block with `needle`.

    The build step (`bash scripts/build-deb`) ran on this machine: the built_deb fixture.
    """
    for command in readme.commands(readme.block_containing("sh", needle)):
        if command.startswith(BUILD_STEP):
            transcript.append(f"{command}   (on this machine, then dist/ copied in)")
            continue
        transcript.append(command)
        machine.run("/bin/sh", "-ec", f"cd {CLONE} && {command}", timeout=300)


def add_trap_sink(machine: Container, transcript: list[str]) -> None:
    """README's snmpd.conf lines, with its example NMS replaced by our trap receiver."""
    lines = readme.config_lines(readme.block_containing("text snmpd.conf", "trap2sink"))
    sink = f"127.0.0.1:{TRAP_PORT}"
    text = "".join(line.replace("nms.example.net", sink) + "\n" for line in lines)
    assert sink in text, "README's snmpd.conf block names its trap sink nms.example.net"
    machine.run("/bin/sh", "-ec", 'cat >> /etc/snmp/snmpd.conf', input=text)
    transcript.append(f"appended to /etc/snmp/snmpd.conf: {text.strip()!r}")
    machine.run("systemctl", "restart", "snmpd")
    transcript.append("systemctl restart snmpd")


def install_per_readme(machine: Container, deb: Path, transcript: list[str]) -> None:
    dist = machine.root / CLONE.lstrip("/") / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    shutil.copy2(deb, dist / deb.name)
    run_readme_block(machine, "apt install ./dist/cronwrap_", transcript)
    run_readme_block(machine, "/etc/snmp/snmpd.conf.d/", transcript)


@pytest.fixture(scope="module")
def transcript() -> list[str]:
    """Every README step run inside the container, in order (printed at the end of the module)."""
    steps: list[str] = []
    yield steps
    print("\nREADME steps run inside the container:\n  " + "\n  ".join(steps))


@pytest.fixture(scope="module")
def trap_log(machine: Container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This machine's snmptrapd, listening in the container's network namespace."""
    work = tmp_path_factory.mktemp("snmptrapd")
    (work / "snmptrapd.conf").write_text("authCommunity log public\n")
    log = work / "traps.log"
    receiver = machine.outside_popen(
        "snmptrapd", "-f", "-C", "-m", "", "-On", "-c", str(work / "snmptrapd.conf"),
        "-F", "%v\n", "-Lf", str(log), f"udp:127.0.0.1:{TRAP_PORT}",
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(work)},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: log.exists() and "NET-SNMP version" in log.read_text(), "snmptrapd", SERVICE)
    yield log
    receiver.send_signal(signal.SIGTERM)
    receiver.wait(timeout=30)


@pytest.fixture(scope="module")
def installed(machine: Container, built_deb: Path, transcript: list[str], trap_log: Path) -> None:
    """README's install and snmpd steps, and README's trap sink aimed at our snmptrapd."""
    install_per_readme(machine, built_deb, transcript)
    add_trap_sink(machine, transcript)


@pytest.fixture(scope="module")
def cron_jobs(machine: Container, installed: None) -> None:
    """The crontab lines, and cron logging each job's start, end and exit status (-L 15)."""
    machine.run("useradd", "--create-home", USER)
    machine.run("crontab", "-", input=ROOT_CRONTAB)
    machine.run("crontab", "-u", USER, "-", input=USER_CRONTAB)
    machine.write("/etc/cron.d/cronwrap-host-test", NOBODY_CRON_D)
    machine.write("/etc/default/cron", 'EXTRA_OPTS="-L 15"\n')
    # A restart loads every crontab afresh: cron's own reload compares mtimes in whole
    # seconds and misses a file written in the second it last loaded.
    machine.run("systemctl", "restart", "cron")


# --- the tests, in order ------------------------------------------------------------------


@pytest.mark.every_release
def test_readme_install_gives_the_commands_units_and_files(
    machine: Container, installed: None
) -> None:
    found = machine.sh("command -v cronwrap; command -v cronwrap-agent").split()
    assert found == ["/usr/bin/cronwrap", "/usr/bin/cronwrap-agent"]
    for unit in ("cronwrap-agent.socket", "cronwrap-agent.service"):
        wait_active(machine, unit)
        assert machine.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled"
    status = unit_property(machine, "cronwrap-agent.service", "StatusText")
    assert "agentx" in status.lower(), f"systemctl status should say what it serves: {status!r}"
    # Python's warnings (a bundled library's DeprecationWarning under this release's python3)
    # would land in the unit's journal.
    journal = machine.run("journalctl", "--no-pager", "-o", "cat", "-u", "cronwrap-agent").stdout
    assert not re.findall(r"^.*\w+Warning: .*$", journal, re.MULTILINE), journal
    conffiles = machine.run("dpkg-query", "-W", "-f", "${Conffiles}", "cronwrap").stdout
    for conffile in ("/etc/cronwrap/agent.toml", "/etc/cronwrap/cronwrap.toml"):
        assert conffile in conffiles
    assert machine.sh("stat -c %a /etc/cronwrap/agent.toml").strip() == "600"
    for path in (
        "/usr/share/snmp/mibs/CRON-JOBS-MIB.txt",
        "/usr/share/man/man1/cronwrap.1.gz",
        "/usr/share/man/man8/cronwrap-agent.8.gz",
        "/usr/share/doc/cronwrap/copyright",
    ):
        machine.run("test", "-f", path)
    assert machine.sh("stat -c %a /var/spool/cronwrap").strip() == "1733"  # tmpfiles applied


@pytest.mark.every_release
def test_snmpd_shows_the_mib_to_public(machine: Container, installed: None) -> None:
    def job_count() -> str:
        get = machine.outside(
            "snmpget", "-v2c", "-c", "public", "-m", "", "-On", "-Oq", "127.0.0.1",
            CRON_JOB_COUNT, check=False,
        )
        return get.stdout if get.returncode == 0 and "No Such" not in get.stdout else ""

    answer = wait_for(job_count, "snmpd to serve cronJobCount.0 to public", SERVICE)
    assert answer.split()[-1].isdigit(), answer
    # The MIB is where Net-SNMP's tools look: -m CRON-JOBS-MIB needs no -M on the host itself.
    oid = machine.run("snmptranslate", "-m", "CRON-JOBS-MIB", "-On", "CRON-JOBS-MIB::cronJobRuns")
    assert oid.stdout.strip() == f".{CRON_JOB_ENTRY}.3"


@pytest.mark.every_release
def test_snmp_counts_equal_what_cron_ran(machine: Container, cron_jobs: None) -> None:
    wait_for_firings(machine, 1)
    log, rows = settled(machine)
    assert set(log.tallies()) == EXPECTED_JOBS
    for job in OVERLAPPING:  # one run and one overlap per minute, for each owner
        assert log.exit_statuses(*job) == {0: firings(log), 75: firings(log)}, job
    for job in TIMING_OUT:
        assert set(log.exit_statuses(*job)) == {124}, job
    assert rows[("root", "ok")].runs == firings(log)


def test_named_get_through_the_hosts_snmpd(
    machine: Container, cron_jobs: None, transcript: list[str]
) -> None:
    """The issue's "done when": the NMS reads cronJobRuns."root"."ok" by name."""
    log, _ = settled(machine)
    mibs = machine.root / "usr/share/snmp/mibs"
    get = machine.outside(
        "snmpget", "-v2c", "-c", "public", "-M", f"+{mibs}", "-m", "CRON-JOBS-MIB", "-Oqv",
        "127.0.0.1", 'CRON-JOBS-MIB::cronJobRuns."root"."ok"',
    )
    assert int(get.stdout.strip()) == log.tallies()[("root", "ok")].runs
    # README's own query, run on the host itself, shows one row per job.
    (query,) = readme.commands(readme.block_containing("sh", "localhost cronJobTable"))
    transcript.append(query)
    table = machine.run("/bin/sh", "-ec", query).stdout
    print(table)
    title, blank, header, *rows = table.splitlines()
    assert title == "SNMP table: CRON-JOBS-MIB::cronJobTable" and "cronJobRuns" in header
    indexes = {row.split()[0] for row in rows if row.strip()}  # -Ci: "owner"."name" first
    assert {f'"{owner}"."{name}"' for owner, name in EXPECTED_JOBS} <= indexes, table


def test_restarting_the_agent_and_snmpd_loses_nothing(machine: Container, cron_jobs: None) -> None:
    log, rows = settled(machine)
    machine.run("systemctl", "restart", "cronwrap-agent")
    after_agent, _ = settled(machine)
    machine.run("systemctl", "restart", "snmpd")
    after_snmpd, after_rows = settled(machine)
    for job, row in rows.items():
        assert counts(after_rows[job]) >= counts(row), job
    # ... and counting goes on: cron's next minute shows up in the table too.
    wait_for_firings(machine, firings(after_snmpd) + 1)
    later, later_rows = settled(machine)
    assert later_rows[("root", "ok")].runs > rows[("root", "ok")].runs
    assert len(later.runs) > len(log.runs) and len(after_agent.runs) >= len(log.runs)


@pytest.mark.every_release
def test_notifications_reach_snmptrapd(machine: Container, cron_jobs: None, trap_log: Path) -> None:
    """Each failure, timeout and overlap cron's log shows became one notification at the NMS."""
    log, _ = settled(machine)
    tallies = log.tallies()
    wanted = Counter()
    for job in (("root", "fail"), ("nobody", "nobody-fail"), (USER, "flaky")):
        wanted["cronJobFailed", *job] = tallies[job].failures
    for job in TIMING_OUT:
        wanted["cronJobTimedOut", *job] = tallies[job].timeouts
    for job in OVERLAPPING:
        wanted["cronJobOverlapped", *job] = tallies[job].overlaps
    got: Counter[tuple[str, str, str]] = Counter()

    def arrived() -> bool:
        got.clear()
        got.update((n.kind, n.owner, n.name) for n in parse_traps(trap_log.read_text()))
        return all(got[key] == count for key, count in wanted.items())

    try:
        wait_for(arrived, "the notifications at snmptrapd", SERVICE)
    except HostError:
        pytest.fail(f"wanted {dict(wanted)}\nsnmptrapd got {dict(got)}")
    assert not [key for key in got if key[0] == "cronJobFailed" and key[1:] == ("root", "ok")]


def test_journal_has_every_run_by_job_name(machine: Container, cron_jobs: None) -> None:
    log, _ = settled(machine)
    uids = {user: machine.run("id", "-u", user).stdout.strip() for user, _ in EXPECTED_JOBS}

    def records(user: str, job: str) -> list[dict]:
        out = machine.run(
            "journalctl", "--no-pager", "-o", "json", f"JOB_NAME={job}", f"_UID={uids[user]}"
        ).stdout
        return [json.loads(line) for line in out.splitlines()]

    for (user, job), tally in log.tallies().items():
        wait_for(
            lambda u=user, j=job, n=tally.started: len(records(u, j)) == n,
            f"journalctl JOB_NAME={job} _UID={uids[user]} to list {tally.started} runs",
            SERVICE,
        )
    statuses = sorted(int(r["EXIT_STATUS"]) for r in records("root", "slow"))
    assert set(statuses) == {124}


def test_jobs_print_nothing_on_success(machine: Container, cron_jobs: None) -> None:
    """cron discards (or would mail) any output: a successful run prints none, for every user."""
    log, _ = settled(machine)
    succeeded = [run for run in log.runs if run.exit_status == 0]
    failed = [run for run in log.runs if run.exit_status not in (0, 75)]
    assert {run.user for run in succeeded} == {"root", "nobody", USER}
    assert [(run.user, run.job) for run in succeeded if run.printed] == []
    assert all(run.printed for run in failed), "a failure prints its report for cron to mail"


def test_the_watchdog_restarts_a_hung_agent(machine: Container, cron_jobs: None) -> None:
    # The unit's WatchdogSec=30 (and the abort timeout) are shortened for the test only.
    dropin = "/etc/systemd/system/cronwrap-agent.service.d/host-test-watchdog.conf"
    machine.run("mkdir", "-p", os.path.dirname(dropin))
    machine.write(dropin, "[Service]\nWatchdogSec=10s\nTimeoutAbortSec=10s\n")
    machine.run("systemctl", "daemon-reload")
    machine.run("systemctl", "restart", "cronwrap-agent")
    wait_active(machine, "cronwrap-agent.service")
    restarts = int(unit_property(machine, "cronwrap-agent.service", "NRestarts"))
    hung = unit_property(machine, "cronwrap-agent.service", "MainPID")
    machine.run("kill", "-STOP", hung)

    def replaced() -> bool:
        pid = unit_property(machine, "cronwrap-agent.service", "MainPID")
        state = unit_property(machine, "cronwrap-agent.service", "ActiveState")
        return pid not in ("0", hung) and state == "active"

    wait_for(replaced, "systemd to replace the stopped agent", 90.0)
    assert machine.run("kill", "-0", hung, check=False).returncode != 0, "the hung agent is gone"
    assert int(unit_property(machine, "cronwrap-agent.service", "NRestarts")) > restarts
    journal = machine.run("journalctl", "--no-pager", "-u", "cronwrap-agent.service").stdout
    assert "Watchdog timeout" in journal
    settled(machine)
    machine.run("rm", dropin)
    machine.run("systemctl", "daemon-reload")


def test_a_reboot_keeps_every_count(machine: Container, cron_jobs: None) -> None:
    # No run may be cut by the shutdown: stop cron first (its running jobs finish), then settle.
    machine.run("systemctl", "stop", "cron")
    _, before = settled(machine)
    boots = machine.run("journalctl", "--list-boots", "--no-pager").stdout.count("\n")
    machine.reboot()
    assert machine.run("journalctl", "--list-boots", "--no-pager").stdout.count("\n") > boots
    _, after = settled(machine)
    for job, row in before.items():
        assert counts(after[job]) >= counts(row), job


@pytest.mark.every_release
def test_purge_removes_what_it_made_and_reinstall_works(
    machine: Container, built_deb: Path, cron_jobs: None, transcript: list[str]
) -> None:
    machine.run("systemctl", "stop", "cron")
    settled(machine)
    purge = readme.inline_command("apt purge cronwrap")
    machine.run("/bin/sh", "-ec", purge, input="y\n", timeout=300)  # apt asks; the admin says y
    transcript.append(f"{purge}   (answered y)")
    assert machine.run("dpkg-query", "-W", "cronwrap", check=False).returncode != 0
    leftovers = machine.sh(
        "for p in /etc/cronwrap /var/lib/cronwrap /var/spool/cronwrap /var/log/cronwrap"
        " /run/cronwrap /run/lock/cronwrap /usr/bin/cronwrap /usr/bin/cronwrap-agent"
        " /usr/lib/cronwrap /lib/systemd/system/cronwrap-agent.service"
        " /etc/snmp/snmpd.conf.d/cronwrap.conf /usr/share/snmp/mibs/CRON-JOBS-MIB.txt;"
        ' do [ -e "$p" ] && echo "$p"; done; true'
    ).split()
    assert leftovers == []
    install_per_readme(machine, built_deb, transcript)
    wait_active(machine, "cronwrap-agent.socket")
    machine.run("cronwrap", "-n", "after-reinstall", "--", "true")

    def fresh_table() -> dict[tuple[str, str], Row] | None:
        rows = snmp_rows(machine)
        return rows if rows and ("root", "after-reinstall") in rows else None

    rows = wait_for(fresh_table, "the reinstalled agent's table", SERVICE)
    assert rows[("root", "after-reinstall")].runs == 1
    ours = EXPECTED_JOBS | {("root", "after-reinstall")}  # not the host's unwrapped lines
    assert {job: row.runs for job, row in rows.items() if row.runs and job in ours} == {
        ("root", "after-reinstall"): 1
    }, "purge removed the old state: no old counts come back"
