"""Crontab lines Debian's real cron will never run: reported by discovery and by cron's own log,
and cron runs none.

Beside a correct /etc/cron.d file sit files cron refuses: a name with a dot (backup.sh), mode
0664, owned by a user, a second hard link, a syntax error on its second line, a last line
without its newline, a command of over 1,000 bytes (which only cron's log tells: "Error:
command too long"), and a user crontab of mode 0644 (a last comment without its newline is
fine: cron runs that file's line).  A user denied by /etc/cron.allow and /etc/cron.deny has a
correct crontab: crontab(1) refuses that user, but the daemon never reads those files (only
crontab.c calls misc.c's allowed()), so cron runs the line and it is not reported.  Every line
of them runs each minute and would leave a mark.
Debian's cron (-L 15, private namespace) runs one minute; its own log must show the correct
line's run and none of the others, and no mark but the correct one's may exist.  The agent's
table (a walk over SNMP) must hold each refused line in ignoredByCron(21) with cron's reason,
the correct line not; snmptrapd must have received cronCrontabIgnored once per refused line,
though discovery and cron's log both tell most of them.
A user logging cron's words about the correct file (as `cron`) holds nothing: only root's lines
count.  A chmod that makes a file acceptable is noticed (the file's inode times change) and its row
leaves ignoredByCron.  Takes one cron minute: about a minute and a half.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from agent_support import cronwrap_command, wait_for
from attacks.support import User, as_user, ensure_user
from cron_support import (
    cron_and_agent,
    make_root,
    next_minute,
    seconds_until,
    unavailable,
    write_user_crontab,
)
from e2e_support import TABLE, Rig, parse_table_walk
from journald import PrivateJournald
from netsnmp import have_netsnmp
from test_cronlog_journal import FORGE, syslog_datagram

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

USER = "cwignored"
DENIED = "cwdenied"  # in cron.deny, not in cron.allow
RAN = ("comment_last", "denied", "good")  # the lines cron runs
CMD = re.compile(r"\((?P<user>[^)]+)\) CMD \(\[\d+\] (?P<command>.*)\)")
# job name -> the start of the reason cronJobIgnoredByCron must give
REFUSED = {
    "dotted": "file name has characters other than letters, digits, '_' and '-'",
    "writable": "INSECURE MODE (group/other writable): mode 0664",
    "linked": "NUMBER OF HARD LINKS > 1: 2 links",
    "userowned": "WRONG FILE OWNER: owned by uid",
    "syntax_good": "syntax error on line 2",
    "syntax_bad": "syntax error on line 2",
    "no_newline": "missing newline before EOF",
    # discovery's parser finds nothing wrong: only cron's own log tells it
    "toolong": "cron's log: Syntax error, this crontab file will be ignored (command too long)",
    "user_mode": "INSECURE MODE (mode 0600 expected): mode 0644",
}

USERS_FILES = ("userowned", "user_mode")  # the user's own files (the lines name root or none)


def marking(marks: Path, name: str) -> str:
    """A command leaving the mark `name`, its job named `name` (cronwrap-name)."""
    return f"touch {marks / name}  # cronwrap-name={name}"


def write_crontabs(root: Path, marks: Path, user_uid: int, user: str, denied: str) -> None:
    cron_d = root / "etc/cron.d"

    def put(file: str, text: str, mode: int = 0o644, owner: int = 0) -> None:
        path = cron_d / file
        path.write_text(text)
        os.chown(path, owner, 0)
        os.chmod(path, mode)

    def line(name: str) -> str:
        return f"* * * * * root {marking(marks, name)}\n"

    put("good", line("good"))
    put("comment_last", line("comment_last") + "# a last comment without its newline")
    put("backup.sh", line("dotted"))
    put("writable", line("writable"), mode=0o664)
    put("userowned", line("userowned"), owner=user_uid)
    put("linked", line("linked"))
    os.link(cron_d / "linked", root / "etc/linked.copy")
    put("syntax", line("syntax_good") + f"61 * * * * root {marking(marks, 'syntax_bad')}\n")
    put("nonewline", line("no_newline").rstrip("\n"))
    put("toolong", f"* * * * * root {cronwrap_command()} -n toolong -- touch {marks / 'toolong'} "
                   f"{'x' * 1000}\n")  # cron's MAX_COMMAND: 1,000 bytes
    tab = root / "var/spool/cron/crontabs" / user
    tab.write_text(f"* * * * * {marking(marks, 'user_mode')}\n")
    os.chown(tab, user_uid, 0)
    os.chmod(tab, 0o644)
    (root / "etc/cron.allow").write_text("root\n")
    (root / "etc/cron.deny").write_text(f"{denied}\n")
    write_user_crontab(root, denied, pwd.getpwnam(denied).pw_uid,
                       f"* * * * * {marking(marks, 'denied')}\n")


def forge_refusal(journald: PrivateJournald, user: User) -> None:
    """`user` logs cron's words refusing the correct file, as the daemon (`cron`) would."""
    forged = syslog_datagram("(*system*good) WRONG FILE OWNER (/etc/cron.d/good)", 1, "cron")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(str(journald.syslog_socket))  # root opens; the user sends
        subprocess.run(as_user(user, [sys.executable, "-c", FORGE, str(sock.fileno()),
                                      forged.decode()]),
                       pass_fds=[sock.fileno()], check=True, timeout=60)
    assert journald.wait_for("SYSLOG_IDENTIFIER=cron", f"_UID={user.uid}"), "not logged"


