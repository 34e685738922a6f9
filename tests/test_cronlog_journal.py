"""The agent following cron's lines in a real journald: restarts of the agent and of journald,
rotation, forged lines from an unprivileged user, and no journal at all.

The lines are sent as cron sends them (syslog(3) datagrams to journald's /dev/log socket, from
root, identifier CRON), taken from a real cron's recording (tests/data/debian-cron-L15.jsonl);
tests/test_cronlog_cron.py runs the real cron.
"""

from __future__ import annotations

import pwd
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from journald import PrivateJournald, running_journald

FAST = ("--spool-interval", "0.2", "--watch-interval", "0.5")


def name(command: str) -> str:
    """The documented name of a crontab line that is not wrapped, for the lines here: its
    program's file name (no guard before it, no two lines of one program)."""
    return command.split()[0].rsplit("/", 1)[-1]


def syslog_datagram(message: str, pid: int, identifier: str = "CRON") -> bytes:
    """What glibc's syslog(3) sends for openlog(identifier, LOG_PID, LOG_CRON), LOG_INFO."""
    return f"<78>Nov 30 12:00:00 {identifier}[{pid}]: {message}".encode()


class Cron:
    """Sends cron's job lines for runs of one crontab line, as root."""

    def __init__(self, journald: PrivateJournald) -> None:
        self.socket_path = journald.syslog_socket
        self.next_pid = 40000

    def send(self, message: str, pid: int = 1) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(syslog_datagram(message, pid), str(self.socket_path))

    def start(self, command: str, user: str = "root") -> int:
        self.next_pid += 1
        self.send(f"({user}) CMD ([{self.next_pid}] {command})", self.next_pid - 1)
        return self.next_pid

    def end(self, pid: int, command: str, user: str = "root", status: int = 0,
            signal: int = 0) -> None:
        if status:
            self.send(f"(CRON) error (grandchild #{pid} failed with exit status {status})")
        if signal:
            self.send(f"(CRON) error (grandchild #{pid} terminated by signal {signal})")
        self.send(f"({user}) END ([{pid}] {command})", pid - 1)

    def run(self, command: str, user: str = "root", status: int = 0, signal: int = 0) -> None:
        self.end(self.start(command, user), command, user, status, signal)


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[PrivateJournald]:
    with running_journald(tmp_path / "journald") as daemon:
        yield daemon


def follow(base: Path, journald: PrivateJournald, *extra: str) -> Agent:
    config = base / "agent.toml"
    config.write_text(f'[agent]\ncron_log_journal = "{journald.journal_dir}"\n')
    return Agent(base / "agent", extra=["--config", str(config), *FAST, *extra])


def rows(agent: Agent) -> dict[str, tuple[int, int, int | None, int]]:
    """(runs, failures, last exit status, last signal) of each of root's jobs."""
    return {job["name"]: (job["runs"], job["failures"], job["last_exit_status"],
                          job["last_signal"])
            for job in agent.status().values() if job["owner_uid"] == 0}


def has_rows(agent: Agent, want: dict[str, tuple[int, int, int | None, int]]) -> bool:
    return rows(agent) == want


def following(agent: Agent) -> bool:
    return "following cron's log" in agent.log.read_text()


