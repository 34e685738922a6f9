"""The attacker's toolbox: real unprivileged users, running commands as them, a root agent.

The threat model in one paragraph: the agent runs as root; any local user can run `cronwrap`,
talk to the agent's socket and write in the spool root (01733), and may race, plant junk or
flood. An attack test runs the attacker's side as a real user through setpriv (no capabilities,
its own uid, gid and groups), against a real `cronwrap-agent` process running as root, on
paths every test user can reach; then it checks that other users' counts stay exact.

Test users: ATTACKERS (created here, idempotently, as ordinary login-less accounts with a home)
and `nobody`. Small attack tools live in tests/attacks/tools/ and run with this venv's python.
Fixtures (conftest.py): `attackers` (the three users, skipping with one line where attack tests
cannot run), `nobody`, `shared_base` (a dir they can reach) and `root_agent` (FAST_AGENT timings).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_support import Agent, cronwrap_command
from cronwrap.wrapper.events import Event

ATTACKERS = ("cwattack1", "cwattack2", "cwattack3")
TOOLS = Path(__file__).with_name("tools")
USERS_LOCK = Path(tempfile.gettempdir()) / "cronwrap-attack-users.lock"
FAST_AGENT = ("--spool-interval", "0.2", "--watch-interval", "0.5")


def skip_reason() -> str | None:
    """Why attack tests cannot run here (None: they can, and in CI, as root, they must)."""
    if os.geteuid() != 0:
        return "attack tests need root: they create users and run a root agent"
    for tool in ("setpriv", "useradd"):
        if shutil.which(tool) is None:
            return f"attack tests need {tool}"
    return None


@dataclass(frozen=True)
class User:
    """An account an attack runs as."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def named(cls, name: str) -> User:
        entry = pwd.getpwnam(name)
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def ensure_user(name: str) -> User:
    """The user `name`, created (with its own group and a home, no login shell) if missing.

    Several pytest processes may ask at once: a file lock serialises useradd.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC  # /tmp: never a planted link
    with open(os.open(USERS_LOCK, flags, 0o600), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return User.named(name)
        except KeyError:
            pass
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin", "--comment", "cronwrap attack tests", name],
                       check=True, capture_output=True, timeout=60)
        return User.named(name)


def user_environment(user: User, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for `user`: nothing of root's leaks into the attacker's process."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": user.home, "USER": user.name,
           "LOGNAME": user.name, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, **(extra or {})}


def as_user(user: User, argv: list[str]) -> list[str]:
    """`argv` prefixed so that it runs with `user`'s uid, gid and groups only."""
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--",
            *argv]


def run_as(user: User, *argv: str, env: Mapping[str, str] | None = None,
           input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `argv` as `user` to completion, `input` on its stdin; output captured as text."""
    return subprocess.run(as_user(user, list(argv)), capture_output=True, text=True, input=input,
                          env=user_environment(user, env), timeout=timeout, check=False)


def start_as(user: User, *argv: str, env: Mapping[str, str] | None = None
             ) -> subprocess.Popen[str]:
    """Start `argv` as `user` in the background (a race loop); stop it with stop()."""
    return subprocess.Popen(as_user(user, list(argv)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=user_environment(user, env))


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """SIGTERM a process started by start_as; returns its stdout and stderr."""
    if proc.poll() is None:
        proc.terminate()
    out, err = proc.communicate(timeout=timeout)
    return out, err


def tool(name: str, *args: str) -> list[str]:
    """The argv of an attack tool in tests/attacks/tools/, run with this venv's python."""
    return [sys.executable, str(TOOLS / name), *args]


def send_as(user: User, agent: Agent, *events: Event) -> list[dict[str, Any]]:
    """Send each event to `agent` as `user` (who it is comes from SO_PEERCRED); the replies."""
    wire = b"".join(event.to_wire() for event in events).decode()
    result = run_as(user, *tool("send_lines.py", str(agent.socket)), input=wire)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def spool_as(user: User, agent: Agent, *events: Event) -> None:
    """Spool each event as `user` into `agent`'s spool, as that user's wrapper would."""
    wire = b"".join(event.to_wire() for event in events).decode()
    result = run_as(user, *tool("spool_lines.py", str(agent.spool)), input=wire)
    assert result.returncode == 0, result.stderr


def cronwrap_as(user: User, agent: Agent, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `cronwrap ARGS` run as `user`, reporting to `agent` (socket and spool root)."""
    command = cronwrap_command()
    assert command is not None, "cronwrap is not installed in this venv"
    where = {"CRONWRAP_SOCKET": str(agent.socket), "CRONWRAP_SPOOL_DIR": str(agent.spool)}
    return run_as(user, command, *args, env={**where, **(env or {})}, timeout=timeout)


def check_reachable(user: User) -> None:
    """Fail (not skip) when `user` cannot run this venv's python and import cronwrap."""
    result = run_as(user, sys.executable, "-c", "import cronwrap.wrapper.spool")
    assert result.returncode == 0, (
        f"{user.name} cannot run {sys.executable} with cronwrap: make the venv and the "
        f"repository world-readable (chmod -R o+rX): {result.stderr.strip()}")


def shared_dir() -> Path:
    """A fresh temp dir every test user can traverse (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="cronwrap-attack-"))
    path.chmod(0o755)
    return path


def start_root_agent(base: Path, *extra: str) -> Agent:
    """A real agent as root under `base` (spool root 01733, socket 0666), FAST_AGENT timings."""
    return Agent(base, extra=[*FAST_AGENT, *extra]).start()


def owned_dir(path: Path, user: User, mode: int = 0o700) -> Path:
    """Create `path` owned by `user` (e.g. a private log or lock dir for its wrapper runs)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.uid, user.gid)
    path.chmod(mode)
    return path


def peak_rss_kib(agent: Agent, field: str = "VmHWM") -> int:
    """The agent process's peak resident set (VmHWM), KiB: what an attack made it hold."""
    assert agent.proc is not None
    status = Path(f"/proc/{agent.proc.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith(f"{field}:"))


def rss_kib(agent: Agent) -> int:
    """The agent process's resident set now (VmRSS), KiB: the base an attack's peak is from."""
    return peak_rss_kib(agent, "VmRSS")
