"""What SNMP the agent serves by default: [snmp] agentx/listen, the shipped agent.toml, and an
agent that waits for a missing snmpd quietly and says so in its systemd status line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from cronwrap.agent.config import Config
from cronwrap.agent.snmp_config import SnmpConfigError, parse_snmp_config
from netsnmp import REPO, SnmpdMaster, free_port, have_netsnmp, snmp

SHIPPED = REPO / "packaging" / "agent.toml"
ROOT = "1.3.6.1.4.1.8072.9999.9999.71"


def check_config(agent: Agent, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*agent.args(), *args, "--check-config"], capture_output=True,
                          text=True, timeout=60, check=False)


def test_agentx_and_listen_keys_are_read() -> None:
    config = parse_snmp_config({"agentx": "tcp:127.0.0.1:705",
                                "listen": ["udp:127.0.0.1:1161", "udp6:[::1]:1161"]})
    assert config.agentx == "tcp:127.0.0.1:705"
    assert [str(address) for address in config.listen] == ["udp:127.0.0.1:1161",
                                                           "udp6:[::1]:1161"]
    assert not config.has_secrets
    assert parse_snmp_config({}).agentx == "" and parse_snmp_config({}).listen == ()


@pytest.mark.parametrize(("table", "message"), [
    ({"agentx": "/var/agentx/master"}, "[snmp] agentx: bad AgentX address"),
    ({"agentx": 705}, "'agentx' must be a string"),
    ({"listen": "udp:127.0.0.1:1161"}, "'listen' must be a list"),
    ({"listen": ["udp:127.0.0.1"]}, "[snmp] listen: bad listen address"),
    ({"agentX": "unix:/x"}, "unknown key 'agentX'"),
])
def test_bad_agentx_or_listen_is_one_clear_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(SnmpConfigError) as caught:
        parse_snmp_config(table)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_shipped_agent_toml_serves_agentx_and_passes_check_config(tmp_path: Path) -> None:
    result = check_config(Agent(tmp_path), "--config", str(SHIPPED))
    assert result.returncode == 0, result.stderr
    assert "AgentX master: unix:/var/agentx/master" in result.stdout
    assert "SNMP listen" not in result.stdout and "configuration OK" in result.stdout


def test_shipped_agent_toml_comments_show_the_real_defaults() -> None:
    """Uncommenting every `# key = value` line of [agent] gives exactly the built-in defaults."""
    agent_part = SHIPPED.read_text().split("\n[agent]\n", 1)[1]
    uncommented = re.sub(r"^# ([a-z_]+ = )", r"\1", agent_part, flags=re.M)
    values = tomllib.loads(uncommented)
    defaults = Config()
    assert values, "no commented defaults found in [agent]"
    assert {key: getattr(defaults, key) for key in values} == values
    unshown = {key for key in vars(defaults) if key != "sections"} - set(values)
    assert not unshown, (f"packaging/agent.toml does not show [agent] {sorted(unshown)}: add a "
                         "commented `# key = default` line with a comment saying what it does")


def test_command_line_wins_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[snmp]\nagentx = "unix:/from/config"\nlisten = ["udp:127.0.0.1:1161"]\n')
    agent = Agent(tmp_path)
    from_file = check_config(agent, "--config", str(config))
    assert "AgentX master: unix:/from/config" in from_file.stdout
    assert "SNMP listen:   udp:127.0.0.1:1161" in from_file.stdout
    overridden = check_config(agent, "--config", str(config), "--agentx", "unix:/from/cli",
                              "--listen", "udp:127.0.0.1:2161")
    assert "AgentX master: unix:/from/cli" in overridden.stdout
    assert "SNMP listen:   udp:127.0.0.1:2161" in overridden.stdout
    nothing = check_config(agent, "--config", str(tmp_path / "absent-but-unused.toml"))
    assert nothing.returncode == 78  # an explicit --config must exist


def test_without_snmp_settings_check_config_says_nothing_is_served(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[agent]\n")
    result = check_config(Agent(tmp_path), "--config", str(config))
    assert result.returncode == 0
    assert "SNMP:          none" in result.stdout


class NotifyReceiver:
    """The datagram socket systemd would give the agent as NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.statuses: list[str] = []

    def wait_status(self, wanted: str, limit: float = 30.0) -> str:
        """The first STATUS= (from now on) that contains `wanted`."""
        deadline = time.monotonic() + limit
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no STATUS with {wanted!r}; got {self.statuses}"
            self.sock.settimeout(left)
            for line in self.sock.recv(4096).decode().splitlines():
                if line.startswith("STATUS="):
                    self.statuses.append(line)
                    if wanted in line:
                        return line


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_agent_waits_for_snmpd_quietly_says_so_and_serves_once_it_comes(tmp_path: Path) -> None:
    master = SnmpdMaster(tmp_path / "snmpd")
    master.dir.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "agent.toml"
    config.write_text(f'[snmp]\nagentx = "unix:{master.agentx_socket}"\n')
    agent = Agent(tmp_path, ["--config", str(config), "--log-level", "debug",
                             "--watch-interval", "0.5"])
    notify = NotifyReceiver(tmp_path / "notify.sock")
    agent.crontabs.mkdir(parents=True)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    with agent.log.open("ab") as log:
        proc = subprocess.Popen(agent.args(), stdout=log, stderr=log, env=env)
    try:
        waiting = notify.wait_status("waiting for snmpd")
        assert waiting == (f"STATUS=0 jobs; AgentX unix:{master.agentx_socket}: "
                           "waiting for snmpd (No such file or directory)")
        # several failed attempts (debug lines), one warning
        wait_for(lambda: agent.log.read_text().count("still no master") >= 3,
                 "three more connection attempts", proc=proc, log=agent.log)
        assert agent.log.read_text().count("retrying every few seconds") == 1

        with master:
            notify.wait_status("registered with snmpd")
            walked = snmp("snmpwalk", "-On", "-v2c", "-c", "public", master.address, ROOT)
            assert f".{ROOT}.1.1.0 = " in walked.stdout  # cronJobCount.0, served through snmpd
        lost = notify.wait_status("waiting for snmpd")
        assert lost.startswith(f"STATUS=0 jobs; AgentX unix:{master.agentx_socket}: waiting")
        wait_for(lambda: agent.log.read_text().count("retrying every few seconds") == 2,
                 "one warning for the lost snmpd", proc=proc, log=agent.log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.sock.close()
    text = agent.log.read_text()
    assert "Traceback" not in text
    assert text.count("retrying every few seconds") == 2
    assert text.count("(is snmpd running, with `master agentx`?)") == 1  # not after a session


def test_standalone_listen_from_the_config_file_is_served(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(f'[snmp]\nlisten = ["udp:127.0.0.1:{port}"]\n')
    agent = Agent(tmp_path, ["--config", str(config)]).start()
    try:
        wait_for(lambda: f"udp:127.0.0.1:{port}" in agent.log.read_text()
                 and "SNMP agent listening" in agent.log.read_text(),
                 "the standalone agent listening", proc=agent.proc, log=agent.log)
    finally:
        assert agent.stop() == 0