def test_lines_are_applied_once_across_agent_and_journald_restarts_and_rotation(
        tmp_path: Path, journald: PrivateJournald) -> None:
    cron = Cron(journald)
    cron.send("(CRON) INFO (Running @reboot jobs)")  # history before the first start
    agent = follow(tmp_path, journald).start()
    try:
        wait_for(lambda: following(agent), "the agent following cron's log")
        cron.run("sh -c 'exit 3'", status=3)
        cron.run("/bin/true")
        want = {name("sh -c 'exit 3'"): (1, 1, 3, 0), name("/bin/true"): (1, 0, 0, 0)}
        wait_for(lambda: has_rows(agent, want), "the first runs")
        assert agent.status()[f"root/{name('/bin/true')}"]["source"] == "cron_log"

        # the agent stops in the middle of a run; cron goes on logging
        slow = cron.start("sleep 100")
        slow_row = f"root/{name('sleep 100')}"
        wait_for(lambda: agent.status().get(slow_row, {}).get("state") == "running",
                 "the slow run shown running")
        assert agent.stop() == 0
        cron.end(slow, "sleep 100", signal=15)
        cron.run("/bin/true")
        agent.start()
        want |= {name("sleep 100"): (1, 1, 143, 15), name("/bin/true"): (2, 0, 0, 0)}
        wait_for(lambda: has_rows(agent, want), "the runs logged while the agent was down")

        journald.restart()
        cron.run("/bin/true")
        want[name("/bin/true")] = (3, 0, 0, 0)
        wait_for(lambda: has_rows(agent, want), "a run logged after journald restarted")

        journald.rotate()
        cron.run("sh -c 'exit 3'", status=3)
        want[name("sh -c 'exit 3'")] = (2, 2, 3, 0)
        wait_for(lambda: has_rows(agent, want), "a run logged after rotation")

        agent.stop()  # nothing new: a restart applies nothing twice
        agent.start()
        wait_for(lambda: agent.log.read_text().count("following cron's log") == 3,
                 "the third start following")
        cron.run("/bin/true")  # a run after the restart, to know the catch-up is over
        want[name("/bin/true")] = (4, 0, 0, 0)
        wait_for(lambda: has_rows(agent, want), "the last run")
        assert rows(agent) == want
    finally:
        agent.close()


class OwnBootIdAgent(Agent):
    """An agent whose /proc shows another boot id than the journal's writer: a service with
    ProtectProc= in a container (systemd-nspawn mounts the container's boot id over /proc,
    which a service's own /proc does not show)."""

    def args(self) -> list[str]:
        boot_id = self.base / "boot_id"
        boot_id.write_text("0123456789abcdef0123456789abcdef\n")
        mount = 'mount --bind "$0" /proc/sys/kernel/random/boot_id && exec "$@"'
        return ["unshare", "-m", "sh", "-c", mount, str(boot_id), *super().args()]


def test_an_agent_restart_during_a_run_says_nothing_false(tmp_path: Path,
                                                          journald: PrivateJournald) -> None:
    """Issue 19: every restart while a job ran logged "... started ... in an earlier boot and
    cron logged no end: its outcome is unknown" in the same boot, and forgot the run."""
    cron = Cron(journald)
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ncron_log_journal = "{journald.journal_dir}"\n')
    agent = OwnBootIdAgent(tmp_path / "agent", extra=["--config", str(config), *FAST]).start()
    try:
        wait_for(lambda: following(agent), "the agent following cron's log")
        slow = cron.start("sleep 100")
        slow_row = f"root/{name('sleep 100')}"
        wait_for(lambda: agent.status().get(slow_row, {}).get("state") == "running",
                 "the slow run shown running")
        assert agent.stop() == 0
        agent.start()
        wait_for(lambda: agent.log.read_text().count("following cron's log") == 2,
                 "the second start following")
        cron.end(slow, "sleep 100", status=3)
        wait_for(lambda: has_rows(agent, {name("sleep 100"): (1, 1, 3, 0)}), "the run's end")
        log = agent.log.read_text()
        assert "earlier boot" not in log and "outcome is unknown" not in log
    finally:
        agent.close()


FORGE = """
import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
for line in sys.argv[2:]:
    sock.send(line.encode())
"""


