"""Moving CRON-JOBS-MIB's OID root is an edit of the MIB alone: the agent takes ROOT from it.

The end-to-end test copies the package, moves the copy's MIB from Net-SNMP's playpen to a
private enterprise number the way docs/mib.md tells a deployer to, and checks that the copied
agent, run as a real process, serves the new root (and nothing at the old one) to snmpget and to
snmpwalk with the moved MIB loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from agent_support import wait_for
from cronwrap.agent import mib
from e2e_support import agent_config
from netsnmp import free_port, have_netsnmp, snmp

REPO = Path(__file__).resolve().parent.parent
PLAYPEN_ASSIGNMENT = "    ::= { netSnmpPlaypen 71 }\n"
PEN_ROOT = (1, 3, 6, 1, 4, 1, 99999)


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def moved_to_a_pen(text: str) -> str:
    """The MIB as docs/mib.md says to move it: import enterprises, assign { enterprises N }."""
    assert text.count(PLAYPEN_ASSIGNMENT) == 1
    assert text.count("    netSnmpPlaypen\n        FROM NET-SNMP-MIB;") == 1
    text = text.replace("    netSnmpPlaypen\n        FROM NET-SNMP-MIB;", "")
    text = text.replace("Counter32, Gauge32, Integer32, Unsigned32\n        FROM SNMPv2-SMI",
                        "Counter32, Gauge32, Integer32, Unsigned32, enterprises\n"
                        "        FROM SNMPv2-SMI")
    text = text.replace("        FROM SNMPv2-CONF\n", "        FROM SNMPv2-CONF;\n")
    return text.replace(PLAYPEN_ASSIGNMENT, "    ::= { enterprises 99999 }\n")


def test_root_is_the_mibs_module_identity() -> None:
    assert mib.root_of(mib.MIB_FILE.read_text()) == mib.ROOT == mib.KNOWN_ARCS[
        "netSnmpPlaypen"] + (71,)
    moved = mib.MIB_FILE.read_text().replace(PLAYPEN_ASSIGNMENT, "    ::= { netSnmpPlaypen 72 }\n")
    assert mib.root_of(moved) == mib.KNOWN_ARCS["netSnmpPlaypen"] + (72,)
    assert mib.root_of(moved_to_a_pen(mib.MIB_FILE.read_text())) == PEN_ROOT


@pytest.mark.parametrize("assignment, message", [
    ("    ::= { someoneElsesArc 71 }\n", "hangs under 'someoneElsesArc'; known arcs: iso,"),
    ("    ::= { 1 3 6 1 4 1 99999 1 }\n", "no MODULE-IDENTITY"),
    ("", "no MODULE-IDENTITY"),
])
def test_an_unusable_assignment_is_named(assignment: str, message: str) -> None:
    text = mib.MIB_FILE.read_text().replace(PLAYPEN_ASSIGNMENT, assignment)
    with pytest.raises(ValueError, match=message):
        mib.root_of(text)


def relocated_package(where: Path) -> Path:
    """A copy of the cronwrap package whose MIB hangs under PEN_ROOT; returns its sys.path dir."""
    package = where / "cronwrap"
    for part in ("agent", "wrapper", "mibs"):
        shutil.copytree(REPO / part, package / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    mib_file = package / "mibs" / "CRON-JOBS-MIB.txt"
    mib_file.write_text(moved_to_a_pen(mib_file.read_text()))
    return where


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_an_agent_whose_mib_moved_serves_the_new_root(tmp_path: Path) -> None:
    path = relocated_package(tmp_path / "pkg")
    moved_mibs = path / "cronwrap" / "mibs"
    if shutil.which("smilint"):
        lint = subprocess.run(["smilint", "-l", "6", str(moved_mibs / "CRON-JOBS-MIB.txt")],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "SMIPATH": f"{moved_mibs}:/usr/share/snmp/mibs"})
        assert lint.stdout + lint.stderr == ""
    base = tmp_path / "agent"
    base.mkdir()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(path)}
    which = subprocess.run([sys.executable, "-c", "import cronwrap.agent.mib as m; "
                            "print(m.__file__, m.ROOT)"], env=env, capture_output=True,
                           text=True, timeout=60, check=True, cwd=tmp_path).stdout
    assert which.startswith(str(path)) and str(PEN_ROOT) in which
    argv = [sys.executable, "-m", "cronwrap.agent.main", "--config",
            str(agent_config(base, "")), "--listen", f"udp:127.0.0.1:{port}",
            "--event-socket", str(base / "agent.sock"), "--state-dir", str(base / "state"),
            "--spool-dir", str(base / "spool"), "--crontab-root", str(base / "crontabs")]
    (base / "crontabs").mkdir()
    with (base / "agent.log").open("wb") as log:
        agent = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        address = f"127.0.0.1:{port}"
        count = dotted(PEN_ROOT + (1, 1, 0))

        def answered() -> bool:
            probe = snmp("snmpget", "-v2c", "-c", "public", "-t", "1", "-r", "0", "-Ov",
                         address, count, check=False)
            return probe.stdout.startswith("Gauge32:")

        wait_for(answered, "the moved agent answering", proc=agent, log=base / "agent.log")
        old = snmp("snmpget", "-v2c", "-c", "public", address, dotted(mib.ROOT + (1, 1, 0)))
        assert "No Such Object" in old.stdout
        walked = subprocess.run(
            ["snmpwalk", "-v2c", "-c", "public", "-M", f"+{moved_mibs}", "-m", "CRON-JOBS-MIB",
             address, "CRON-JOBS-MIB::cronJobsMIB"], capture_output=True, text=True,
            timeout=60, check=True).stdout
        assert "CRON-JOBS-MIB::cronJobCount.0 = Gauge32: 0" in walked
        assert "CRON-JOBS-MIB::cronAgentStartTime.0 = STRING:" in walked
        numeric = snmp("snmpwalk", "-v2c", "-c", "public", "-On", address,
                       dotted(PEN_ROOT)).stdout
        assert numeric.startswith(f".{dotted(PEN_ROOT)}.1.1.0 = Gauge32: 0"), numeric
    finally:
        agent.terminate()
        agent.wait(timeout=30)
