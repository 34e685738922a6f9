"""The agent's systemd integration: sd_notify, the watchdog, socket activation and logging.

Every function works without systemd (it then does nothing, returns None/False, or falls back).

API (the agent's main calls these):

    setup_logging("info")               # -> "journal" or "stderr"; call first
    sock = activated_unix_socket()      # the listening socket from cronwrap-agent.socket, or None
                                        # (then bind the --socket path yourself)
    notify_ready()                      # once the socket is served and AgentX/SNMP is up
    task = asyncio.create_task(watchdog_loop(is_healthy))   # returns at once without WatchdogSec
    notify("serving 12 jobs, AgentX connected")             # free-form STATUS= line
    notify_stopping()                   # at the start of a clean shutdown
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable

from systemd import daemon

JOURNAL_SOCKET = "/run/systemd/journal/socket"
SOCKET_NAME = "cronwrap-agent.socket"  # systemd's default FileDescriptorName for our socket unit
STDERR_FORMAT = "%(asctime)s cronwrap-agent[%(process)d] %(levelname)s %(name)s: %(message)s"
JOURNAL_STREAM_FORMAT = "%(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


def notify(status: str) -> bool:
    """Send STATUS=<status> to the service manager; False when there is none."""
    return _notify("STATUS=" + " ".join(status.split()))


def notify_ready() -> bool:
    return _notify("READY=1")


def notify_stopping() -> bool:
    return _notify("STOPPING=1")


def notify_watchdog() -> bool:
    return _notify("WATCHDOG=1")


def _notify(message: str) -> bool:
    try:
        return bool(daemon.notify(message))
    except OSError as exc:  # a NOTIFY_SOCKET that has gone away must not stop the agent
        log.debug("sd_notify %s failed: %s", message, exc)
        return False


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds systemd waits for WATCHDOG=1 (WATCHDOG_USEC), if the watchdog is meant for us."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


async def watchdog_loop(
    is_healthy: Callable[[], bool], interval: float | None = None
) -> None:
    """Send WATCHDOG=1 every half interval while is_healthy(); return at once if no watchdog.

    An unhealthy check skips the ping, so systemd restarts a stuck agent after WatchdogSec.
    """
    period = watchdog_interval() if interval is None else interval
    if period is None:
        return
    while True:
        healthy = False
        try:
            healthy = is_healthy()
        except Exception:  # a broken health check counts as unhealthy, not as a crash
            log.exception("health check raised")
        if healthy:
            notify_watchdog()
        else:
            log.warning("health check failed: not pinging the systemd watchdog")
        await asyncio.sleep(period / 2)


def activated_unix_socket(name: str | None = SOCKET_NAME) -> socket.socket | None:
    """The listening AF_UNIX stream socket systemd passed us, or None.

    With several passed descriptors, the one whose LISTEN_FDNAMES entry is `name` wins; a single
    descriptor is used whatever its name.  Descriptors that are not listening Unix stream
    sockets are ignored (and logged).  The LISTEN_* variables are removed from the environment.
    """
    named = daemon.listen_fds_with_names(unset_environment=True)
    if len(named) > 1:
        candidates = [fd for fd, fd_name in named.items() if fd_name == name]
    else:
        candidates = list(named)
    for fd in candidates:
        if daemon.is_socket_unix(fd, socket.SOCK_STREAM, listening=1):
            return socket.socket(fileno=fd)
        log.warning("ignoring passed fd %d (%s): not a listening Unix stream socket",
                    fd, named[fd])
    if named and not candidates:
        log.warning("no passed socket is named %r (got %s)", name, ", ".join(named.values()))
    return None


def journal_reachable(socket_path: str = JOURNAL_SOCKET) -> bool:
    """True when journald accepts datagrams on its native socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(socket_path)
        except OSError:
            return False
    return True


def setup_logging(
    level: str | int = "INFO", *, socket_path: str = JOURNAL_SOCKET, use_journal: bool = True
) -> str:
    """Configure the root logger and return where it logs: "journal" or "stderr".

    The journal (structured, via systemd.journal.JournalHandler) when journald accepts
    datagrams; otherwise stderr, without timestamps when JOURNAL_STREAM says stderr is already
    the journal.  `level` is a logging level name or number (ValueError if unknown).
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        with contextlib.suppress(Exception):
            old.close()
    root.setLevel(level.upper() if isinstance(level, str) else level)
    handler: logging.Handler
    if use_journal and journal_reachable(socket_path):
        from systemd.journal import JournalHandler

        handler = JournalHandler(SYSLOG_IDENTIFIER="cronwrap-agent")
        handler.setFormatter(logging.Formatter("%(message)s"))
        target = "journal"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = JOURNAL_STREAM_FORMAT if os.environ.get("JOURNAL_STREAM") else STDERR_FORMAT
        handler.setFormatter(logging.Formatter(fmt))
        target = "stderr"
    root.addHandler(handler)
    return target