def test_lines_forged_by_a_user_are_not_cron_s(tmp_path: Path, journald: PrivateJournald
                                                ) -> None:
    """Any user can log "CRON" lines; only root's count (cron runs as root)."""
    nobody = pwd.getpwnam("nobody")
    cron = Cron(journald)
    agent = follow(tmp_path, journald).start()
    try:
        wait_for(lambda: following(agent), "the agent following cron's log")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(str(journald.syslog_socket))  # root opens; nobody sends
            forged = [syslog_datagram(f"(root) {kind} ([7] /bin/forged)", 7).decode()
                      for kind in ("CMD", "END")]
            forged.insert(1, syslog_datagram(
                "(CRON) error (grandchild #7 failed with exit status 1)", 7).decode())
            subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                            "--clear-groups", sys.executable, "-c", FORGE, str(sock.fileno()),
                            *forged], pass_fds=[sock.fileno()], check=True, timeout=60)
        entries = journald.wait_for("SYSLOG_IDENTIFIER=CRON", f"_UID={nobody.pw_uid}", count=3)
        assert len(entries) == 3  # they are in the journal, as CRON
        cron.run("/bin/true")  # a real line after them: once it is applied, so were they
        wait_for(lambda: name("/bin/true") in rows(agent), "root's real run")
        assert set(rows(agent)) == {name("/bin/true")}
    finally:
        agent.close()


def test_without_a_journal_the_agent_says_so_once_and_serves(tmp_path: Path) -> None:
    missing = tmp_path / "no-journal"
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ncron_log_journal = "{missing}"\n')
    agent = Agent(tmp_path / "agent", extra=["--config", str(config), *FAST]).start()
    try:
        assert agent.status() == {}
        wait_for(lambda: "started:" in agent.log.read_text(), "the agent's start line")
        lines = [line for line in agent.log.read_text().splitlines() if "cron's log" in line]
        assert len(lines) == 1 and f"cannot open {missing}" in lines[0], lines
    finally:
        agent.close()


def test_turned_off_it_is_not_followed(tmp_path: Path, journald: PrivateJournald) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ncron_log = "off"\ncron_log_journal = "{journald.journal_dir}"\n')
    agent = Agent(tmp_path / "agent", extra=["--config", str(config), *FAST]).start()
    try:
        Cron(journald).run("/bin/true")
        journald.wait_for("SYSLOG_IDENTIFIER=CRON", count=2)
        wait_for(lambda: "started:" in agent.log.read_text(), "the agent's start line")
        assert agent.status() == {}
        assert "cron's log is not followed (cron_log = \"off\")" in agent.log.read_text()
    finally:
        agent.close()


def test_lines_not_wrapped_are_expected_once_cron_is_seen_logging_starts(
        tmp_path: Path, journald: PrivateJournald) -> None:
    """A cron that logs nothing (-L 0) must not make every line that is not wrapped missed:
    discovery adds them only once cron has been seen logging a job start."""
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ncron_log_journal = "{journald.journal_dir}"\n'
                      "discovery_interval = 0.2\n")
    agent = Agent(tmp_path / "agent", extra=["--config", str(config), *FAST])
    (agent.crontabs / "etc").mkdir(parents=True)
    (agent.crontabs / "etc" / "crontab").write_text("0 3 * * * root /usr/local/bin/backup\n")
    agent.start()
    try:
        wait_for(lambda: following(agent), "the agent following cron's log")
        assert agent.status() == {}  # discovery ran at start: the line is not expected yet
        Cron(journald).send("(root) CMD (/bin/true)")  # cron's default -L 1: a start, no pid
        backup = f"root/{name('/usr/local/bin/backup')}"
        row = wait_for(lambda: agent.status().get(backup), "the crontab line discovered")
        assert (row["runs"], row["source"], row["next_expected"] is not None) == \
            (0, "cron_log", True)
        assert agent.status()[f"root/{name('/bin/true')}"]["last_start"] is not None
    finally:
        agent.close()


def test_crontabs_under_another_root_are_not_matched_with_the_system_journal(
        tmp_path: Path) -> None:
    """The system journal's cron reads /'s crontabs: an agent reading crontabs under another
    root (a container's, a test's) does not take that cron's lines for its own."""
    agent = Agent(tmp_path / "agent", extra=list(FAST)).start()
    try:
        wait_for(lambda: "started:" in agent.log.read_text(), "the agent's start line")
        lines = [line for line in agent.log.read_text().splitlines() if "cron's log" in line]
        assert len(lines) == 1 and f"crontabs are read under {agent.crontabs}" in lines[0]
    finally:
        agent.close()
