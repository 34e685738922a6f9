"""Debian's real cron (-L 15) and the agent following its log: the table equals what cron ran.

One run of each kind at one minute cron chooses: root's and a user's lines that succeed, fail
and are killed by a signal, a wrapped line, a wrapped line whose cronwrap does not exist, and a
line still running while cron is restarted and while the agent is stopped (its end is logged
while no agent reads). The expected table comes from cron's own lines in the journal, read
here with journalctl and named by the documented rule restated below, and is compared with a
walk of cronJobTable; snmptrapd must have received each expected notification exactly once.
Takes one cron minute: about a minute and a half. The last test caps a user's open runs of
cron's log through max_jobs_per_owner, in another cron minute.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from agent_support import cronwrap_command, wait_for
from attacks.support import ensure_user
from cron_support import (
    PrivateCron,
    cron_log_agent_config,
    make_root,
    next_minute,
    seconds_until,
    unavailable,
    write_user_crontab,
)
from e2e_support import V2C, Rig, rig
from journald import PrivateJournald, running_journald
from netsnmp import free_port, have_netsnmp, snmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(unavailable() is not None, reason=str(unavailable())),
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(cronwrap_command() is None, reason="the wrapper is not installed"),
]

USER = "cwcronlog"
CMD = re.compile(r"\((?P<user>[^)]+)\) CMD \(\[(?P<pid>\d+)\] (?P<command>.*)\)")
END = re.compile(r"\((?P<user>[^)]+)\) END \(\[(?P<pid>\d+)\] (?P<command>.*)\)")
STATUS = re.compile(r"\(CRON\) error \(grandchild #(?P<pid>\d+) failed with exit status "
                    r"(?P<status>\d+)\)")
SIGNAL = re.compile(r"\(CRON\) error \(grandchild #(?P<pid>\d+) terminated by signal "
                    r"(?P<signal>\d+)")
ROW = re.compile(r'CRON-JOBS-MIB::(\w+)\."([^"]+)"\."([^"]+)" = (?:[\w ]+: ?)?(.*)$')


def line_name(command: str, names: dict[tuple[str, str], str], user: str = "root") -> str:
    """The job of a crontab line: the name it declares (the wrapper's -n, a trailing
    `# cronwrap-name=NAME`), else the name the agent gave the line, from `names` (its rows by
    (owner, cronJobCommandLine); the naming rule itself is tested in test_linenames_unit)."""
    wrapped = re.search(r"cronwrap\b.* -n (\S+)", command)
    if wrapped:
        return wrapped.group(1)
    named = re.search(r"# cronwrap-name=(\S+)$", command)
    return named.group(1) if named else names[(user, command)]


def line_names(r: Rig) -> dict[tuple[str, str], str]:
    """(owner, command as cron logs it) -> the name of the row that keeps that line."""
    return {(job["owner"], job["command_line"]): job["name"] for job in r.agent.status().values()
            if job["command_line"]}


def what_cron_ran(journald: PrivateJournald, names: dict[tuple[str, str], str]
                  ) -> dict[tuple[str, str], dict[str, int]]:
    """(user, job name) -> runs, failures, last exit status and signal, from cron's lines."""
    started: dict[str, tuple[str, str]] = {}
    outcome: dict[str, tuple[int, int]] = {}
    ran: dict[tuple[str, str], dict[str, int]] = {}
    for entry in journald.read("SYSLOG_IDENTIFIER=CRON", "_UID=0"):
        message = str(entry["MESSAGE"])
        if match := CMD.fullmatch(message):
            started[match["pid"]] = (match["user"],
                                     line_name(match["command"], names, match["user"]))
        elif match := STATUS.fullmatch(message):
            outcome[match["pid"]] = (int(match["status"]), 0)
        elif match := SIGNAL.match(message):
            outcome[match["pid"]] = (128 + int(match["signal"]), int(match["signal"]))
        elif (match := END.fullmatch(message)) and match["pid"] in started:
            status, signal = outcome.get(match["pid"], (0, 0))
            row = ran.setdefault(started[match["pid"]], {"runs": 0, "failures": 0})
            row.update(runs=row["runs"] + 1, failures=row["failures"] + (status != 0),
                       status=status, signal=signal)
    return ran


