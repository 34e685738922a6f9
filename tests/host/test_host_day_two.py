"""Day two on a booted Debian (issue 19): an agent restart during a run, crontab lines that
disappear, changes of the host's zone, and cron itself stopped for three minutes (issue 20),
with Debian's cron, snmpd, journald and an NMS's snmptrapd outside.

The package is installed as README says, with cron's `-L 15`; agent.toml's documented
`default_grace` and `discovery_interval` are shortened (30 s, 10 s) to keep the waits to cron's
minutes. Schedules are written relative to the time each test starts; every wait is bounded
polling on a condition. About fourteen minutes of cron, plus the container's boot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronwrap.agent import mib
from cronwrap.agent.model import NotificationKind

from .machine import Container, HostError, wait_for
from .snmpview import CRON_JOB_ENTRY, NOTIFY_NAME, SNMP_TRAP_OID, varbinds
from .test_host_package import (
    SERVICE,
    add_trap_sink,
    install_per_readme,
    trap_log,
    wait_active,
)

__all__ = ["trap_log"]  # the NMS's snmptrapd, a fixture of this module too

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

MINUTE = 60.0
GRACE = 30.0  # default_grace set below
AGENT_CONFIG = {"# default_grace = 300.0": f"default_grace = {GRACE}",
                "# discovery_interval = 60.0": "discovery_interval = 10.0"}
USERS = ("alice", "bob")
LINE_GONE = mib.Column.cronJobLineGone
NOTIFICATIONS = {".".join(map(str, mib.notification_oid(kind))): kind.value
                 for kind in NotificationKind}  # from the MIB, the single source of truth


# --- what the host says --------------------------------------------------------------------


def status(machine: Container) -> dict[tuple[str, str], dict]:
    """`cronwrap status --json` as root: every job by (owner, name)."""
    jobs = json.loads(machine.run("cronwrap", "status", "--json").stdout)
    return {(job["owner"], job["name"]): job for job in jobs}


def cron_starts(machine: Container, name: str) -> list[float]:
    """When cron started each run of the line `cronwrap -n NAME` (its CMD lines, epoch s)."""
    out = machine.run("journalctl", "--no-pager", "--output=json", "SYSLOG_IDENTIFIER=CRON",
                      "--output-fields=MESSAGE,__REALTIME_TIMESTAMP").stdout
    starts = []
    for line in out.splitlines():
        entry = json.loads(line)
        message = str(entry.get("MESSAGE", ""))
        if " CMD (" in message and f" -n {name} " in message:
            starts.append(int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
    return starts


def agent_log(machine: Container) -> str:
    return machine.run("journalctl", "--no-pager", "-o", "cat", "-u", "cronwrap-agent").stdout


def traps(log: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(notification, job name, varbinds) of each CRON-JOBS-MIB notification snmptrapd got."""
    found = []
    for line in log.read_text().splitlines():
        values = varbinds(line)
        kind = NOTIFICATIONS.get(values.get(SNMP_TRAP_OID, ""))
        if kind is not None:
            found.append((kind, values.get(f"{NOTIFY_NAME}.0", ""), values))
    return found


def line_gone(values: dict[str, str]) -> str:
    """The cronJobLineGone varbind's value ("" when the notification has none)."""
    prefix = f"{CRON_JOB_ENTRY}.{int(LINE_GONE)}."
    return next((value for oid, value in values.items() if oid.startswith(prefix)), "")


