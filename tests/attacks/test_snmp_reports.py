"""Attack: anyone on the network sends the standalone agent unauthenticated SNMPv3 Reports.

pysnmp cached the engine id of every address a Report came from, about 1 KB each for 5 minutes:
Reports from many source ports grew the agent by the megabyte with no community or user.
Promise: memory per request is bounded; the agent keeps answering.  Only the notification
targets' engine ids are kept (standalone.ForgetfulV3MessageProcessing).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from agent_support import Agent
from netsnmp import have_netsnmp, snmp
from pyasn1.codec.ber import encoder
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from .support import peak_rss_kib, rss_kib

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                       reason="needs root and setpriv to attack as another user"),
]

REPORTS = 40000
# each from a new socket: a new source port, on four loopback addresses
SENDER = """
import socket, sys, time
port, count, datagram = int(sys.argv[1]), int(sys.argv[2]), bytes.fromhex(sys.argv[3])
for index in range(count):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((f"127.0.0.{2 + index % 4}", 0))
        sock.sendto(datagram, ("127.0.0.1", port))
    if index % 100 == 99:
        time.sleep(0.02)  # let the agent read them: a full receive buffer drops the rest
"""


def unauthenticated_report() -> bytes:
    """An SNMPv3 Report, noAuthNoPriv, from an engine the agent never heard of."""
    engine_id = b"\x80\x00\x1f\x88\x04attacker"
    pdu = rfc1905.ReportPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0), rfc1902.Counter32(1))])
    usm = UsmSecurityParameters()
    for field, value in (("msgAuthoritativeEngineId", engine_id),
                         ("msgAuthoritativeEngineBoots", 1), ("msgAuthoritativeEngineTime", 1),
                         ("msgUserName", b""), ("msgAuthenticationParameters", b""),
                         ("msgPrivacyParameters", b"")):
        usm[field] = value
    message = SNMPv3Message()
    message["msgVersion"] = 3
    header = message["msgGlobalData"]
    header["msgID"], header["msgMaxSize"], header["msgFlags"] = 1, 65507, b"\x00"
    header["msgSecurityModel"] = 3
    message["msgSecurityParameters"] = encoder.encode(usm)
    scoped = message["msgData"]["plaintext"]
    scoped["contextEngineId"], scoped["contextName"] = engine_id, b""
    scoped["data"].setComponentByType(pdu.tagSet, pdu)
    return encoder.encode(message)


def test_reports_from_many_source_ports_do_not_grow_the_agent(
        standalone: tuple[Agent, int]) -> None:
    agent, port = standalone
    before = rss_kib(agent)
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                    "/usr/bin/python3", "-c", SENDER, str(port), str(REPORTS),
                    unauthenticated_report().hex()], check=True, timeout=300)
    answer = snmp("snmpget", "-v2c", "-c", "public", "-On", "-t", "2", "-r", "5",
                  f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0")
    assert "Timeticks" in answer.stdout  # answered after the Reports queued before it
    grown = peak_rss_kib(agent) - before
    # cached, the engine ids grew the agent 26 MiB here; dropped, 9 MiB
    assert grown < 16 * 1024, f"the agent grew {grown // 1024} MiB"
    assert "Traceback" not in agent.log.read_text()
