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


def open_private_dir(path: str, uid: int, mode: int = 0o700) -> int:
    """Create `path` (mode `mode`) if missing; return an fd on it, refusing anything untrustworthy.

    Refused: a symlink, a non-directory, a directory owned by someone other than `uid` or root,
    or one others may write to without the sticky bit.
    """
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except FileExistsError:
        pass  # a dangling symlink or a file: reported below
    except OSError as exc:
        raise UnsafePathError(f"cannot create directory {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise UnsafePathError(f"refusing directory {path}: {_why(exc)}") from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid not in (uid, 0):
        problem = f"owned by uid {info.st_uid}, not {uid}"
    elif info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        problem = "writable by others and not sticky"
    if problem:
        os.close(fd)
        raise UnsafePathError(f"refusing directory {path}: {problem}")
    return fd


def _why(exc: OSError) -> str:
    if exc.errno in (40, 20):  # ELOOP, ENOTDIR: O_NOFOLLOW met a symlink, or not a directory
        return "it is a symlink or not a directory"
    return exc.strerror or str(exc)


class JobLock:
    """One exclusive lock per (user, job): LOCKDIR/<job>.<uid>.lock holding "<pid> <start-time>"."""

    def __init__(self, lock_dir: str, job: str, uid: int) -> None:
        self.path = os.path.join(lock_dir, f"{job}.{uid}.lock")
        dir_fd = open_private_dir(lock_dir, uid)
        try:
            self._fd = self._open_lock_file(dir_fd, f"{job}.{uid}.lock", uid)
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
