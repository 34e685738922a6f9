"""README's "Monitoring jobs you have not wrapped" on a booted Debian 13: the packaged agent, under
its systemd unit (sandboxed, as root), follows Debian's cron in the real system journal.

The package is installed as README says, cron gets README's `EXTRA_OPTS="-L 15"` and restart,
and root's crontab has lines that are not wrapped (one failing, one named by a comment) and a
wrapped line whose cronwrap path does not exist. A monitoring host then walks cronJobTable
through the container's snmpd: each line is a row of the right source with what cron logged,
and cronLogSource.0 is following(2). One cron minute, plus the container's boot.

On the same host, docs/nms/receivers.md's steps, taken from its text: Debian's own
snmptrapd.service, with the shipped drop-ins, logs each notification the agent sends through
snmpd, and SNMPTT prints one readable line for each (dates, "-" for what was not sent).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from . import readme
from .machine import Container, HostError, wait_for
from .snmpview import CRON_JOB_ENTRY, CRON_JOBS_MIB, WALK, decode_index
from .test_host_package import SERVICE, install_per_readme

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT_CRONTAB = """\
* * * * * sh -c 'exit 3'
* * * * * /bin/true  # cronwrap-name=plain-ok
* * * * * /usr/local/bin/cronwrap -n broken -- true
"""
COLUMNS = {3: "runs", 4: "failures", 8: "exit_status", 24: "source", 25: "start_problem"}
CRON_LOG_SOURCE = f"{CRON_JOBS_MIB}.1.13.0"
CRON_MINUTES = 150.0  # two firings at most a minute apart, and the agent's reading


def table(machine: Container) -> dict[tuple[str, str], dict[str, str]]:
    """Some columns of cronJobTable, walked from outside: (owner, name) -> {column: value}."""
    walk = machine.outside(*WALK, CRON_JOB_ENTRY, check=False, timeout=60)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    prefix = f".{CRON_JOB_ENTRY}."
    for line in walk.stdout.splitlines():
        oid, _, value = line.partition(" ")
        if oid.startswith(prefix):
            column, *index = (int(part) for part in oid[len(prefix):].split("."))
            if column in COLUMNS:
                rows.setdefault(decode_index(index), {})[COLUMNS[column]] = value.strip('"')
    return rows


@pytest.fixture(scope="module")
def following(machine: Container, built_deb: object) -> None:
    install_per_readme(machine, built_deb, [])  # type: ignore[arg-type]
    setting = readme.block_containing("text /etc/default/cron", "EXTRA_OPTS")
    machine.write("/etc/default/cron", setting)
    machine.run("crontab", "-", input=ROOT_CRONTAB)
    for command in readme.commands(readme.block_containing("sh", "systemctl restart cron")):
        machine.run("/bin/sh", "-ec", command)


def test_the_packaged_agent_follows_cron_in_the_system_journal(
        machine: Container, following: None) -> None:
    def ran() -> dict[tuple[str, str], dict[str, str]] | None:
        rows = table(machine)
        wanted = [("root", "plain-ok"), ("root", "broken")]
        failing = [key for key in rows if key == ("root", "sh")]  # sh -c 'exit 3': readable
        done = all(int(rows.get(key, {}).get("runs", 0)) >= 1 for key in wanted + failing)
        return rows if failing and done else None

    rows = wait_for(ran, "cron's runs in cronJobTable", CRON_MINUTES)
    assert isinstance(rows, dict)
    failing = rows[("root", "sh")]
    assert failing["source"] == "2" and failing["exit_status"] == "3"
    assert failing["runs"] == failing["failures"]
    ok = rows[("root", "plain-ok")]
    assert (ok["source"], ok["failures"], ok["exit_status"]) == ("2", "0", "0")
    broken = rows[("root", "broken")]
    assert (broken["source"], broken["exit_status"]) == ("1", "127")
    assert "cronwrap was not found" in broken["start_problem"]
    get = machine.outside("snmpget", "-v2c", "-c", "public", "-m", "", "-On", "-Oq",
                          "127.0.0.1", CRON_LOG_SOURCE, timeout=SERVICE)
    assert get.stdout.split()[-1] == "2"  # following


RECEIVERS = readme.README.parent / "docs" / "nms" / "receivers.md"
NOTIFIED = 120.0  # the jobs below run in seconds; the watcher notices an overrun within 5 s
UTC_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC"
# what SNMPTT must print for the notifications the jobs below raise (FORMAT after "localhost - ")
READABLE = {
    ("cronJobFailed", "rx-failed"):
        r"Cron job rx-failed of root failed: exit status 3, signal 0, last line: -",
    ("cronJobFailed", "rx-said"):
        r"Cron job rx-said of root failed: exit status 4, signal 0, last line: disk full",
    ("cronJobRecovered", "rx-failed"): r"Cron job rx-failed of root recovered: exit status 0",
    ("cronJobTimedOut", "rx-timeout"):
        r"Cron job rx-timeout of root timed out after \d+ milliseconds and was killed, "
        r"signal 15, last line: -",
    ("cronJobOverrunning", "rx-slow"):
        rf"Cron job rx-slow of root is overrunning, pid \d+, started {UTC_TIME}",
    ("cronJobCleared", "rx-slow"):
        r"Cron job rx-slow of root: its overlap, overrun or duration anomaly is over, "
        r"exit status 0",
}


SNMPTT_LINE = re.compile(r'(?P<oid>\.[0-9.]+) \S+ "Status Events" \S+ - (?P<text>.*)$')
KINDS = {f".{CRON_JOBS_MIB}.0.{number}": kind for number, kind in (
    (1, "cronJobFailed"), (3, "cronJobTimedOut"), (5, "cronJobOverrunning"),
    (6, "cronJobRecovered"), (17, "cronJobCleared"))}


def journal(machine: Container, *matches: str) -> list[str]:
    """The MESSAGE of each journal entry matching journalctl MATCHES, in order."""
    out = machine.run("journalctl", "--no-pager", "-o", "json", *matches).stdout
    return [str(json.loads(line).get("MESSAGE", "")) for line in out.splitlines() if line]


def receiver_state(machine: Container) -> str:
    """What the receiver did, for a failure's message: its unit and the journal's last lines."""
    return "\n".join(machine.run(*argv, check=False).stdout for argv in (
        ("systemctl", "cat", "snmptrapd"), ("systemctl", "status", "--no-pager", "snmptrapd"),
        ("journalctl", "--no-pager", "-n", "20", "-u", "snmptrapd"),
        ("journalctl", "--no-pager", "-n", "20", "-t", "snmptt"),
        ("cronwrap", "status")))


def fetch_for_offline_install(machine: Container, packages: list[str]) -> None:
    """What `apt install PACKAGES` inside needs, fetched from outside: the container has no
    network (--private-network); apt there then installs from its own cache, as on a host."""
    root = ["-o", f"Dir={machine.root}"]
    for argv in (["apt-get", *root, "update"],
                 ["apt-get", *root, "install", "--download-only", "-y", *packages]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def receiving(machine: Container, following: None) -> None:
    """receivers.md's steps, from its text, on the cron host itself (its own receiver)."""
    install = readme.block_containing("sh", "apt install snmptrapd", RECEIVERS)
    (command,) = readme.commands(install)
    fetch_for_offline_install(machine, command.split()[2:])
    machine.run("/bin/sh", "-ec", command, input="Y\n")
    for command in readme.commands(readme.block_containing("sh", "daemon-reload", RECEIVERS)):
        machine.run("/bin/sh", "-ec", command)
    sink = "text /etc/snmp/snmpd.conf.d/cronwrap-traps.conf"
    machine.write(sink.split()[1], readme.block_containing(sink, "trap2sink", RECEIVERS))
    for command in readme.commands(readme.block_containing("sh", "restart snmpd", RECEIVERS)):
        machine.run("/bin/sh", "-ec", command)
    wait_for(lambda: table(machine), "the agent answering through the restarted snmpd", 60)


