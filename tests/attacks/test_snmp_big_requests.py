"""Attack: anyone with the read community asks the standalone agent for thousands of varbinds.

The agent answered every one and then could not send the response (larger than a datagram):
the requester got nothing, not tooBig, after the agent had spent the work of every answer.
Promise: the work per request is bounded by what the response can carry; a GETNEXT whose
answers do not fit gets tooBig, a GETBULK the answers that fit (RFC 3416 4.2.2, 4.2.3).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from agent_support import Agent
from netsnmp import have_netsnmp, snmp
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v2c

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                       reason="needs root and setpriv to attack as another user"),
]

VARBINDS = 6000  # each answered by sysDescr.0 (~80 bytes): ~480 KB, far beyond a datagram
ASKER = """
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.settimeout(20)
    sock.sendto(bytes.fromhex(sys.argv[2]), ("127.0.0.1", int(sys.argv[1])))
    try:
        print(sock.recv(70000).hex())
    except TimeoutError:
        print("no answer")
"""


def request(pdu: object) -> bytes:
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "public")
    v2c.apiMessage.set_pdu(message, pdu)
    return encoder.encode(message)


def many(pdu: object, non_repeaters: int | None = None) -> bytes:
    v2c.apiPDU.set_defaults(pdu)
    if non_repeaters is not None:
        v2c.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
        v2c.apiBulkPDU.set_max_repetitions(pdu, 10)
    v2c.apiPDU.set_varbinds(pdu, [((1, 3, 6, 1), v2c.Null(""))] * VARBINDS)
    return request(pdu)


def ask_as_nobody(port: int, datagram: bytes) -> object:
    """The response PDU the agent sent `nobody` for `datagram` (fails when none came)."""
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "/usr/bin/python3", "-c", ASKER, str(port), datagram.hex()],
                          check=True, timeout=60, capture_output=True, text=True)
    assert proc.stdout.strip() != "no answer"
    message, _ = decoder.decode(bytes.fromhex(proc.stdout), asn1Spec=v2c.Message())
    return v2c.apiMessage.get_pdu(message)


def test_a_getnext_whose_answers_cannot_fit_gets_too_big(standalone: tuple[Agent, int]) -> None:
    agent, port = standalone
    pdu = ask_as_nobody(port, many(v2c.GetNextRequestPDU()))
    assert int(v2c.apiPDU.get_error_status(pdu)) == 1  # tooBig
    assert v2c.apiPDU.get_varbinds(pdu) == []
    assert "Timeticks" in snmp("snmpget", "-v2c", "-c", "public", "-t", "2", "-r", "5",
                               f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0").stdout
    assert "Traceback" not in agent.log.read_text()


def test_a_getbulk_whose_answers_cannot_fit_gets_those_that_fit(
        standalone: tuple[Agent, int]) -> None:
    _, port = standalone
    pdu = ask_as_nobody(port, many(v2c.GetBulkRequestPDU(), non_repeaters=VARBINDS))
    assert int(v2c.apiPDU.get_error_status(pdu)) == 0
    varbinds = v2c.apiPDU.get_varbinds(pdu)
    assert 100 < len(varbinds) < VARBINDS
    assert {tuple(name) for name, _ in varbinds} == {(1, 3, 6, 1, 2, 1, 1, 1, 0)}  # sysDescr.0
