"""Cross-user behaviour with a real agent: owners come from the kernel, spools are checked."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Agent, request, run_client, spool, wait_for
from cronwrap.wrapper.events import Finished, Started, new_event_id

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                       reason="needs root and setpriv"),
]

NOBODY = pwd.getpwnam("nobody").pw_uid


def as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           *command], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def agent() -> Iterator[Agent]:
    base = Path(tempfile.mkdtemp(prefix="cronwrap-sec-"))  # reachable by nobody, unlike tmp_path
    base.chmod(0o755)
    running = Agent(base, extra=["--spool-interval", "0.2"]).start()
    yield running
    running.close()
    shutil.rmtree(base)


def root_backup(agent: Agent) -> None:
    start = time.time()
    request(agent.socket, Started(new_event_id(), "backup", start, 1).to_wire())
    request(agent.socket, Finished(new_event_id(), "backup", start, 1, start_time=start,
                                   exit_status=0, duration_ms=3).to_wire())


def test_nobody_reporting_backup_gets_its_own_row(agent: Agent) -> None:
    root_backup(agent)
    before = agent.status()["root/backup"]
    result = run_client(str(agent.socket), str(agent.spool), "backup", "5", "1", user="nobody")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"acked": 10, "spooled": 0, "uid": NOBODY}
    jobs = agent.status()
    assert jobs["root/backup"] == before
    assert jobs["nobody/backup"]["owner_uid"] == NOBODY
    assert (jobs["nobody/backup"]["runs"], jobs["nobody/backup"]["failures"]) == (5, 5)


def test_nobody_sees_only_its_own_jobs(agent: Agent) -> None:
    root_backup(agent)
    run_client(str(agent.socket), str(agent.spool), "mine", "1", user="nobody")
    result = as_nobody(sys.executable, "-m", "cronwrap.wrapper.status", "--json",
                       "--socket", str(agent.socket))
    assert result.returncode == 0, result.stderr
    assert [(j["owner"], j["name"]) for j in json.loads(result.stdout)] == [("nobody", "mine")]
    named = as_nobody(sys.executable, "-m", "cronwrap.wrapper.status", "--json",
                      "--socket", str(agent.socket), "backup")
    assert json.loads(named.stdout) == [] and named.returncode == 1


def test_spool_file_planted_in_roots_dir_is_refused(agent: Agent) -> None:
    root_backup(agent)
    before = agent.status()["root/backup"]
    root_dir = agent.spool / "0"
    root_dir.mkdir(mode=0o700)
    event = Finished(new_event_id(), "backup", time.time(), 1, start_time=time.time(),
                     exit_status=1, duration_ms=1)
    planted = root_dir / f"{event.id}.json"
    planted.write_bytes(event.to_wire())
    os.chown(planted, NOBODY, -1)
    wait_for(lambda: not planted.exists(), "the planted file to be refused")
    assert agent.status()["root/backup"] == before
    assert "owned by uid" in agent.log.read_text()


def test_nobody_cannot_pose_as_root_with_its_own_spool_dir(agent: Agent) -> None:
    root_backup(agent)
    before = agent.status()["root/backup"]
    event = Finished(new_event_id(), "backup", time.time(), 1, start_time=time.time(),
                     exit_status=1, duration_ms=1)
    line = event.to_wire().decode()
    script = ("import os, sys; root = sys.argv[1]; os.mkdir(root + '/0', 0o700); "
              "open(root + '/0/' + sys.argv[2] + '.json', 'w').write(sys.argv[3])")
    result = as_nobody(sys.executable, "-c", script, str(agent.spool), event.id, line)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: "named '0' but owned by uid" in agent.log.read_text(), "dir refused")
    assert agent.status()["root/backup"] == before


def test_symlinked_spool_file_is_not_followed(agent: Agent) -> None:
    secret = agent.base / "secret.json"
    secret.write_bytes(Started(new_event_id(), "stolen", time.time(), 1).to_wire())
    secret.chmod(0o644)
    script = (f"import os, sys; d = sys.argv[1] + '/{NOBODY}'; os.mkdir(d, 0o700); "
              "os.symlink(sys.argv[2], d + '/aaaa.json')")
    assert as_nobody(sys.executable, "-c", script, str(agent.spool), str(secret)).returncode == 0
    link = agent.spool / str(NOBODY) / "aaaa.json"
    wait_for(lambda: not link.is_symlink(), "the symlink to be refused")
    assert secret.exists()
    assert "nobody/stolen" not in agent.status()


def test_nobody_spools_while_agent_is_down(agent: Agent) -> None:
    agent.stop()
    result = run_client(str(agent.socket), str(agent.spool), "offline", "3", user="nobody")
    assert json.loads(result.stdout)["spooled"] == 6
    owner_dir = agent.spool / str(NOBODY)
    assert owner_dir.stat().st_uid == NOBODY
    agent.start()
    wait_for(lambda: not list(owner_dir.glob("*.json")), "nobody's spool drained")
    assert agent.status()["nobody/offline"]["runs"] == 3
    spool(agent.spool, 0, Started(new_event_id(), "roots", time.time(), 1))
    wait_for(lambda: "root/roots" in agent.status(), "root's own spool applied")
