"""cronwrap-agent's command line: help, usage and configuration errors, socket activation."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from agent_support import AGENT, Agent, request, wait_for
from cronwrap.wrapper.events import Started, new_event_id


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_help_teaches() -> None:
    result = run("--help")
    assert result.returncode == 0
    for word in ("--event-socket", "--state-dir", "--spool-dir", "--config", "--crontab-root",
                 "socket activation", "examples:"):
        assert word in result.stdout


def test_usage_mistake_is_one_line_64() -> None:
    result = run("--watch-interval", "-3")
    assert result.returncode == 64
    assert len(result.stderr.strip().splitlines()) == 1 and "must be positive" in result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("[agent]\nmax_jobs_per_owner = 'many'\n", "max_jobs_per_owner must be"),
    ("[agent]\nno_such_setting = 1\n", "unknown setting [agent] no_such_setting"),
    ("[agent\n", "agent.toml"),
    ("[smnp]\ncontact = 'ops'\n", "unknown table [smnp]"),
    ("[agent]\nstatus_group = 'a b'\n", "status_group must be a group name or gid"),
    ("[agent]\nstatus_group = 110\n", "status_group must be a group name or gid"),
])
def test_bad_config_is_one_line_78(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    agent = Agent(tmp_path)
    result = subprocess.run([*agent.args(), "--config", str(config)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 78
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_missing_config_file_is_78(tmp_path: Path) -> None:
    result = run("--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 78 and "cannot read" in result.stderr


def test_second_agent_on_the_same_socket_refuses(tmp_path: Path) -> None:
    first = Agent(tmp_path).start()
    try:
        second = subprocess.run(first.args(), capture_output=True, text=True, timeout=60,
                                check=False)
        assert second.returncode == 69 and "another agent is listening" in second.stderr
        assert first.socket.stat().st_mode & 0o777 == 0o666
        assert (first.spool.stat().st_mode & 0o7777) == 0o1733
    finally:
        first.close()


def test_sigint_is_a_clean_stop(tmp_path: Path) -> None:
    agent = Agent(tmp_path).start()
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGINT)
    assert agent.proc.wait(timeout=30) == 0
    agent.proc = None
    assert "Traceback" not in agent.log.read_text()


def activated_request(path: Path, wire: bytes) -> dict[str, Any] | None:
    """The answer to `wire` on systemd-socket-activate's socket; None while it is bound but
    not listening yet (a refused connection sends nothing)."""
    try:
        return request(path, wire)
    except ConnectionRefusedError:
        return None


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="needs systemd-socket-activate")
def test_systemd_socket_activation(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    listen = tmp_path / "activated.sock"
    with agent.log.open("ab") as log:
        proc = subprocess.Popen(["systemd-socket-activate", "-l", str(listen), *agent.args()],
                                stdout=log, stderr=log)
    try:
        wait_for(listen.exists, "the activation socket")
        event = Started(new_event_id(), "activated", time.time(), os.getpid())
        reply = wait_for(lambda: activated_request(listen, event.to_wire()),
                         "the activated agent's answer")
        assert reply == {"ok": True}
        assert not agent.socket.exists()  # the inherited socket was used, none was bound
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(listen))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_unusable_state_database_is_one_line_73(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    agent.state.mkdir(parents=True)
    (agent.state / "agent.db").write_bytes(b"this is not a database" * 100)
    result = subprocess.run(agent.args(), capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 73
    assert "cannot open the state database" in result.stderr and "Traceback" not in result.stderr


SECRET_CONFIG = """\
[[snmp.user]]
name = "monitor"
auth = "SHA-256"
auth_key = "a long enough auth passphrase"
priv = "AES-128"
priv_key = "a long enough priv passphrase"
"""


@pytest.mark.parametrize(("mode", "listen", "status", "said"), [
    (0o600, "udp:0.0.0.0:1161", 0, "configuration OK"),
    (0o644, "udp:0.0.0.0:1161", 78, "chmod 600"),
    (0o600, "udp:bogus", 78, "udp:bogus"),
])
def test_check_config_validates_without_starting(tmp_path: Path, mode: int, listen: str,
                                                 status: int, said: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(SECRET_CONFIG)
    config.chmod(mode)
    agent = Agent(tmp_path)
    result = subprocess.run([*agent.args(), "--config", str(config), "--listen", listen,
                             "--check-config"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == status
    assert said in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not agent.socket.exists() and not agent.state.exists()  # nothing bound or written


@pytest.mark.parametrize(("group", "said"), [
    ("", "status group:  (none: each user reads only their own jobs' status"),
    ("root", "status group:  root (gid 0) reads every job's status"),
    ("no-such-group-cw", "status group:  no-such-group-cw: no such group on this host"),
])
def test_check_config_says_what_the_status_group_resolves_to(tmp_path: Path, group: str,
                                                              said: str) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nstatus_group = "{group}"\n')
    result = subprocess.run([*Agent(tmp_path).args(), "--config", str(config), "--check-config"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and said in result.stdout, result.stdout + result.stderr
