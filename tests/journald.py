"""A real systemd-journald for tests, isolated in a private mount namespace.

journald is started with a temporary directory bind-mounted over /run and another over
/var/log, inside its own mount namespace (util-linux `unshare -m`).  It therefore writes only
under its own temporary directory RUN (a short name under /tmp, since an AF_UNIX path holds
at most 107 bytes and a test's tmp_path under pytest-xdist is long): its socket is
RUN/systemd/journal/socket and its (volatile) journal RUN/log/journal/, which `journalctl -D`
reads; its output goes to the test's directory.  The real /run/systemd/journal is never
touched.  Needs root; `PrivateJournald.start()` raises JournaldUnavailable otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import pytest

JOURNALD = "/lib/systemd/systemd-journald"


class JournaldUnavailable(RuntimeError):
    """journald cannot run here (not root, no unshare, or it did not start)."""


def in_private_run(run_dir: Path, argv: list[str], var_log: Path | None = None) -> list[str]:
    """argv wrapped so it runs with run_dir mounted over /run (and var_log over /var/log)."""
    mounts = f'mount --bind "{run_dir}" /run'
    if var_log is not None:
        mounts += f' && mount --bind "{var_log}" /var/log'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{mounts} && exec "$@"',
            "sh", *argv]


class PrivateJournald:
    """systemd-journald writing under `directory`; use as a context manager."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.run_dir = Path(tempfile.mkdtemp(prefix="journald-"))
        self.run_dir.chmod(0o755)  # it is /run for whatever runs in its namespace
        self.var_log = self.run_dir.with_name(self.run_dir.name + ".log")
        self.socket_path = self.run_dir / "systemd" / "journal" / "socket"
        self.journal_dir = self.run_dir / "log" / "journal"
        self.output = directory / "journald.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> PrivateJournald:
        if os.geteuid() != 0:
            raise JournaldUnavailable("journald needs root to run")
        if not (os.access(JOURNALD, os.X_OK) and shutil.which("unshare")
                and shutil.which("journalctl")):
            raise JournaldUnavailable("systemd-journald, journalctl or unshare is missing")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.var_log.mkdir(exist_ok=True)
        if self.socket_path.exists():  # left by a stopped journald: not a sign of a new one
            self.socket_path.unlink()
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(
                in_private_run(self.run_dir, [JOURNALD], self.var_log),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env={"PATH": os.environ.get("PATH", os.defpath)},
            )
        deadline = time.monotonic() + timeout
        while not self.socket_path.is_socket():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise JournaldUnavailable(
                    f"journald did not start: {self.output.read_text(errors='replace')[-300:]}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def syslog_socket(self) -> Path:
        """Where syslog(3) senders write (/dev/log points there on a systemd host)."""
        return self.run_dir / "systemd" / "journal" / "dev-log"

    def restart(self) -> None:
        """Stop journald and start it again on the same journal files."""
        self.stop()
        self.start()

    def rotate(self, timeout: float = 10.0) -> None:
        """Make journald rotate its files (SIGUSR2); return once an archived file exists."""
        assert self.proc is not None
        before = set(self.journal_dir.rglob("*@*.journal"))
        self.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + timeout
        while set(self.journal_dir.rglob("*@*.journal")) == before:
            if time.monotonic() > deadline:
                raise JournaldUnavailable("journald did not rotate its files")
            time.sleep(0.05)

    def __enter__(self) -> PrivateJournald:
        return self.start()

    def remove(self) -> None:
        """Stop journald and remove its journal and sockets."""
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.var_log, ignore_errors=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def read(self, *matches: str) -> list[dict[str, object]]:
        """Entries matching journalctl MATCHES, as journalctl -o json gives them."""
        proc = subprocess.run(
            ["journalctl", "-D", str(self.journal_dir), "-o", "json", "--all", "--no-pager",
             *matches],
            capture_output=True, text=True, timeout=30, check=False,
        )
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def wait_for(self, *matches: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Poll journalctl until at least `count` entries match."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.read(*matches)
            if len(entries) >= count or time.monotonic() > deadline:
                return entries
            time.sleep(0.1)


@contextmanager
def running_journald(directory: Path) -> Iterator[PrivateJournald]:
    """A started PrivateJournald under `directory`, stopped on exit; skips where it cannot run."""
    daemon = PrivateJournald(directory)
    try:
        daemon.start()
    except JournaldUnavailable as exc:
        daemon.remove()
        pytest.skip(str(exc))
    try:
        yield daemon
    finally:
        daemon.remove()
