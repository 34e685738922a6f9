"""The job's process tree: cronwrap as its subreaper, and finding, signalling and reaping every
process the job started (also those that called setsid or double-forked away from it).

Linux only (prctl, /proc, pidfds).  A process is the job's while its chain of parents leads to
the wrapper: as the subreaper, the wrapper inherits every orphan below it, so no descendant can
leave the tree.  Killing goes through a pidfd opened after checking the process's start time, so
a pid reused by an unrelated process between the walk and the kill is never signalled.
"""

from __future__ import annotations

import _signal
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resource import struct_rusage

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphans of the job's processes the wrapper's children, not init's; False if refused.

    prctl(2) through _ctypes, the C module under ctypes, as ctypes.CDLL(None).prctl would call
    it: the ctypes package costs every cron run about 1.4 ms more to import (its Python-level
    types and platform set-up), _ctypes alone about 0.5 ms (docs/wrapper-overhead.md).
    """
    import _ctypes  # here, not at the top: only a run imports it

    class CInt(_ctypes._SimpleCData):  # ctypes.c_int
        _type_ = "i"

    class CULong(_ctypes._SimpleCData):  # ctypes.c_ulong
        _type_ = "L"

    class LibcFunction(_ctypes.CFuncPtr):  # a CDLL(..., use_errno=True) function
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    class Libc:  # what CFuncPtr needs of a library: its dlopen(3) handle
        _handle = _ctypes.dlopen(None, os.RTLD_LOCAL)

    prctl = LibcFunction(("prctl", Libc))
    flag, unused = CULong(1), CULong(0)
    return prctl(PR_SET_CHILD_SUBREAPER, flag, unused, unused, unused) == 0


class Process:
    """One live process seen in /proc: its pid, process group and kernel start time (ticks)."""

    __slots__ = ("pid", "pgid", "start")

    def __init__(self, pid: int, pgid: int, start: bytes) -> None:
        self.pid = pid
        self.pgid = pgid
        self.start = start


def descendants(root: int) -> list[Process]:
    """Every live process whose chain of parents leads to `root`, as of now.

    Zombies are left out, except `root`'s own: once its exited children are reaped, a zombie
    child is a process whose main thread exited while its other threads still run.
    """
    children: dict[int, list[Process]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read_stat(int(name))
        if stat is None or stat[0] == b"X" or (stat[0] == b"Z" and stat[1] != root):
            continue
        children.setdefault(stat[1], []).append(Process(int(name), stat[2], stat[3]))
    found: list[Process] = []
    parents = [root]
    while parents:
        for child in children.get(parents.pop(), ()):
            found.append(child)
            parents.append(child.pid)
    return found


def send(process: Process, sig: int) -> bool:
    """Signal `process` if it still is the one the walk saw; False only if that is not allowed."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return True  # already gone
    try:
        stat = _read_stat(process.pid)
        if stat is None or stat[3] != process.start:
            return True  # gone, or the pid now names another process: not ours to touch
        _signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return True
    except PermissionError:  # e.g. it became another user (sudo): it is reported instead
        return False
    finally:
        os.close(pidfd)
    return True


class Usage:
    """What the job's processes used, summed from the rusage of each child the wrapper reaps.

    wait4(2) gives a reaped child's own use plus that of the descendants it waited for; every
    orphan below the wrapper (its subreaper) is reaped by the wrapper itself, so the sum covers
    the whole tree.  ru_maxrss is one process's peak (Linux: KiB), so the tree's is the largest
    single process's, not their sum.
    """

    __slots__ = ("cpu_seconds", "max_rss_kib")

    def __init__(self) -> None:
        self.cpu_seconds = 0.0  # user + system
        self.max_rss_kib = 0

    def add(self, usage: struct_rusage) -> None:
        """Count one reaped child's use."""
        self.cpu_seconds += usage.ru_utime + usage.ru_stime
        self.max_rss_kib = max(self.max_rss_kib, usage.ru_maxrss)


def reap_children(usage: Usage) -> bool:
    """Collect every child that has exited, counting its `usage`; True while some child of the
    wrapper is still alive."""
    while True:
        try:
            pid, _, rusage = os.wait3(os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        usage.add(rusage)


def reap_orphans(job_pid: int, usage: Usage) -> None:
    """Collect exited children other than the job itself (orphans the wrapper inherited),
    counting their `usage`."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == job_pid:
            return
        usage.add(os.wait4(info.si_pid, 0)[2])


def describe(process: Process) -> str:
    """`1234 (sleep)`: the pid and the command name, as a report line shows it."""
    try:
        with open(f"/proc/{process.pid}/comm", "rb") as fh:
            name = fh.read().strip().decode("utf-8", "replace")
    except OSError:
        name = "?"
    return f"{process.pid} ({name})"


def _read_stat(pid: int) -> tuple[bytes, int, int, bytes] | None:
    """(state, ppid, pgid, start time) from /proc/PID/stat; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[1].split()  # the command name may contain spaces and ')'
    return fields[0], int(fields[1]), int(fields[2]), fields[19]
