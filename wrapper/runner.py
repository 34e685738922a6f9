"""Running one job in its own session: output streaming, the timeout, signal forwarding, and
killing whatever the job leaves running when it ends (see reaper.py)."""

from __future__ import annotations

import _signal  # the C module: `signal` builds three enums on import, every cron run paying
import contextlib
import os
import select
import time
from collections.abc import Callable

from cronwrap.wrapper.errors import WrapperError
from cronwrap.wrapper.events import MAX_DURATION_MS, MAX_USAGE
from cronwrap.wrapper.reaper import (
    Usage,
    become_subreaper,
    descendants,
    describe,
    reap_children,
    reap_orphans,
    send,
)

FORWARDED = (_signal.SIGTERM, _signal.SIGINT, _signal.SIGHUP)
EXIT_TIMEOUT = 124
DRAIN_SECONDS = 2.0
LEFTOVER_SECONDS = 5.0  # how long killing what the job left behind may take (D state, sudo)
CHUNK = 65536


class Outcome:
    """How a run ended: the status the wrapper exits with and why (plain class: cheap import)."""

    __slots__ = ("exit_status", "signal", "timed_out", "forwarded", "duration", "killed",
                 "survivors", "cpu_ms", "max_rss_kib")

    def __init__(self, exit_status: int, signal: int = 0, timed_out: bool = False,
                 forwarded: int = 0, duration: float = 0.0) -> None:
        self.exit_status = exit_status
        self.signal = signal  # the signal that ended the job (or was forwarded); 0 if it exited
        self.timed_out = timed_out
        self.forwarded = forwarded  # a signal the wrapper received and passed on, 0 if none
        self.duration = duration
        self.killed: list[str] = []  # "pid (name)" of processes left running at the end, killed
        self.survivors: list[str] = []  # the same, for those that could not be killed
        self.cpu_ms: int | None = None  # the job's processes' CPU time, user + system (None:
        self.max_rss_kib: int | None = None  # not run); the largest one's peak RSS, KiB

    @property
    def duration_ms(self) -> int:
        """The duration in whole milliseconds, capped to what an event carries (Unsigned32)."""
        return min(int(self.duration * 1000), MAX_DURATION_MS)


def spawn(argv: list[str], env: dict[str, str], out_fd: int, pass_fds: tuple[int, ...] = ()
          ) -> int:
    """Start `argv` in a new session, stdout and stderr on `out_fd`, also inheriting `pass_fds`
    (at the same numbers); WrapperError 126/127."""
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    try:
        return os.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, out_fd, 1), (os.POSIX_SPAWN_DUP2, out_fd, 2)],
            setsid=True,
            setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ, *FORWARDED),
        )
    except FileNotFoundError:
        raise WrapperError(f"{argv[0]}: command not found", 127) from None
    except OSError as exc:
        raise WrapperError(f"{argv[0]}: cannot execute: {exc.strerror}", 126) from None
    finally:
        for fd in pass_fds:
            os.set_inheritable(fd, False)


