"""Helpers for the agent tests: a real agent process, socket clients, a wrapper-like spooler."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cronwrap.wrapper.events import Event, StatusRequest

AGENT = [sys.executable, "-m", "cronwrap.agent.main"]
CLIENT = Path(__file__).with_name("agent_client.py")


@dataclass
class Agent:
    """One cronwrap-agent process on a private socket, state dir, spool and crontab root."""

    base: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None  # the agent's environment (None: this process's)

    @property
    def socket(self) -> Path:
        return self.base / "run" / "agent.sock"

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def crontabs(self) -> Path:
        return self.base / "root"

    @property
    def log(self) -> Path:
        return self.base / "agent.log"

    def args(self) -> list[str]:
        return [*AGENT, "--event-socket", str(self.socket), "--state-dir", str(self.state),
                "--spool-dir", str(self.spool), "--crontab-root", str(self.crontabs), *self.extra]

    def start(self) -> Agent:
        self.crontabs.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=log, env=self.env)
        wait_for(self.ready, f"agent listening on {self.socket}", proc=self.proc, log=self.log)
        return self

    def ready(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(self.socket))
            return True
        except OSError:
            return False

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.kill()

    def status(self, *names: str) -> dict[str, dict[str, Any]]:
        reply = request(self.socket, StatusRequest(jobs=names).to_wire())
        assert reply["ok"], reply
        return {f"{job['owner']}/{job['name']}": job for job in reply["jobs"]}


def wait_for(predicate: Any, what: str, timeout: float = 30.0,
             proc: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            text = log.read_text() if log else ""
            raise AssertionError(f"agent exited {proc.returncode} before {what}:\n{text}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def request(path: Path, data: bytes, timeout: float = 30.0) -> dict[str, Any]:
    """Send one line, return the decoded reply line."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(data)
        line = sock.makefile("rb").readline()
    return json.loads(line)


def spool(root: Path, uid: int, event: Event) -> Path:
    """Spool an event exactly as the wrapper does: ROOT/<uid>/<event-id>.json, one wire line."""
    directory = root / str(uid)
    directory.mkdir(mode=0o700, exist_ok=True)
    tmp = directory / f".{event.id}.tmp"
    with tmp.open("wb") as fh:
        fh.write(event.to_wire())
        fh.flush()
        os.fsync(fh.fileno())
    final = directory / f"{event.id}.json"
    tmp.rename(final)
    return final


def send_or_spool(path: Path, root: Path, event: Event) -> str:
    """What a wrapper does with an event: deliver it, or spool it when there is no ack."""
    try:
        reply = request(path, event.to_wire(), timeout=10)
    except (OSError, ValueError):
        reply = {"ok": False}
    if reply.get("ok"):
        return "acked"
    spool(root, os.getuid(), event)
    return "spooled"


def run_client(*args: str, user: str | None = None, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
    """Run tests/agent_client.py, as `user` through setpriv when given."""
    command = [sys.executable, str(CLIENT), *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def cronwrap_command() -> str | None:
    """The real wrapper, once it is installed beside the agent (wrapper-driven tests use it)."""
    if importlib.util.find_spec("cronwrap.wrapper.cli") is None:
        return None  # the console script is declared before the wrapper is merged
    return shutil.which("cronwrap", path=str(Path(sys.executable).parent)) or shutil.which(
        "cronwrap")


def run_cronwrap(agent: Agent, *args: str, user: str | None = None
                 ) -> subprocess.CompletedProcess[str]:
    command = cronwrap_command()
    assert command is not None, "cronwrap is not installed"
    env = {**os.environ, "CRONWRAP_SOCKET": str(agent.socket),
           "CRONWRAP_SPOOL_DIR": str(agent.spool)}
    full = [command, *args]
    if user is not None:
        full = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *full]
    return subprocess.run(full, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    """A running agent with default options on the test's private paths, stopped afterwards."""
    running = Agent(tmp_path).start()
    yield running
    running.close()
