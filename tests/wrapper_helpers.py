"""Shared helpers for the wrapper tests: run the real `cronwrap` with private directories."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cronwrap.wrapper.events import Event, decode_message

CRONWRAP = [sys.executable, "-m", "cronwrap.wrapper.cli"]


@dataclass
class Dirs:
    """The private log, lock and spool directories and agent socket path one test uses."""

    root: Path

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def lock(self) -> Path:
        return self.root / "lock"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def socket(self) -> Path:
        return self.root / "agent.sock"

    def options(self) -> list[str]:
        return [
            "--log-dir", str(self.log), "--lock-dir", str(self.lock),
            "--spool-dir", str(self.spool), "--socket", str(self.socket),
            "--config", str(self.config),
        ]

    @property
    def config(self) -> Path:
        path = self.root / "cronwrap.toml"
        if not path.exists():
            path.write_text("# empty: the tests pass everything as flags\n")
        return path

    def job_logs(self, job: str) -> list[Path]:
        user_dir = self.log / "root" / job
        return sorted(user_dir.glob("*.log")) if user_dir.exists() else []

    def spooled(self) -> list[Event]:
        user_dir = self.spool / str(os.getuid())
        files = sorted(user_dir.glob("*.json")) if user_dir.exists() else []
        events = [decode_message(f.read_bytes()) for f in files]
        return sorted(events, key=lambda e: e.time)  # type: ignore[attr-defined]


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    return Dirs(tmp_path)


def run(dirs: Dirs, *args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `cronwrap [dirs' options] ARGS` to completion."""
    return subprocess.run(
        [*CRONWRAP, *dirs.options(), *args], capture_output=True, text=True, timeout=timeout,
        env=env if env is not None else _env(),
    )


def start(dirs: Dirs, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CRONWRAP, *dirs.options(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=_env(),
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CRONWRAP_SOCKET", None)
    env.pop("CRONWRAP_SPOOL_DIR", None)
    return env


def wait_for(predicate, what: str, limit: float = 20.0) -> None:  # noqa: ANN001
    """Poll `predicate` until true; fail naming `what` if it never becomes true."""
    give_up = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > give_up:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def process_gone(pid: int) -> bool:
    """True once `pid` no longer exists (or is only a zombie awaiting its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def holds_open(pid: int, path: Path) -> bool:
    """True while process `pid` has `path` open (seen through /proc/PID/fd)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False
