"""cronwrap-agent under the real sd_notify protocol: READY, STATUS, WATCHDOG and STOPPING.

The test binds the NOTIFY_SOCKET itself, as systemd would, and starts the real agent with
its standalone SNMP front end on a loopback port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from agent_support import Agent, wait_for
from netsnmp import free_port


def receive_until(sock: socket.socket, wanted: str, limit: float = 30.0) -> list[str]:
    """Every notify message until one contains `wanted` (or the limit passes)."""
    messages: list[str] = []
    deadline = time.monotonic() + limit
    while not any(wanted in m for m in messages):
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} from the agent; got {messages}"
        sock.settimeout(left)
        messages.append(sock.recv(4096).decode())
    return messages


def test_agent_tells_systemd_it_is_ready_alive_and_stopping(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    port = free_port()
    agent = Agent(tmp_path, ["--listen", f"udp:127.0.0.1:{port}"])
    # WATCHDOG_USEC without WATCHDOG_PID: the watchdog is meant for whoever reads it.
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        agent.crontabs.mkdir(parents=True, exist_ok=True)
        with agent.log.open("ab") as log:
            proc = subprocess.Popen(agent.args(), stdout=log, stderr=log, env=env)
        try:
            messages = receive_until(notify, "READY=1")
            # The first STATUS= may come before READY=1 (the AgentX session's state changes
            # while the standalone front end binds) or after it: either way it names the port.
            if not any(m.startswith("STATUS=") for m in messages):
                messages += receive_until(notify, "STATUS=")
            assert any(f"SNMP udp:127.0.0.1:{port}" in m for m in messages if "STATUS=" in m)
            assert sum("WATCHDOG=1" in m for m in receive_until(notify, "WATCHDOG=1")) >= 1
            wait_for(agent.ready, "the event socket")
            proc.send_signal(signal.SIGTERM)
            receive_until(notify, "STOPPING=1")
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in agent.log.read_text()
