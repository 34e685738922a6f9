"""Lines Debian's cron will never run, on a booted Debian 13 (issue 20): the packaged agent
reports each at an NMS's snmptrapd with cron's reason, and cron's own journal shows it ran none.

The package is installed as README says, its trap sink aimed at this machine's snmptrapd, cron
at -L 15 and discovery every 10 s.  Then /etc/cron.d gets a correct file beside files cron
refuses: a name with a dot (backup.sh), mode 0664, owned by a user, a syntax error, and a
command of over 1,000 bytes (which only cron's own log tells); and a user that /etc/cron.allow
does not name and /etc/cron.deny does gets a correct crontab (written by root): crontab(1)
refuses that user, but the daemon never reads those files, so cron runs it.  One cron minute
for all of them: the correct lines leave their marks and are not reported, every refused line
is one cronCrontabIgnored carrying its reason, and cron's journal has no CMD of any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cronwrap.agent import mib
from cronwrap.agent.model import NotificationKind

from .machine import Container, HostError, wait_for
from .snmpview import CRON_JOB_ENTRY, NOTIFY_NAME, NOTIFY_OWNER, SNMP_TRAP_OID, varbinds
from .test_host_package import SERVICE, add_trap_sink, install_per_readme, trap_log, wait_active

__all__ = ["trap_log"]  # the NMS's snmptrapd, a fixture of this module too

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MARKS = "/var/tmp/marks"
OWNER, DENIED = "carol", "dave"  # carol owns a cron.d file; dave is denied by cron.allow/deny
CRON_MINUTE = 150.0  # the files are read at cron's next minute, and its jobs run then
IGNORED = f"{CRON_JOB_ENTRY}.{int(mib.Column.cronJobIgnoredByCron)}."
CRONTAB_IGNORED = ".".join(map(str, mib.notification_oid(NotificationKind.crontab_ignored)))
# (owner, job) -> the start of the reason its notification must carry
REFUSED = {
    ("root", "dotted"): "file name has characters other than letters, digits, '_' and '-'",
    ("root", "writable"): "INSECURE MODE (group/other writable): mode 0664",
    (OWNER, "userowned"): "WRONG FILE OWNER: owned by uid",
    ("root", "syntax"): "syntax error on line 2",
    ("root", "toolong"): "cron's log: Syntax error, this crontab file will be ignored "
                         "(command too long)",
}
RAN = {("root", "good"), (DENIED, "denied")}
# cron's own words for the files it reads and refuses (backup.sh it never opens)
CRON_SAYS = ("(*system*writable) INSECURE MODE (group/other writable) (/etc/cron.d/writable)",
             "(*system*userowned) WRONG FILE OWNER (/etc/cron.d/userowned)",
             "Error: bad minute; while reading /etc/cron.d/syntax",
             "Error: command too long; while reading /etc/cron.d/toolong")


def marking(name: str) -> str:
    return f"touch {MARKS}/{name}  # cronwrap-name={name}"


@pytest.fixture(scope="module")
def host(machine: Container, built_deb: Path, trap_log: Path) -> Container:
    """README's install and trap sink, cron at -L 15, discovery every 10 s, the two users."""
    install_per_readme(machine, built_deb, [])
    add_trap_sink(machine, [])
    machine.write("/etc/default/cron", 'EXTRA_OPTS="-L 15"\n')
    machine.run("sed", "-i", "s/^# discovery_interval = 60.0$/discovery_interval = 10.0/",
                "/etc/cronwrap/agent.toml")
    for user in (OWNER, DENIED):
        machine.run("useradd", "--create-home", user)
    machine.run("systemctl", "restart", "snmpd", "cron", "cronwrap-agent")
    try:
        for unit in ("cronwrap-agent.socket", "cronwrap-agent.service"):
            wait_active(machine, unit)
    except HostError:
        pytest.fail("the agent did not come up:\n" + machine.run(
            "journalctl", "--no-pager", "-o", "cat", "-u", "cronwrap-agent").stdout)
    return machine


