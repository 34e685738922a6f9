"""scripts/demo, run as the README says: it shows the job table over SNMP and the failure trap."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from agent_support import wait_for
from netsnmp import REPO, free_port, have_netsnmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
    pytest.mark.skipif(not (REPO / ".venv/bin/cronwrap-agent").exists(),
                       reason="no .venv: the demo would run scripts/setup (apt-get) first"),
]

DEMO_PORT = 1161


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    if not port_free(DEMO_PORT):  # someone else's agent: the demo takes another port
        env["CRONWRAP_DEMO_PORT"] = str(free_port())
    return subprocess.run(["bash", "scripts/demo", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_demo_shows_the_table_and_the_trap_and_stops_what_it_started(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # cronwrap status
    assert re.search(r"root\s+nightly-report\s+failed", out), out
    assert re.search(r"root\s+backup\s+ok", out), out
    # snmpwalk and snmptable with the MIB loaded
    assert 'CRON-JOBS-MIB::cronJobState."root"."nightly-report" = INTEGER: failed(2)' in out
    assert "SNMP table: CRON-JOBS-MIB::cronJobTable" in out
    assert re.search(r'"root"\."backup"\s+2\s+0\s+0\s+0\s+0\s+0\s+0 ', out), out
    assert re.search(r'"root"\."nightly-report"\s+1\s+1\s+0\s+0\s+0\s+3\s+0 ', out), out
    # the trap snmptrapd received from the agent
    assert "SNMPv2-MIB::snmpTrapOID.0 = OID: CRON-JOBS-MIB::cronJobFailed" in out
    assert "SNMPv2-MIB::sysUpTime.0 = Timeticks: " in out
    assert "SNMPv2-SMI::" not in out  # every varbind by its name
    assert "CRON-JOBS-MIB::cronNotifyJobName.0 = STRING: nightly-report" in out
    assert "cronNotifyMessage" not in out  # the job did not ask to send its last line
    assert 'CRON-JOBS-MIB::cronJobLastExitStatus."root"."nightly-report" = INTEGER: 3' in out
    # everything it started is stopped
    demo = tmp_path / "state" / "cronwrap-demo"
    assert not (demo / "agent.pid").exists() and not (demo / "snmptrapd.pid").exists()
    agent_pid = re.search(r"agent is up: .* cronwrap-agent\[(\d+)\]", out)
    assert agent_pid is not None, out
    assert not alive(int(agent_pid.group(1)))
    assert "INFO cronwrap.agent: stopping" in (demo / "agent.log").read_text()


def test_keep_running_leaves_the_agent_up_and_says_how_to_stop_it(tmp_path: Path) -> None:
    done = run_demo(tmp_path, "--keep-running")
    demo = tmp_path / "state" / "cronwrap-demo"
    pids = [int((demo / name).read_text()) for name in ("agent.pid", "snmptrapd.pid")]
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert all(alive(pid) for pid in pids)
        assert f"stop it: kill {pids[0]} {pids[1]}" in done.stdout
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not any(alive(pid) for pid in pids), "the demo's daemons to stop")
