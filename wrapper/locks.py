"""The per-(user, job) overlap guard: a filelock flock on a safely opened lock file."""

from __future__ import annotations

import os
import stat
import time

from cronwrap.wrapper.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def default_lock_dir(uid: int, environ: dict[str, str]) -> str:
    """Root: /run/lock/cronwrap; users: $XDG_RUNTIME_DIR/cronwrap, else /tmp/cronwrap-<uid>."""
    if uid == 0:
        return "/run/lock/cronwrap"
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/") and os.path.isdir(runtime):
        return os.path.join(runtime, "cronwrap")
    return f"/tmp/cronwrap-{uid}"


def open_lock_dir(path: str, uid: int) -> int:
    """An fd on the lock directory `path` (created 0700 if missing); UnsafePathError for one
    another user could swap or write in: see dirs.open_trusted_dir."""
    from cronwrap.wrapper.dirs import open_trusted_dir

    return open_trusted_dir(path, uid, 0o700)


def _why(exc: OSError) -> str:
    if exc.errno in (40, 20):  # ELOOP, ENOTDIR: O_NOFOLLOW met a symlink, or not a directory
        return "it is a symlink or not a directory"
    return exc.strerror or str(exc)


class Holder:
    """Who holds a job's lock: see JobLock.holder()."""

    __slots__ = ("pid", "start", "lost_wrapper")

    def __init__(self, pid: int | None, start: float | None, lost_wrapper: int | None) -> None:
        self.pid = pid  # a live process holding the lock, None if unknown
        self.start = start  # when the holding run started (wall clock), None if unknown
        self.lost_wrapper = lost_wrapper  # the cronwrap that took the lock, if it is gone


def _holds_lock(pid: int, target: str) -> bool:
    """True if process `pid` has `target` open through a file description that holds its flock."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone, or not ours to look at
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != target:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as info:
                if b"\nlock:" in info.read():  # only the locking description lists the lock
                    return True
        except OSError:
            continue
    return False


def _main_holder(holders: list[int]) -> int:
    """The holder to name: one whose parent holds nothing (the job's main process, not one of
    its children), the oldest of those."""
    seen = {pid: _parent_and_start(pid) for pid in holders}
    roots = [pid for pid in holders if seen[pid][0] not in seen] or holders
    return min(roots, key=lambda pid: (seen[pid][1], pid))


def _parent_and_start(pid: int) -> tuple[int, int]:
    """(parent pid, start time in clock ticks since boot) of `pid`; (0, 2**63) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rsplit(b")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return 0, 2**63


class JobLock:
    """One exclusive lock per (user, job): LOCKDIR/<job>.<uid>.lock holding "<pid> <start-time>"."""

    def __init__(self, dir_fd: int, dir_path: str, job: str, uid: int) -> None:
        """Open DIR/<job>.<uid>.lock through `dir_fd` (a checked directory, still the caller's)."""
        self.path = os.path.join(dir_path, f"{job}.{uid}.lock")
        self._fd = self._open_lock_file(dir_fd, f"{job}.{uid}.lock", uid)

    @classmethod
    def in_dir(cls, lock_dir: str, job: str, uid: int) -> JobLock:
        """The lock in `lock_dir`, which open_lock_dir checks (and creates) first."""
        dir_fd = open_lock_dir(lock_dir, uid)
        try:
            return cls(dir_fd, lock_dir, job, uid)
        finally:
            os.close(dir_fd)

    def _open_lock_file(self, dir_fd: int, name: str, uid: int) -> int:
        try:
            fd = os.open(name, _LOCK_FLAGS, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise UnsafePathError(f"refusing lock file {self.path}: {_why(exc)}") from None
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = "not a regular file"
        elif info.st_uid != uid:
            problem = f"owned by uid {info.st_uid}, not {uid}"
        elif info.st_nlink != 1:
            problem = "it has other hard links"
        if problem:
            os.close(fd)
            raise UnsafePathError(f"refusing lock file {self.path}: {problem}")
        return fd

    def acquire(self, wait: float) -> bool:
        """Take the lock, retrying for up to `wait` seconds; True once it is held."""
        from filelock import lock_descriptor

        deadline = time.monotonic() + wait
        try:
            while not lock_descriptor(self._fd, blocking=False):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(0.1, remaining))
        except OSError as exc:  # e.g. ENOSYS: a file system without flock
            raise UnsafePathError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        return True

    def record_holder(self, start: float) -> None:
        """Write our pid and the run's start time into the held lock file, for overlap reports."""
        # Fixed width, so each holder overwrites the last one's record without an ftruncate.
        os.pwrite(self._fd, f"{os.getpid():>10} {start:>17.3f}\n".encode(), 0)

    def fileno(self) -> int:
        """The locked descriptor: the job inherits it, so the lock lives as long as the run."""
        return self._fd

    def holder(self) -> Holder:
        """Who holds the lock now: the cronwrap that took it, or what its run left running.

        The record names the cronwrap that took the lock.  If that process no longer holds it
        (it was killed: its job inherited the locked descriptor and keeps the lock), the holder
        is the oldest process that does, found through /proc/PID/fdinfo's `lock:` lines.
        """
        fields = os.pread(self._fd, 64, 0).split()
        pid = int(fields[0]) if fields and fields[0].isdigit() else None
        try:
            started = float(fields[1]) if len(fields) > 1 else None
        except ValueError:
            started = None
        target = os.readlink(f"/proc/self/fd/{self._fd}")
        if pid is None or _holds_lock(pid, target):
            return Holder(pid, started, None)
        others = [int(name) for name in os.listdir("/proc")
                  if name.isdigit() and int(name) != os.getpid()]
        holders = [other for other in others if _holds_lock(other, target)]
        if not holders:  # released since our attempt, or held where we cannot look
            return Holder(pid, started, None)
        return Holder(_main_holder(holders), started, pid)

    def release(self) -> None:
        """Drop the flock, keeping the file open (holder() still reads its record)."""
        from filelock import unlock_descriptor

        unlock_descriptor(self._fd)

    def close(self) -> None:
        """Release the lock (closing the descriptor drops the flock); the file stays for reuse."""
        os.close(self._fd)
