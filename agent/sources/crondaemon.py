"""Whether the cron daemon runs, looked at every cron_daemon_interval seconds and submitted to
the core as CronDaemonSeen: systemd's unit (cron.service) where systemd runs, else Debian
cron's pid file.

systemd-python has no call for a unit's state (it has journal, daemon, id128 and login), so
the unit is read with `systemctl show`, the interface systemd documents for it; its
sd_booted() (systemd.daemon.booted) says whether systemd runs.  Debian's cron writes its pid
into /run/crond.pid (pathnames.h: _PATH_VARRUN "crond.pid") and holds it flock()ed while it
runs, never removing it (misc.c, acquire_daemonlock): the pid there, alive, named cron and
root's, is a running daemon, and the file's mtime is when it started; a pid file left by a
daemon that is gone (or whose pid another user's process now holds) is a stopped one.  No pid
file (no cron started since boot, or an init script's stop removed it) says there is no
daemon to watch: absent, never an outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable

from systemd import daemon as sd_daemon

from ..lifeevents import CronDaemonSeen
from ..model import CronDaemonState

log = logging.getLogger(__name__)

UNIT = "cron.service"
PID_FILE = "/run/crond.pid"
SHOW_TIMEOUT = 5.0  # seconds systemctl may take before the state is unknown
PROPERTIES = ("LoadState", "ActiveState", "ActiveEnterTimestampMonotonic",
              "InactiveEnterTimestampMonotonic")
RUNNING = ("active", "reloading")  # cron runs jobs (also while its unit is masked)
Look = tuple[CronDaemonState, float | None, str | None]  # state, since (wall clock), problem


def unit_state(properties: dict[str, str]) -> CronDaemonState:
    """The daemon's state from its unit's LoadState and ActiveState."""
    active = properties.get("ActiveState", "")
    if active in RUNNING:
        return CronDaemonState.running
    if properties.get("LoadState") == "masked":
        return CronDaemonState.masked
    if properties.get("LoadState") == "not-found":
        return CronDaemonState.absent
    if active == "failed":
        return CronDaemonState.failed
    if active in ("inactive", "activating", "deactivating"):  # activating: a restart's wait
        return CronDaemonState.stopped
    return CronDaemonState.unknown


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show -p ...`'s KEY=VALUE lines."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def is_roots_cron(pid: int) -> bool:
    """Whether process `pid` is named cron and runs as root: any user may run a program named
    cron, and cycle through pids to get the one a dead cron left in its pid file."""
    try:
        process = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:  # the owner and the name of one process, whatever happens to the pid meanwhile
        owner = os.fstat(process).st_uid
        comm = os.open("comm", os.O_RDONLY, dir_fd=process)
        try:
            named = os.read(comm, 64).strip()
        finally:
            os.close(comm)
    except OSError:
        return False
    finally:
        os.close(process)
    return owner == 0 and named == b"cron"


class CronDaemonWatch:
    """Looks at the cron daemon as [agent] cron_daemon says ("auto": the unit cron.service
    where systemd runs, else the pid file /run/crond.pid; "off": never), at most once every
    `interval` seconds (monotonic clock)."""

    def __init__(self, setting: str, interval: float,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        if setting == "auto":
            setting = UNIT if sd_daemon.booted() else PID_FILE
        self.setting = setting
        self.interval = interval
        self.wall = wall
        self.mono = mono
        self._next = -math.inf
        self._problem: str | None = None

    async def look(self) -> CronDaemonSeen | None:
        """What is seen now, when a look is due (None: not due, or watching is off)."""
        if self.setting == "off" or self.mono() < self._next:
            return None
        self._next = self.mono() + self.interval
        if self.setting.startswith("/"):
            state, since, problem = self._pid_file()
        else:
            state, since, problem = await self._unit()
        self._say(problem)
        return CronDaemonSeen(state, since, self.wall())

    async def _unit(self) -> Look:
        argv = ["systemctl", "show", "-p", ",".join(PROPERTIES), "--", self.setting]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            return CronDaemonState.unknown, None, f"cannot run systemctl: {exc.strerror}"
        try:
            out, err = await asyncio.wait_for(proc.communicate(), SHOW_TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return CronDaemonState.unknown, None, f"systemctl show took over {SHOW_TIMEOUT:g} s"
        if proc.returncode != 0:
            said = err.decode(errors="replace").strip().splitlines()[:1] or ["no message"]
            return (CronDaemonState.unknown, None,
                    f"systemctl show {self.setting} exited {proc.returncode}: {said[0]}")
        properties = parse_show(out.decode(errors="replace"))
        state = unit_state(properties)
        stamp = "ActiveEnterTimestampMonotonic" if state == CronDaemonState.running \
            else "InactiveEnterTimestampMonotonic"
        return state, self._wall_of(properties.get(stamp, "")), None

    def _wall_of(self, monotonic_us: str) -> float | None:
        """systemd's CLOCK_MONOTONIC time (microseconds; 0: never) as wall-clock seconds."""
        if not monotonic_us.isdigit() or int(monotonic_us) == 0:
            return None
        return self.wall() - (time.monotonic() - int(monotonic_us) / 1e6)

    def _pid_file(self) -> Look:
        try:
            fd = os.open(self.setting, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return CronDaemonState.absent, None, None
        except OSError as exc:
            return CronDaemonState.unknown, None, f"cannot read {self.setting}: {exc.strerror}"
        try:
            started, text = os.fstat(fd).st_mtime, os.read(fd, 32)
        finally:
            os.close(fd)
        pid = text.strip()
        if not pid.isdigit() or not is_roots_cron(int(pid)):
            return CronDaemonState.stopped, None, None
        return CronDaemonState.running, started, None

    def _say(self, problem: str | None) -> None:
        """One line when looking starts failing (cronDaemonState unknown), one when it works."""
        if problem == self._problem:
            return
        if problem is not None:
            log.warning("cannot tell whether cron runs: %s (cronDaemonState unknown)", problem)
        else:
            log.warning("watching the cron daemon through %s works again", self.setting)
        self._problem = problem
