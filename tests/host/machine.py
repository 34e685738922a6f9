"""A booted Debian root under systemd-nspawn: boot, run commands inside, reboot, tear down.

The container gets its own network namespace (`--private-network`: only a loopback), so its
snmpd on port 161 collides with nothing on the machine or in other tests.  Commands run inside
it with `nsenter -t PID1 -a` (every namespace of the container's init); `outside()` runs a
program of *this* machine (snmpwalk, snmptrapd) in the container's network namespace only, as
a monitoring host would reach the container over the network.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# systemd-nspawn exits with this status when the container asked for a reboot.
NSPAWN_REBOOT_STATUS = 133
INSIDE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TERM": "dumb",
    "DEBIAN_FRONTEND": "noninteractive",
    "SYSTEMD_PAGER": "",
    "SYSTEMD_COLORS": "0",
}
BOOT_TIMEOUT = 180.0
COMMAND_TIMEOUT = 180.0


class HostError(RuntimeError):
    """The container did not do what the harness needed; str() says what and shows output."""


def wait_for(
    condition: Callable[[], object], what: str, timeout: float, interval: float = 0.5
) -> object:
    """Poll `condition` until it returns something true; on timeout raise HostError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise HostError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Container:
    """One Debian root directory, booted with systemd as PID 1 under systemd-nspawn."""

    def __init__(self, root: Path, console_log: Path, name: str = "cronwrap-host") -> None:
        self.root = root
        self.console_log = console_log
        self.name = name
        self.nspawn: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    # --- life cycle -------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the container and wait until systemd reports the boot finished."""
        with open(self.console_log, "ab") as console:
            self.nspawn = subprocess.Popen(
                [
                    "systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                    "--boot", "--console=pipe", "--private-network",
                    f"--machine={self.name}", "--directory", str(self.root),
                ],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid1 = int(wait_for(self._find_pid1, "the container's init to start", BOOT_TIMEOUT))
        state = self.wait_booted()
        if state != "running":
            failed = self.run("systemctl", "--failed", "--no-legend", check=False).stdout
            raise HostError(f"container booted {state!r}, not 'running'; failed units:\n{failed}")

    def wait_booted(self) -> str:
        """Wait for the end of the boot; return `systemctl is-system-running`'s word for it."""
        def finished() -> str:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            return "" if state in ("initializing", "starting", "offline", "") else state

        return str(wait_for(finished, "the container to finish booting", BOOT_TIMEOUT))

    def _find_pid1(self) -> int:
        """The pid (outside) of the container's init, the child of systemd-nspawn, or 0."""
        assert self.nspawn is not None
        if self.nspawn.poll() is not None:
            raise HostError(
                f"systemd-nspawn exited with status {self.nspawn.returncode} while booting "
                f"{self.root}; console:\n{self.console_tail()}"
            )
        children = Path(f"/proc/{self.nspawn.pid}/task/{self.nspawn.pid}/children")
        try:
            pids = children.read_text().split()
        except FileNotFoundError:
            return 0
        for pid in pids:
            if self._is_systemd(pid):
                return int(pid)
        return 0

    @staticmethod
    def _is_systemd(pid: str) -> bool:
        try:
            return os.readlink(f"/proc/{pid}/exe").endswith("/systemd")
        except OSError:
            return False

    def console_tail(self, lines: int = 40) -> str:
        """The last lines the container printed on its console."""
        try:
            text = self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no console output)"
        return "\n".join(text.splitlines()[-lines:])

    def reboot(self) -> None:
        """`systemctl reboot` inside (systemd-nspawn then exits 133); boot the same root again."""
        self.run("systemctl", "reboot", check=False)
        status = self._wait_nspawn_exit(BOOT_TIMEOUT)
        if status != NSPAWN_REBOOT_STATUS:
            raise HostError(
                f"systemd-nspawn exited {status} after `systemctl reboot`, expected "
                f"{NSPAWN_REBOOT_STATUS}; console:\n{self.console_tail()}"
            )
        self.boot()

    def stop(self) -> None:
        """Power the container off (SIGTERM to systemd-nspawn), killing it if that hangs."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            return
        self.nspawn.send_signal(signal.SIGTERM)
        try:
            self._wait_nspawn_exit(60.0)
        except HostError:
            os.killpg(self.nspawn.pid, signal.SIGKILL)
            self.nspawn.wait(timeout=30)

    def _wait_nspawn_exit(self, timeout: float) -> int:
        assert self.nspawn is not None
        try:
            return self.nspawn.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HostError(f"systemd-nspawn still running after {timeout:.0f} s") from None

    # --- commands ---------------------------------------------------------------------------

    def run(
        self, *argv: str, check: bool = True, input: str | None = None,
        timeout: float = COMMAND_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the container as root (all of its namespaces, a clean environment)."""
        return self._nsenter(["--all"], list(argv), check, input, timeout, INSIDE_ENV)

    def sh(self, script: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a shell script inside the container; its stdout."""
        return self.run("/bin/sh", "-ec", script, check=check, timeout=timeout).stdout

    def outside(
        self, *argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run one of this machine's programs in the container's network namespace only."""
        return self._nsenter(["--net"], list(argv), check, None, timeout, dict(os.environ))

    def outside_popen(self, *argv: str, **kwargs) -> subprocess.Popen[bytes]:
        """Start one of this machine's programs in the container's network namespace."""
        return subprocess.Popen(
            ["nsenter", "-t", str(self.pid1), "--net", "--", *argv], **kwargs
        )

    def _nsenter(
        self, namespaces: list[str], argv: list[str], check: bool, input: str | None,
        timeout: float, env: dict[str, str],
    ) -> subprocess.CompletedProcess[str]:
        if not self.pid1:
            raise HostError("the container is not booted")
        command = ["nsenter", "-t", str(self.pid1), *namespaces, "--", *argv]
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, env=env,
        )
        if check and result.returncode != 0:
            raise HostError(
                f"{' '.join(argv)!r} exited {result.returncode} in the container\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Create or replace a file inside the container (as root)."""
        self.run("/bin/sh", "-ec", f'cat > "$0" && chmod {mode:o} "$0"', path, input=text)