def job_lines(journald: PrivateJournald) -> int:
    return sum(1 for entry in journald.read("SYSLOG_IDENTIFIER=CRON", "_UID=0")
               if CMD.fullmatch(str(entry["MESSAGE"])) or END.fullmatch(str(entry["MESSAGE"]))
               or str(entry["MESSAGE"]).startswith("(CRON) error (grandchild #")
               or str(entry["MESSAGE"]) == "(CRON) info (No MTA installed, discarding output)")


def table(r: Rig) -> dict[tuple[str, str], dict[str, str]]:
    """cronJobTable through SNMP: (owner, name) -> {column: value}."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in r.walk("snmpwalk", "CRON-JOBS-MIB::cronJobTable").splitlines():
        match = ROW.match(line)
        assert match, line
        column, owner, name, value = match.groups()
        rows.setdefault((owner, name), {})[column] = value
    return rows


def scalar(r: Rig, name: str) -> str:
    return r.get(f"CRON-JOBS-MIB::{name}.0")[0]


def runs(r: Rig, owner: str, name: str) -> int:
    """The runs of the job named `name`, or of the plain line `name` (its command)."""
    jobs = [job for job in r.agent.status().values() if job["owner"] == owner
            and name in (job["name"], job["command_line"])]
    return int(jobs[0]["runs"]) if jobs else 0


def test_the_table_is_what_debian_cron_ran(tmp_path: Path) -> None:
    user = ensure_user(USER)
    wrapper = cronwrap_command()
    base = tmp_path
    root = base / "agent" / "root"  # the rig's agent discovers crontabs here
    make_root(root)
    gate = base / "gate"
    minute = next_minute()
    when = f"{minute.tm_min} {minute.tm_hour} {minute.tm_mday} {minute.tm_mon} *"
    socket_path = base / "agent" / "run" / "agent.sock"
    wrap = (f"{wrapper} --config {base / 'cronwrap.toml'} --log-dir {base / 'logs'} "
            f"--lock-dir {base / 'locks'}")  # the rig writes an empty cronwrap.toml there
    gated = f"while [ ! -e {gate} ]; do sleep 0.1; done  # cronwrap-name=gated"
    root_lines = ["/bin/true", "sh -c 'exit 3'", "kill -TERM $$",
                  f"{wrap} -n wrapped -- true", "/nonexistent/bin/cronwrap -n unstartable -- true",
                  gated]
    (root / "etc/crontab").write_text(
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
        f"CRONWRAP_SOCKET={socket_path}\nCRONWRAP_SPOOL_DIR={base / 'agent' / 'spool'}\n"
        + "".join(f"{when} root {line}\n" for line in root_lines)
        + "@reboot root echo booted\n")
    user_lines = ["/bin/true", "exit 4", "kill -KILL $$"]
    write_user_crontab(root, user.name, user.uid, "".join(f"{when} {line}\n"
                                                          for line in user_lines))
    trap_port = free_port()
    with running_journald(base / "journald") as journald:
        config = cron_log_agent_config(journald.journal_dir, trap_port)
        options = ("--watch-interval", "0.5", "--spool-interval", "0.2")
        with rig(base, agentx=False, listen=True, trap_port=trap_port, config=config,
                 agent_options=options) as r, PrivateCron(base / "cron", journald, root) as cron:
            assert r.agent.crontabs == root
            try:
                run_the_minute(r, cron, journald, gate, minute, user.name)
            finally:
                gate.touch()  # never leave the gated job running
            check(r, journald, user.name)


def run_the_minute(r: Rig, cron: PrivateCron, journald: PrivateJournald, gate: Path,
                   minute: time.struct_time, user: str) -> None:
    wait_for(lambda: runs(r, "root", "echo booted") == 1, "the @reboot line's run", timeout=30)
    quick = [("root", c) for c in ("/bin/true", "sh -c 'exit 3'", "kill -TERM $$")]
    quick += [(user, c) for c in ("/bin/true", "exit 4", "kill -KILL $$")]
    quick += [("root", "wrapped")]
    wait_for(lambda: all(runs(r, owner, name) == 1 for owner, name in quick),
             "the minute's quick runs", timeout=seconds_until(minute) + 30)
    wait_for(lambda: r.agent.status()["root/gated"]["state"] == "running", "gated running")

    cron.restart()  # the gated run outlives the daemon that started it
    wait_for(lambda: any("Skipping @reboot jobs" in str(e["MESSAGE"])
                         for e in journald.read("SYSLOG_IDENTIFIER=cron")), "cron restarted")
    assert r.agent.stop() == 0  # and cron logs its end while no agent reads
    gate.touch()
    wait_for(lambda: any("cronwrap-name=gated" in str(e["MESSAGE"])
                         and " END (" in str(e["MESSAGE"])
                         for e in journald.read("SYSLOG_IDENTIFIER=CRON")), "gated's END")
    r.agent.start()
    wait_for(lambda: runs(r, "root", "gated") == 1 and runs(r, "root", "unstartable") == 1,
             "the runs logged while the agent was stopped, and the verdict on unstartable")


def check(r: Rig, journald: PrivateJournald, user: str) -> None:
    names = line_names(r)
    ran = what_cron_ran(journald, names)
    wrapped = {("root", "wrapped"), ("root", "unstartable")}
    assert {name for _, name in ran} >= {"gated", "wrapped", "unstartable"}
    rows = table(r)
    assert set(rows) == set(ran), "a row per crontab line cron ran, nothing else"
    for key, counts in ran.items():
        row = rows[key]
        if key == ("root", "wrapped"):  # the wrapper's own events: one successful run
            assert (row["cronJobRuns"], row["cronJobFailures"]) == ("1", "0")
            assert row["cronJobSource"] == "wrapper(1)"
            continue
        if key == ("root", "unstartable"):  # cron's 127, no event: a run that did not start
            assert counts["status"] == 127
            assert (row["cronJobRuns"], row["cronJobFailures"]) == ("1", "1")
            assert row["cronJobLastExitStatus"] == "127"
            assert row["cronJobSource"] == "wrapper(1)"
            assert "cronwrap was not found" in row["cronJobStartProblem"]
            continue
        assert key not in wrapped
        assert row["cronJobSource"] == "cronLog(2)", key
        want = (str(counts["runs"]), str(counts["failures"]), str(counts["status"]),
                str(counts["signal"]))
        got = (row["cronJobRuns"], row["cronJobFailures"], row["cronJobLastExitStatus"],
               row["cronJobLastSignal"])
        assert got == want, key
        assert row["cronJobState"] == ("failed(2)" if counts["failures"] else "ok(1)"), key
        assert row["cronJobRunningPid"] == "0"
    # each plain line's row shows the line, as cron logged it
    shown = {(owner, row["cronJobCommandLine"]) for (owner, _), row in rows.items()}
    assert {(owner, line) for owner, line in names if "cronwrap" not in line} <= shown
    assert ran[("root", line_name("kill -TERM $$", names))]["signal"] == 15
    assert ran[(user, line_name("kill -KILL $$", names, user))]["signal"] == 9
    assert scalar(r, "cronLogSource") == "INTEGER: following(2)"
    assert scalar(r, "cronLogEntries") == f"Counter32: {job_lines(journald)}"
    check_notifications(r, ran)


def check_notifications(r: Rig, ran: dict[tuple[str, str], dict[str, int]]) -> None:
    failed = {(owner, name) for (owner, name), counts in ran.items()
              if counts["failures"] and name != "unstartable"}
    assert len(failed) == 4

    def about(owner: str, name: str) -> str:
        return (rf"cronJobFailed\t.*cronNotifyJobOwner\.0 = STRING: {re.escape(owner)}\t"
                rf"CRON-JOBS-MIB::cronNotifyJobName\.0 = STRING: {re.escape(name)}\t")

    for owner, name in failed:
        r.trapd.wait_for(about(owner, name))
    r.trapd.wait_for(r"cronJobNotStarted\t.*cronNotifyJobName\.0 = STRING: unstartable\t")
    text = r.trapd.text()
    for owner, name in failed:
        assert len(re.findall(about(owner, name), text)) == 1, name  # once, restart or not
    assert len(re.findall(r"cronJobNotStarted\t", text)) == 1
    assert len(re.findall(r"cronJobFailed\t", text)) == len(failed)
    assert "cronJobRecovered" not in text


def test_snmp_view_of_a_disabled_cron_log(tmp_path: Path) -> None:
    """Without cron's log the scalars say so and nothing else changes."""
    config = '[agent]\ncron_log = "off"\n'
    with rig(tmp_path, agentx=False, listen=True, config=config) as r:
        assert scalar(r, "cronLogSource") == "INTEGER: disabled(1)"
        assert scalar(r, "cronLogEntries") == "Counter32: 0"
        out = snmp("snmpget", *V2C, "-Ov", r.listener, "CRON-JOBS-MIB::cronJobCount.0",
                   mibs=True).stdout
        assert out.strip() == "Gauge32: 0"