def commands_cron_ran(journald: PrivateJournald) -> list[str]:
    return [match["command"] for entry in journald.read("SYSLOG_IDENTIFIER=CRON")
            if (match := CMD.fullmatch(str(entry["MESSAGE"])))]


def test_lines_cron_never_runs_are_reported_and_cron_runs_none(tmp_path: Path) -> None:
    root = tmp_path / "agent" / "root"  # the rig's agent discovers crontabs here
    make_root(root)
    marks = Path(tempfile.mkdtemp(prefix="cwignored-"))  # the denied user's job reaches it
    os.chmod(marks, 0o777)
    try:
        check_lines(tmp_path, marks, root)
    finally:
        shutil.rmtree(marks)


def check_lines(tmp_path: Path, marks: Path, root: Path) -> None:
    user, denied = ensure_user(USER), ensure_user(DENIED)
    write_crontabs(root, marks, user.uid, user.name, denied.name)
    minute = next_minute()
    with cron_and_agent(tmp_path, root) as (r, journald, cron):
        forge_refusal(journald, user)  # a user imitating cron: the correct line stays correct
        wait_for(lambda: all((marks / name).exists() for name in RAN),
                 "the correct lines' runs",
                 timeout=seconds_until(minute) + 30)
        wait_for(lambda: len(commands_cron_ran(journald)) >= len(RAN),
                 "cron's log of the correct lines")
        check_table(r, user.name, denied.name)
        check_notifications(r)
        assert sorted(os.listdir(marks)) == sorted(RAN), "a refused line ran"
        ran = commands_cron_ran(journald)
        assert all(re.search(rf"cronwrap-name=({'|'.join(RAN)})$", c) for c in ran), ran
        refused = subprocess.run(cron.in_namespace(as_user(denied, ["crontab", "-l"])),
                                 capture_output=True, text=True, timeout=30, check=False)
        assert f"You ({denied.name}) are not allowed to use this program" in refused.stderr

        os.chmod(root / "etc/cron.d/writable", 0o644)  # fixed: the row leaves the state
        wait_for(lambda: r.agent.status()["root/writable"]["state"] != "ignoredByCron",
                 "the chmod noticed")
        assert r.agent.status()["root/writable"]["ignored_by_cron"] is None


def check_table(r: Rig, user: str, denied: str) -> None:
    owners = {"good": "root", "comment_last": "root", "denied": denied}
    wait_for(lambda: all(r.agent.status().get(f"{owners[name]}/{name}", {}).get("runs") == 1
                         for name in RAN), "the correct runs in the table")
    # the user's files' lines are the user's rows, whatever user a line names
    wait_for(lambda: all(f"{user if n in USERS_FILES else 'root'}/{n}" in r.agent.status()
                         for n in REFUSED), "a row per refused line")
    rows = parse_table_walk(r.walk("snmpwalk", TABLE))  # job names are unique here
    for name, reason in REFUSED.items():
        row = rows[name]
        assert row["cronJobState"] == "ignoredByCron(21)", name
        assert row["cronJobIgnoredByCron"].strip('"').startswith(reason), (name, row)
    for name in RAN:
        good = rows[name]
        assert good["cronJobState"] != "ignoredByCron(21)"
        assert good["cronJobIgnoredByCron"].strip('"') == ""


def check_notifications(r: Rig) -> None:
    for name in REFUSED:
        r.trapd.wait_for(rf"cronCrontabIgnored\t.*cronNotifyJobName\.0 = STRING: {name}\t")
    text = r.trapd.text()
    sent = re.findall(r"cronCrontabIgnored\t.*?cronNotifyJobName\.0 = STRING: (\w+)\t", text)
    assert sorted(sent) == sorted(REFUSED), "once per refused line, none for the correct one"
