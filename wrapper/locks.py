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

    def holder(self) -> tuple[int | None, float | None]:
        """The (pid, start time) the current holder wrote, as far as they can be read."""
        fields = os.pread(self._fd, 64, 0).split()
        pid = int(fields[0]) if fields and fields[0].isdigit() else None
        try:
            started = float(fields[1]) if len(fields) > 1 else None
        except ValueError:
            started = None
        return pid, started

    def close(self) -> None:
        """Release the lock (closing the descriptor drops the flock); the file stays for reuse."""
        os.close(self._fd)