def test_a_users_open_runs_are_capped_and_push_out_only_their_own(tmp_path: Path) -> None:
    """max_jobs_per_owner = 3: a user's crontab starts 5 runs that wait; 2 of them are pushed
    out of the open runs (one line says so), root's run in the same minute still gets its end
    and exit status, and only the user's 3 remembered runs are counted when all end."""
    user = ensure_user(USER)
    root = tmp_path / "agent" / "root"
    make_root(root)
    gates = Path(tempfile.mkdtemp(prefix="cwcronlog-gates-"))  # the user's shells look here
    gates.chmod(0o755)
    minute = next_minute()
    when = f"{minute.tm_min} {minute.tm_hour} {minute.tm_mday} {minute.tm_mon} *"
    wait = "while [ ! -e {} ]; do sleep 0.1; done"
    (root / "etc/crontab").write_text(
        "SHELL=/bin/sh\nPATH=/usr/bin:/bin\n"
        f"{when} root {wait.format(gates / 'root')}; exit 3  # cronwrap-name=victim\n")
    write_user_crontab(root, user.name, user.uid, f"{when} {wait.format(gates / 'user')}\n" * 5)
    with running_journald(tmp_path / "journald") as journald:
        config = (f'[agent]\ncron_log_journal = "{journald.journal_dir}"\n'
                  "discovery_interval = 1.0\nmax_jobs_per_owner = 3\n")
        with rig(tmp_path, agentx=False, listen=True, config=config,
                 agent_options=("--watch-interval", "0.5")) as r, \
                PrivateCron(tmp_path / "cron", journald, root):
            try:
                wait_for(lambda: len(re.findall(r"open runs pushed out: uid \d+",
                                                r.agent.log.read_text())) == 1
                         and r.agent.status().get("root/victim", {}).get("state") == "running",
                         "the user's 5 runs and root's started", timeout=seconds_until(minute) + 30)
                (gates / "root").touch()
                wait_for(lambda: runs(r, "root", "victim") == 1, "root's run ended")
                (gates / "user").touch()
                wait_for(lambda: sum(1 for e in journald.read("SYSLOG_IDENTIFIER=CRON", "_UID=0")
                                     if END.fullmatch(str(e["MESSAGE"]))) == 6, "all 6 ENDs")
                wait_for(lambda: scalar(r, "cronLogEntries") == f"Counter32: "
                         f"{job_lines(journald)}", "the agent has read them all")
            finally:
                for name in ("root", "user"):
                    (gates / name).touch()
            victim = r.agent.status()["root/victim"]
            assert (victim["runs"], victim["failures"], victim["last_exit_status"]) == (1, 1, 3)
            flooder = [job for job in r.agent.status().values() if job["owner"] == user.name]
            assert [job["runs"] for job in flooder] == [3]
            said = re.findall(r"open runs pushed out: uid (\d+)", r.agent.log.read_text())
            assert said == [str(user.uid)]
    shutil.rmtree(gates)  # only once every END was seen: a shell still looping needs its gate