def write_crontabs(machine: Container) -> None:
    machine.run("install", "-d", "-m", "1777", MARKS)
    files = {
        "good": (f"* * * * * root {marking('good')}\n", "0644", "root"),
        "backup.sh": (f"* * * * * root {marking('dotted')}\n", "0644", "root"),
        "writable": (f"* * * * * root {marking('writable')}\n", "0664", "root"),
        "userowned": (f"* * * * * root {marking('userowned')}\n", "0644", OWNER),
        "syntax": (f"* * * * * root {marking('syntax')}\n61 * * * * root true\n", "0644", "root"),
        "toolong": (f"* * * * * root cronwrap -n toolong -- touch {MARKS}/toolong {'x' * 1000}\n",
                    "0644", "root"),
    }
    for name, (text, mode, owner) in files.items():
        machine.write(f"/var/tmp/{name}", text)
        machine.run("install", "-m", mode, "-o", owner, f"/var/tmp/{name}", f"/etc/cron.d/{name}")
    # the user's crontab was there before the user was denied (crontab -u refuses one after)
    machine.run("crontab", "-u", DENIED, "-", input=f"* * * * * {marking('denied')}\n")
    machine.write("/etc/cron.allow", "root\n")
    machine.write("/etc/cron.deny", f"{DENIED}\n")


def cron_messages(machine: Container, identifier: str) -> list[str]:
    out = machine.run("journalctl", "--no-pager", "-o", "json", "_UID=0",
                      f"SYSLOG_IDENTIFIER={identifier}").stdout
    return [str(json.loads(line).get("MESSAGE", "")) for line in out.splitlines() if line]


def ignored_traps(log: Path) -> list[tuple[tuple[str, str], str]]:
    """((owner, job), reason) of each cronCrontabIgnored snmptrapd got, in order."""
    found = []
    for line in log.read_text().splitlines():
        values = varbinds(line)
        if values.get(SNMP_TRAP_OID) == CRONTAB_IGNORED:
            reason = next((v for oid, v in values.items() if oid.startswith(IGNORED)), "")
            found.append(((values.get(f"{NOTIFY_OWNER}.0", ""),
                           values.get(f"{NOTIFY_NAME}.0", "")), reason))
    return found


def test_lines_cron_refuses_are_reported_and_cron_runs_none(host: Container,
                                                             trap_log: Path) -> None:
    write_crontabs(host)
    wait_for(lambda: all(host.run("test", "-e", f"{MARKS}/{name}", check=False).returncode == 0
                         for _, name in RAN), "the correct lines' runs", CRON_MINUTE)
    wait_for(lambda: {job for job, _ in ignored_traps(trap_log)} >= set(REFUSED),
             "cronCrontabIgnored for every refused line", SERVICE)
    traps = ignored_traps(trap_log)
    assert sorted(job for job, _ in traps) == sorted(REFUSED), traps  # once each, none else
    for job, reason in traps:
        assert reason.startswith(REFUSED[job]), (job, reason)
    assert sorted(host.run("ls", MARKS).stdout.split()) == sorted(name for _, name in RAN)
    ran = {m.split(f"{MARKS}/", 1)[1].split()[0] for m in cron_messages(host, "CRON")
           if " CMD (" in m and f"{MARKS}/" in m}
    assert ran == {name for _, name in RAN}  # cron's own journal: none of the refused lines
    rows = {(job["owner"], job["name"]): job
            for job in json.loads(host.run("cronwrap", "status", "--json").stdout)}
    for job in RAN:
        assert rows[job]["ignored_by_cron"] is None and rows[job]["runs"] >= 1, rows[job]
    said = cron_messages(host, "cron")
    for words in CRON_SAYS:
        assert words in said, (words, said)
    refused = host.run("setpriv", "--reuid", DENIED, "--regid", DENIED, "--init-groups",
                       "crontab", "-l", check=False)
    assert f"You ({DENIED}) are not allowed to use this program" in refused.stderr
