"""A user's process named cron is not the cron daemon.

Where systemd does not run, the agent watches Debian cron's pid file (/run/crond.pid, which
cron leaves behind when it dies): the pid in it, alive and named `cron`, was taken for a running
daemon. Any user can run a program named `cron` (a copy of sleep) and, by cycling through pids,
get the one a dead cron left in its file: the agent then saw cron running and never raised
cronDaemonNotRunning for the outage. The daemon is root's: a process of another user is not it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from agent_support import Agent, wait_for
from netsnmp import free_port, snmp

from .support import FAST_AGENT, User, owned_dir, start_as, stop

DAEMON_STATE_OID = "1.3.6.1.4.1.8072.9999.9999.71.1.50.0"  # cronDaemonState.0
RUNNING, STOPPED = 1, 2


def named_cron(directory: Path) -> Path:
    """A copy of sleep named cron in `directory` (its process's comm is `cron`)."""
    program = directory / "cron"
    shutil.copy("/bin/sleep", program)
    program.chmod(0o755)
    return program


def test_a_users_process_named_cron_is_not_a_running_daemon(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker = attackers[0]
    port = free_port()
    pid_file = shared_base / "crond.pid"
    config = shared_base / "agent.toml"
    config.write_text(f'[agent]\ncron_daemon = "{pid_file}"\ncron_daemon_interval = 0.2\n')
    fake = start_as(attacker, str(named_cron(owned_dir(shared_base / "mine", attacker, 0o755))),
                    "600")
    real = None
    agent = Agent(shared_base / "agent", [*FAST_AGENT, "--config", str(config),
                                          "--listen", f"udp:127.0.0.1:{port}"])
    try:
        wait_for(lambda: Path(f"/proc/{fake.pid}/comm").read_text().strip() == "cron",
                 "the user's cron")
        pid_file.write_text(f"{fake.pid}\n")  # the dead cron's pid, now the user's
        agent.start()

        def daemon_state() -> int:
            out = snmp("snmpget", "-v2c", "-c", "public", "-Oqv", f"udp:127.0.0.1:{port}",
                       DAEMON_STATE_OID, check=False).stdout.strip()
            return int(out) if out.isdigit() else 0

        seen = wait_for(lambda: daemon_state() in (RUNNING, STOPPED) and daemon_state(),
                        "the agent's first look", proc=agent.proc, log=agent.log)
        assert seen == STOPPED, "a user's process named cron was taken for the daemon"

        real = subprocess.Popen([str(named_cron(shared_base)), "600"])  # root's
        pid_file.write_text(f"{real.pid}\n")
        wait_for(lambda: daemon_state() == RUNNING, "root's cron seen running",
                 proc=agent.proc, log=agent.log)
    finally:
        agent.close()
        stop(fake)
        if real is not None:
            real.kill()
            real.wait()
    assert "Traceback" not in agent.log.read_text()