class Supervisor:
    """Runs one job to completion, feeding its output to `on_output` as it arrives."""

    def __init__(
        self, on_output: Callable[[bytes], None], timeout: float | None, kill_after: float
    ) -> None:
        self.on_output = on_output
        self.timeout = timeout
        self.kill_after = kill_after

    def run(self, argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...] = ()
            ) -> Outcome:
        """Run `argv` to its end; `pass_fds` are inherited by the job (the lock, see job.py)."""
        become_subreaper()  # before the spawn: an orphan made earlier would go to init
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        previous = {sig: _signal.signal(sig, _wake_only) for sig in (*FORWARDED, _signal.SIGCHLD)}
        old_wakeup = _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        out_r, out_w = os.pipe()
        try:
            started = time.monotonic()
            try:
                pid = spawn(argv, env, out_w, pass_fds)
            finally:
                os.close(out_w)
            outcome = self._supervise(pid, out_r, wake_r, started)
        finally:
            _signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                _signal.signal(sig, handler)
            for fd in (wake_r, wake_w, out_r):
                os.close(fd)
        return outcome

    def _supervise(self, pid: int, out_fd: int, wake_fd: int, started: float) -> Outcome:
        poller = select.poll()
        poller.register(out_fd, select.POLLIN)
        poller.register(wake_fd, select.POLLIN)
        deadline = started + self.timeout if self.timeout else None
        kill_at: float | None = None
        timed_out = False
        forwarded = 0
        usage = Usage()
        while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                deadline, timed_out, kill_at = None, True, now + self.kill_after
                _signal_tree(pid, _signal.SIGTERM)
            if kill_at is not None and now >= kill_at:
                kill_at = None
                _signal_tree(pid, _signal.SIGKILL)
            wait = min((t for t in (deadline, kill_at) if t is not None), default=None)
            for fd, _ in poller.poll(None if wait is None else max(0, (wait - now) * 1000) + 1):
                if fd == wake_fd:
                    for signum in os.read(wake_fd, 512):
                        if signum in FORWARDED:
                            forwarded = signum
                            _killpg(pid, signum)
                            kill_at = kill_at or time.monotonic() + self.kill_after
                    reap_orphans(pid, usage)
                elif not self._pump(out_fd):
                    poller.unregister(out_fd)
        _, status, rusage = os.wait4(pid, 0)
        usage.add(rusage)
        killed, survivors = self._kill_leftovers(wake_fd, usage)
        self._drain(out_fd)
        outcome = _outcome(status, timed_out, forwarded, time.monotonic() - started)
        outcome.killed, outcome.survivors = killed, survivors
        outcome.cpu_ms = min(round(usage.cpu_seconds * 1000), MAX_USAGE)
        outcome.max_rss_kib = min(usage.max_rss_kib, MAX_USAGE)
        return outcome

    def _kill_leftovers(self, wake_fd: int, usage: Usage) -> tuple[list[str], list[str]]:
        """SIGKILL and reap every process still below the wrapper once the job's main one ended.

        Returns the processes killed and those that could not be, as "pid (name)".
        """
        killed: dict[int, str] = {}
        refused: dict[int, str] = {}
        give_up = time.monotonic() + LEFTOVER_SECONDS
        while reap_children(usage):  # the common case, nothing left: no walk of /proc at all
            targets = [p for p in descendants(os.getpid()) if p.pid not in refused]
            if not targets or time.monotonic() > give_up:
                break
            for process in targets:
                name = killed.get(process.pid) or describe(process)
                if send(process, _signal.SIGKILL):
                    killed[process.pid] = name
                else:
                    refused[process.pid] = name
            select.select([wake_fd], [], [], 0.05)  # SIGCHLD (through the wakeup fd) or a tick
            with contextlib.suppress(BlockingIOError):
                os.read(wake_fd, 512)
        lingering = descendants(os.getpid()) if reap_children(usage) else []
        alive = {process.pid for process in lingering}
        return ([name for pid, name in killed.items() if pid not in alive],
                [describe(process) for process in lingering])

    def _pump(self, out_fd: int) -> bool:
        data = os.read(out_fd, CHUNK)
        if data:
            self.on_output(data)
        return bool(data)

    def _drain(self, out_fd: int) -> None:
        """Read what is left in the pipe: to EOF, or for DRAIN_SECONDS if an escapee holds it."""
        give_up = time.monotonic() + DRAIN_SECONDS
        os.set_blocking(out_fd, False)
        while (left := give_up - time.monotonic()) > 0:
            try:
                if not self._pump(out_fd):
                    return
            except BlockingIOError:
                select.select([out_fd], [], [], left)


def _wake_only(signum: int, frame: object) -> None:
    """Signals only wake the poll loop (through the wakeup fd); the loop decides what to do."""


def _signal_tree(pid: int, sig: int) -> None:
    """`sig` to the job's process group and to every other process below the wrapper."""
    _killpg(pid, sig)
    for process in descendants(os.getpid()):
        if process.pgid != pid:  # the group has had it
            send(process, sig)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _outcome(status: int, timed_out: bool, forwarded: int, duration: float) -> Outcome:
    job_signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    if timed_out:
        return Outcome(EXIT_TIMEOUT, job_signal, True, forwarded, duration)
    if forwarded:
        return Outcome(128 + forwarded, forwarded, False, forwarded, duration)
    if job_signal:
        return Outcome(128 + job_signal, job_signal, False, 0, duration)
    return Outcome(os.waitstatus_to_exitcode(status), 0, False, 0, duration)
