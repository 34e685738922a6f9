"""Real Net-SNMP daemons for tests: a private snmpd AgentX master and a private snmptrapd.

Everything listens on loopback or on Unix sockets under the test's temporary directory; the
flags keep the daemons off system paths and ports (see ../shared/notes/net-snmp.md).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
MIBS_DIR = REPO / "mibs"
MIB_OPTIONS = ("-M", f"+{MIBS_DIR}", "-m", "CRON-JOBS-MIB")
NUMERIC_OPTIONS = ("-m", "")


class NetSnmpError(RuntimeError):
    """A daemon did not start, or a wait ran out."""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def have_netsnmp() -> bool:
    return all(shutil.which(tool) for tool in ("snmpd", "snmptrapd", "snmpget", "snmpwalk"))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise NetSnmpError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def snmp(tool: str, *args: str, mibs: bool = False, check: bool = True, timeout: float = 30):
    """Run a Net-SNMP client (snmpget, snmpwalk, snmpbulkwalk, snmptable...) and return it."""
    options = MIB_OPTIONS if mibs else NUMERIC_OPTIONS
    proc = subprocess.run(
        [tool, *options, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise NetSnmpError(f"{tool} {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


class _Daemon:
    """A daemon process started in its own directory and stopped on exit."""

    name = "daemon"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = self.dir / f"{self.name}.out"

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError


class SnmpdMaster(_Daemon):
    """snmpd as AgentX master: `agentx_socket` for subagents, `address` for managers."""

    name = "snmpd"

    def __init__(
        self, directory: Path, trap_port: int | None = None, extra_config: str = "",
        agentx_timeout: float | None = None,
    ) -> None:
        super().__init__(directory)
        self.agentx_socket = self.dir / "agentx.sock"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.trap_port = trap_port
        self.extra_config = extra_config
        self.agentx_timeout = agentx_timeout
        self.config = self.dir / "snmpd.conf"

    def _write_config(self) -> None:
        lines = [
            "master agentx",
            f"agentXSocket unix:{self.agentx_socket}",
            "agentXPerms 0660 0770",
            f"agentaddress udp:{self.address}",
            "rocommunity public 127.0.0.1",
        ]
        if self.agentx_timeout is not None:
            lines.append(f"agentXTimeout {self.agentx_timeout:g}")
        if self.trap_port is not None:
            lines.append(f"trap2sink 127.0.0.1:{self.trap_port} public")
        lines.append(self.extra_config)
        self.config.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self._write_config()
        persist = self.dir / "persist"
        persist.mkdir(exist_ok=True)
        if self.agentx_socket.exists():
            self.agentx_socket.unlink()
        self._spawn(
            ["snmpd", "-f", "-Lo", "-C", "-m", "", "-I", "-smux", "-c", str(self.config),
             "-p", str(self.dir / "snmpd.pid")],
            env={"SNMP_PERSISTENT_DIR": str(persist)},
        )
        wait_until(self._ready, 15, "snmpd to answer on " + self.address)

    def _ready(self) -> bool:
        if not self.alive():
            raise NetSnmpError(f"snmpd exited: {self.output.read_text(errors='replace')}")
        if not self.agentx_socket.exists():
            return False
        probe = snmp("snmpget", "-v2c", "-c", "public", "-t", "0.5", "-r", "0", self.address,
                     "1.3.6.1.2.1.1.3.0", check=False)
        return probe.returncode == 0

    def restart(self) -> None:
        self.stop()
        self.start()


class Snmptrapd(_Daemon):
    """snmptrapd on a loopback port, logging every notification it accepts to `log`."""

    name = "snmptrapd"

    def __init__(self, directory: Path, config: str = "authCommunity log public",
                 mibs: bool | str = False, port: int | None = None,
                 numeric: bool = False) -> None:
        """mibs: True loads CRON-JOBS-MIB from mibs/; a string is the -m module list.

        numeric: print OIDs numerically (-On), as SNMPTT wants them from a traphandle.
        """
        super().__init__(directory)
        self.port = port or free_port()
        self.log = self.dir / "traps.log"
        self.config_text = config
        self.mibs = mibs
        self.numeric = numeric

    def start(self) -> None:
        config = self.dir / "snmptrapd.conf"
        config.write_text(self.config_text + "\n")
        persist = self.dir / "persist"
        persist.mkdir(exist_ok=True)
        modules = self.mibs if isinstance(self.mibs, str) else "CRON-JOBS-MIB"
        mib_options = ["-M", f"+{MIBS_DIR}", "-m", modules] if self.mibs else ["-m", ""]
        self._spawn(
            ["snmptrapd", "-f", "-C", *mib_options, *(["-On"] if self.numeric else []),
             "-c", str(config), "-Lf", str(self.log),
             "-p", str(self.dir / "snmptrapd.pid"), f"udp:127.0.0.1:{self.port}"],
            env={"SNMP_PERSISTENT_DIR": str(persist)},
        )
        wait_until(self._ready, 15, "snmptrapd to start")

    def _ready(self) -> bool:
        if not self.alive():
            raise NetSnmpError(f"snmptrapd exited: {self.output.read_text(errors='replace')}")
        return self.log.exists() and "NET-SNMP version" in self.log.read_text(errors="replace")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, pattern: str, timeout: float = 15, count: int = 1) -> list[str]:
        """Wait until `pattern` (a regular expression) matches `count` times in the log."""
        regex = re.compile(pattern)

        def matches() -> list[str]:
            found = regex.findall(self.text())
            return found if len(found) >= count else []

        return wait_until(matches, timeout, f"{count} x /{pattern}/ in {self.log}")