def test_the_receiver_how_to_logs_each_notification_and_snmptt_reads_it(
        machine: Container, receiving: None) -> None:
    machine.sh("cronwrap -n rx-slow --max-runtime 1s -- sleep 12 >/dev/null 2>&1 &")
    ran = [machine.run("/bin/sh", "-c", f"cronwrap {job}", check=False).returncode for job in (
        "-n rx-failed -- sh -c 'exit 3'",
        "-n rx-said --last-message -- sh -c 'echo disk full; exit 4'",
        "-n rx-failed -- true", "-n rx-timeout --timeout 1s -- sleep 30")]
    assert ran == [3, 4, 0, 124]

    def translated() -> dict[tuple[str, str], list[str]] | None:
        found: dict[tuple[str, str], list[str]] = {key: [] for key in READABLE}
        for message in journal(machine, "-t", "snmptt"):
            line = SNMPTT_LINE.search(message)
            about = line and re.match(r"Cron job (\S+) of root\b", line["text"])
            if about and (KINDS.get(line["oid"]), about[1]) in found:
                found[(KINDS[line["oid"]], about[1])].append(line["text"])
        return found if all(found.values()) else None

    try:
        found = wait_for(translated, "SNMPTT's line for each notification", NOTIFIED)
    except HostError as exc:
        raise HostError(f"{exc}\n{receiver_state(machine)}") from None
    assert isinstance(found, dict)
    for key, lines in found.items():
        assert len(lines) == 1, (key, lines)
        assert re.fullmatch(READABLE[key], lines[0]), (key, lines[0])
    received = journal(machine, "-u", "snmptrapd")
    for kind, job in READABLE:
        logged = [m for m in received if f"CRON-JOBS-MIB::{kind}" in m
                  and f"CRON-JOBS-MIB::cronNotifyJobName.0 = STRING: {job}" in m]
        assert len(logged) == 1, (kind, job, logged)  # snmptrapd logged it, once