def next_minute_after(at: float, lead: float) -> float:
    """The first whole minute at least `lead` seconds after `at`."""
    return (int(at + lead) // 60 + 1) * 60.0


def next_slot(minute: int, hour: int | None, zone: ZoneInfo, after: float) -> float:
    """The first instant after `after` whose wall clock in `zone` reads HOUR:MINUTE (any hour
    when None): where cron runs `MINUTE HOUR * * *` next (no offset change in the next days)."""
    at = (int(after) // 60 + 1) * 60
    while True:
        local = datetime.fromtimestamp(at, zone)
        if local.minute == minute and (hour is None or local.hour == hour):
            return float(at)
        at += 60


# --- the host ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(machine: Container, built_deb: Path, trap_log: Path) -> Container:
    """README's install and trap sink, cron at -L 15, the agent's waits shortened, users."""
    install_per_readme(machine, built_deb, [])
    add_trap_sink(machine, [])
    machine.write("/etc/default/cron", 'EXTRA_OPTS="-L 15"\n')
    for commented, setting in AGENT_CONFIG.items():
        machine.run("sed", "-i", f"s/^{commented}$/{setting}/", "/etc/cronwrap/agent.toml")
        assert setting in machine.run("cat", "/etc/cronwrap/agent.toml").stdout
    for user in USERS:
        machine.run("useradd", "--create-home", user)
    machine.run("systemctl", "restart", "snmpd", "cron", "cronwrap-agent")
    try:
        for unit in ("cronwrap-agent.socket", "cronwrap-agent.service"):
            wait_active(machine, unit)
    except HostError:
        pytest.fail(f"the agent did not come up:\n{agent_log(machine)}")
    return machine


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def away_from_crons_tick() -> None:
    """Wait for second 15 to 45 of a minute: cron reloads a crontab whose mtime changed at
    each minute's start, comparing whole seconds, so a file written in the second it loaded
    would be missed until a later change."""
    second = time.time() % 60
    if not 15 <= second <= 45:
        time.sleep((75 - second) % 60)


def job_where(machine: Container, key: tuple[str, str], test: Callable[[dict], bool],
              what: str, within: float) -> dict:
    def holds() -> dict | None:
        job = status(machine).get(key)
        return job if job is not None and test(job) else None

    found = wait_for(holds, what, within)
    assert isinstance(found, dict)
    return found


# --- an agent restart during a run ----------------------------------------------------------


RUNNING_CRONTAB = """\
* * * * * cronwrap -n slow -- sleep 40
* * * * * sleep 40  # cronwrap-name=plain-slow
"""


def test_an_agent_restart_during_a_run_logs_nothing_false(host: Container) -> None:
    """Issue 19: each restart while a job ran logged "... started ... in an earlier boot and
    cron logged no end: its outcome is unknown" (in the same boot). Both a wrapped line and
    one the agent follows in cron's log run across the restart; each is counted once."""
    host.run("crontab", "-", input=RUNNING_CRONTAB)
    for name in ("slow", "plain-slow"):
        job_where(host, ("root", name), lambda job: job["state"] == "running",
                  f"{name} running", 2 * MINUTE + SERVICE)
    before = len(agent_log(host).splitlines())
    host.run("systemctl", "restart", "cronwrap-agent")
    for name in ("slow", "plain-slow"):
        job = job_where(host, ("root", name), lambda job: job["runs"] >= 1,
                        f"{name}'s run counted after the restart", MINUTE + SERVICE)
        assert (job["runs"], job["failures"], job["last_exit_status"]) == (1, 0, 0), job
    said = "\n".join(agent_log(host).splitlines()[before:])
    assert "earlier boot" not in said and "outcome is unknown" not in said, said
    # done with them: removed as docs/agent.md says, the line first, then `cronwrap forget`
    away_from_crons_tick()
    host.run("crontab", "-r")
    for name in ("slow", "plain-slow"):
        host.run("cronwrap", "forget", name)
    assert not {("root", "slow"), ("root", "plain-slow")} & set(status(host))


# --- a crontab line that disappears ---------------------------------------------------------


def test_a_removed_line_and_crontab_r_are_missed_then_retired(host: Container,
                                                              trap_log: Path) -> None:
    """alice comments her wrapped line out; bob's crontab goes with `crontab -r`. Neither line
    declares --schedule: each job's first missed slot reaches snmptrapd as cronJobMissed saying
    which crontab lost the line, and retirement (three periods) ends it with cronJobRetired."""
    for user in USERS:
        host.run("crontab", "-u", user, "-",
                 input=f"* * * * * cronwrap -n gone-{user} -- true\n")
    for user in USERS:
        job_where(host, (user, f"gone-{user}"), lambda job: job["runs"] >= 1,
                  f"gone-{user}'s first run", 2 * MINUTE + SERVICE)
    away_from_crons_tick()
    host.run("crontab", "-u", "alice", "-", input="# * * * * * cronwrap -n gone-alice -- true\n")
    host.run("crontab", "-r", "-u", "bob")
    removed = time.time()
    runs = {user: len(cron_starts(host, f"gone-{user}")) for user in USERS}

    def retired() -> bool:
        return all(("cronJobRetired", f"gone-{user}") in {(k, n) for k, n, _ in traps(trap_log)}
                   for user in USERS)

    wait_for(retired, "cronJobRetired for both jobs", 5 * MINUTE)
    got = traps(trap_log)
    for user in USERS:
        mine = [(kind, values) for kind, name, values in got if name == f"gone-{user}"]
        kinds = [kind for kind, _ in mine]
        assert kinds == ["cronJobMissed"] * 3 + ["cronJobRetired"], kinds
        cause = line_gone(mine[0][1])
        assert cause.startswith(f"line gone from /var/spool/cron/crontabs/{user} (seen "), cause
        assert all(line_gone(values) == cause for _, values in mine)
        assert len(cron_starts(host, f"gone-{user}")) == runs[user]  # cron ran it no more
        job = status(host)[(user, f"gone-{user}")]
        assert (job["state"], job["misses"], job["line_gone"]) == ("retired", 3, cause)
    assert time.time() - removed < 5 * MINUTE


# --- the host's zone changes ---------------------------------------------------------------


def zone_lines(tag: str, slot: float, old: ZoneInfo, new: ZoneInfo) -> dict[str, str]:
    """Job name -> /etc/cron.d line: an hourly and a daily line whose new zone's slot is `slot`
    and an hourly and a daily line whose old zone's slot is `slot`."""
    lines = {}
    for when, zone in (("new", new), ("old", old)):
        local = datetime.fromtimestamp(slot, zone)
        lines[f"{tag}-hourly-{when}"] = f"{local.minute} * * * *"
        lines[f"{tag}-daily-{when}"] = f"{local.minute} {local.hour} * * *"
    return lines


def expected_in(schedule: str, zone: ZoneInfo, after: float) -> float:
    minute, hour = schedule.split()[:2]
    return next_slot(int(minute), None if hour == "*" else int(hour), zone, after)


@pytest.mark.parametrize(("before", "after"), [("UTC", "Asia/Kolkata"),
                                               ("Asia/Kolkata", "America/New_York")])
def test_a_zone_change_moves_every_slot_as_cron_does(host: Container, trap_log: Path,
                                                     before: str, after: str) -> None:
    """docs/agent.md's step, `timedatectl set-timezone ZONE`, and nothing else: lines whose
    new zone's slot comes in a minute or two run then, and the agent expected them exactly
    then; lines whose old zone's slot it was are not missed and are expected where cron will
    run them in the new zone."""
    host.run("timedatectl", "set-timezone", before)
    old, new = ZoneInfo(before), ZoneInfo(after)
    tag = after.rsplit("/", 1)[-1].lower().replace("_", "")
    away_from_crons_tick()
    slot = next_minute_after(time.time(), 100.0)
    lines = zone_lines(tag, slot, old, new)
    host.write(f"/etc/cron.d/zone-{tag}", "".join(
        f"{when} root cronwrap -n {name} -- true\n" for name, when in lines.items()))
    now = time.time()
    for name, when in lines.items():  # seen by the agent in the old zone first
        want = expected_in(when, old, now)
        job_where(host, ("root", name), lambda job, want=want: job["next_expected"] == want,
                  f"{name} expected at {want} in {before}", SERVICE)
    host.run("timedatectl", "set-timezone", after)
    assert host.run("readlink", "/etc/localtime").stdout.strip().endswith(after)
    changed = time.time()
    assert changed < slot - 30, "the zone changed too late for the test's slot"
    for name, when in lines.items():
        want = expected_in(when, new, changed)
        job_where(host, ("root", name), lambda job, want=want: job["next_expected"] == want,
                  f"{name} expected at {want} in {after}", SERVICE)
    wait_until(slot + GRACE + 2 * SERVICE / 3)
    jobs = status(host)
    for name, when in lines.items():
        job = jobs[("root", name)]
        starts = cron_starts(host, name)
        if name.endswith("-new"):  # cron ran it at the slot the agent expected
            assert [int(start // 60) * 60.0 for start in starts] == [slot], (name, starts)
            assert job["runs"] == 1
        else:
            assert starts == [] and job["runs"] == 0, (name, starts)
        assert job["misses"] == 0 and job["state"] != "missed", job
        assert job["next_expected"] == expected_in(when, new, time.time()), job
    missed = [name for kind, name, _ in traps(trap_log)
              if kind == "cronJobMissed" and name.startswith(f"{tag}-")]
    assert missed == []
    assert "cron's time zone changed from" in agent_log(host)


# --- the cron daemon stopped ----------------------------------------------------------------


def scalar(name: str) -> str:
    """A CRON-JOBS-MIB scalar's instance, numeric, as snmptrapd -On names it."""
    return ".".join(map(str, mib.scalar_oid(mib.Scalar[name]) + (0,)))


BEATING = {"beat": "cronwrap -n beat -- true", "plain-beat": "true  # cronwrap-name=plain-beat"}


def test_a_stopped_cron_is_one_notification_and_its_misses_carry_the_cause(
        host: Container, trap_log: Path) -> None:
    """Issue 20: `systemctl stop cron` for three minutes. A wrapped and a plain minutely line
    each miss two or three starts: snmptrapd gets one cronDaemonNotRunning and no cronJobMissed,
    the rows read cronNotRunning with their misses counted; `systemctl start cron` gives one
    cronDaemonRunning carrying the misses of the outage."""
    host.write("/etc/cron.d/beat", "".join(f"* * * * * root {line}\n"
                                           for line in BEATING.values()))
    for name in BEATING:  # a plain line is discovered once cron's log has shown a start
        job_where(host, ("root", name), lambda job: job["next_expected"] is not None,
                  f"{name} expected", 2 * MINUTE + SERVICE)
    before = len(traps(trap_log))
    host.run("systemctl", "stop", "cron")
    wait_until(time.time() + 3 * MINUTE)
    during = traps(trap_log)[before:]
    assert [kind for kind, _, _ in during] == ["cronDaemonNotRunning"], during
    assert during[0][2][scalar("cronDaemonState")] == "2"  # stopped
    jobs = status(host)
    mine = [jobs[("root", name)] for name in BEATING]
    for job in mine:
        assert job["state"] == job["last_result"] == "cronNotRunning", job
        assert job["misses"] >= 2, job
    host.run("systemctl", "start", "cron")
    wait_for(lambda: len(traps(trap_log)) > before + 1, "cronDaemonRunning", SERVICE)
    after = traps(trap_log)[before:]
    assert [kind for kind, _, _ in after] == ["cronDaemonNotRunning", "cronDaemonRunning"]
    cleared = after[1][2]
    assert cleared[scalar("cronDaemonState")] == "1"  # running
    assert int(cleared[scalar("cronDaemonOutageMisses")]) >= sum(job["misses"] for job in mine)
    host.run("rm", "/etc/cron.d/beat")
