"""Attack: a local user floods the standalone agent's UDP port with datagrams pysnmp chokes on.

Promise: the agent drops each one, counts it, logs at most a line per interval, and keeps
answering everyone else's requests.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from agent_support import Agent
from netsnmp import have_netsnmp, snmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                       reason="needs root and setpriv to attack as another user"),
]

FLOOD = 2000
# 0xa0 (a context-specific constructed tag where a SEQUENCE belongs) made pysnmp raise out of
# its receive callback: one 28-line traceback per datagram.  The others are plain junk.
HOSTILE = [b"\xa0\x03\x02\x01\x00", b"\x30\x03\x02\x01\x00", b"\xff" * 10, b"\x30\x80",
           b"\x30\x84\xff\xff\xff\xff"]
SENDER = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
datagrams = [bytes.fromhex(arg) for arg in sys.argv[3:]]
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    for index in range(count):
        sock.sendto(datagrams[index % len(datagrams)], ("127.0.0.1", port))
"""


def test_a_flood_of_undecodable_datagrams_is_dropped_counted_and_logged_once(
        standalone: tuple[Agent, int]) -> None:
    agent, port = standalone
    before = agent.log.read_text().count("\n")
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "/usr/bin/python3", "-c", SENDER, str(port), str(FLOOD),
                    *(datagram.hex() for datagram in HOSTILE)], check=True, timeout=60)
    answer = snmp("snmpget", "-v2c", "-c", "public", "-On", "-t", "2", "-r", "5",
                  f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0")
    assert "Timeticks" in answer.stdout  # still answering, after every datagram was read
    log = agent.log.read_text()
    new_lines = log.splitlines()[before:]
    assert "Traceback" not in log
    dropped = [line for line in new_lines if "dropped an SNMP datagram" in line]
    assert len(dropped) == 1, new_lines[:20]
    assert "from 127.0.0.1:" in dropped[0] and "TypeError" in dropped[0]
    assert len(new_lines) <= 3, new_lines[:20]
    assert agent.proc is not None and agent.proc.poll() is None
