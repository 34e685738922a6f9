"""Running the real `cronwrap` as root or as a test user, and planting things as an attacker.

The file attacks (logs, locks, spool) need: a shared sticky directory like /tmp where any user
may create names, a dead agent (its spool root but no socket) or a live one, and the wrapper
run with an empty config so nothing of the host's /etc/cronwrap leaks into a test.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agent_support import Agent, cronwrap_command

from .support import User, run_as, start_as


def sticky_dir(path: Path) -> Path:
    """A root-owned 01777 directory like /tmp: anyone creates names, nobody removes others'."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o1777)
    return path


def spool_root(path: Path) -> Path:
    """A root-owned 01733 spool root, as the package's tmpfiles entry makes it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o1733)
    return path


def dead_agent(base: Path) -> Agent:
    """An agent that is not running: a socket path nobody listens on and a 01733 spool root."""
    agent = Agent(base)
    agent.socket.parent.mkdir(parents=True, exist_ok=True)
    spool_root(agent.spool)
    return agent


def empty_config(base: Path) -> Path:
    """A root-owned, world-readable empty config: `--config` it so the host's files play no part."""
    path = base / "empty.toml"
    if not path.exists():
        path.write_text("# the tests pass everything as options\n")
        path.chmod(0o644)
    return path


def plant(user: User, *argv: str) -> None:
    """Run one small shell command (mkdir, ln -s, mv) as the attacker; it must succeed."""
    result = run_as(user, *argv)
    assert result.returncode == 0, f"{argv}: {result.stderr}"


def cronwrap_root(agent: Agent, *args: str, env: Mapping[str, str] | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `cronwrap ARGS` as root, with a minimal cron-like environment."""
    return subprocess.run(root_command(*args), capture_output=True, text=True,
                          env=root_environment(agent, env), timeout=timeout, check=False)


def start_cronwrap_root(agent: Agent, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(root_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=root_environment(agent))


def root_command(*args: str) -> list[str]:
    command = cronwrap_command()
    assert command is not None, "cronwrap is not installed in this venv"
    return [command, *args]


def root_environment(agent: Agent, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "USER": "root",
            "LOGNAME": "root", "LANG": "C.UTF-8", "CRONWRAP_SOCKET": str(agent.socket),
            "CRONWRAP_SPOOL_DIR": str(agent.spool), **(extra or {})}


def start_cronwrap_as(user: User, agent: Agent, *args: str) -> subprocess.Popen[str]:
    """`cronwrap ARGS` as `user` in the background (a run the test holds open)."""
    command = cronwrap_command()
    assert command is not None
    where = {"CRONWRAP_SOCKET": str(agent.socket), "CRONWRAP_SPOOL_DIR": str(agent.spool)}
    return start_as(user, command, *args, env=where)


def held_job(flag_dir: Path) -> list[str]:
    """A job that says it started (creates STARTED) and runs until the test creates GO."""
    started, go = flag_dir / "STARTED", flag_dir / "GO"
    return ["sh", "-c", f": > {started}; while [ ! -e {go} ]; do sleep 0.02; done"]


def wait_until(predicate: Callable[[], object], what: str, limit: float = 60) -> None:
    give_up = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(0.02)


def release(flag_dir: Path) -> None:
    (flag_dir / "GO").touch()


def files_under(path: Path) -> list[str]:
    """Every name below `path` (as root sees it), relative, sorted."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def owner_of(path: Path) -> int:
    return os.lstat(path).st_uid
