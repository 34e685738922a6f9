"""Per-run log files: safe creation under LOGDIR/<user>/<job>/, size capping, retention, listing."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections import deque

from cronwrap.wrapper.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# A run log's name with each ASCII digit turned into 9: `20261125T030000.123Z.log`, or with
# `-N` (1-3 digits) before `.log`.  Compared as shapes, not by a regex: compiling one costs
# every cron run a few hundred microseconds.
_LOG_SHAPES = frozenset(f"99999999T999999.999Z{n}.log" for n in ("", "-9", "-99", "-999"))
_AS_NINES = str.maketrans("012345678", "999999999")


def is_log_name(name: str) -> bool:
    return name.translate(_AS_NINES) in _LOG_SHAPES


def default_log_dir(uid: int, environ: dict[str, str]) -> str:
    """Root: /var/log/cronwrap; users: $XDG_STATE_HOME/cronwrap or ~/.local/state/cronwrap."""
    if uid == 0:
        return "/var/log/cronwrap"
    state = environ.get("XDG_STATE_HOME", "")
    if not state.startswith("/"):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "cronwrap")


def log_name(wall_time: float) -> str:
    """`20261125T030000.123Z.log` for a UTC wall-clock time."""
    millis = int(wall_time * 1000) % 1000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(wall_time)) + f".{millis:03d}Z.log"


class TailRing:
    """The last `limit` bytes of a stream, kept as a deque of chunks: bounded memory, O(1)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= self.limit:
            first = self._chunks.popleft()
            self._size -= len(first)
            self.dropped += len(first)

    def value(self) -> bytes:
        data = b"".join(self._chunks)
        excess = max(0, len(data) - self.limit)
        return data[excess:]

    def omitted(self) -> int:
        return self.dropped + max(0, self._size - self.limit)


class RunLog:
    """One run's log: the first half of `max_size` streamed to disk, the last half in a ring."""

    def __init__(self, fd: int, path: str, max_size: int) -> None:
        self.fd = fd
        self.path = path
        self._head_room = max_size // 2 if max_size else -1
        self._tail = TailRing(max_size - max_size // 2) if max_size else None

    def write(self, data: bytes) -> None:
        if self._head_room < 0:
            _write_all(self.fd, data)
            return
        if self._head_room:
            head = data[: self._head_room]
            _write_all(self.fd, head)
            self._head_room -= len(head)
            data = data[len(head):]
        if data and self._tail is not None:
            self._tail.add(data)

    def close(self) -> None:
        if self._tail is not None:
            omitted = self._tail.omitted()
            if omitted:
                marker = f"\n[cronwrap: {omitted} bytes omitted by --max-log-size]\n"
                _write_all(self.fd, marker.encode())
            _write_all(self.fd, self._tail.value())
        os.close(self.fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def group_id(group: str) -> int:
    """The gid of a group name or number; UnsafePathError if there is no such group."""
    if group.isdigit():
        return int(group)
    import grp  # only when --log-group is used

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise UnsafePathError(f"--log-group: no group named {group!r}") from None


def open_job_dir(log_dir: str, user: str, job: str, uid: int, gid: int | None = None) -> int:
    """An fd on LOGDIR/<user>/<job>, creating each level without following planted symlinks.

    With `gid`, both levels belong to that group with mode 2750, so the group may read the
    logs (files are 0640 and inherit the group from the set-gid directory).
    """
    os.makedirs(log_dir, mode=0o755 if uid == 0 else 0o700, exist_ok=True)
    fd = os.open(log_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for name in (user, job):
        try:
            fd = _subdir(fd, name, uid, log_dir)
            if gid is not None:
                _share_with_group(fd, gid, name, log_dir)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _share_with_group(fd: int, gid: int, name: str, log_dir: str) -> None:
    info = os.fstat(fd)
    try:
        if info.st_gid != gid:
            os.fchown(fd, -1, gid)
        if stat.S_IMODE(info.st_mode) != 0o2750:
            os.fchmod(fd, 0o2750)
    except OSError as exc:
        raise UnsafePathError(
            f"cannot give {name!r} under {log_dir} to group {gid}: {exc.strerror}") from None


def _subdir(parent_fd: int, name: str, uid: int, log_dir: str) -> int:
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o750, dir_fd=parent_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (40, 20):  # ELOOP, ENOTDIR
            problem = f"{name!r} under {log_dir} is a symlink or not a directory"
            raise UnsafePathError(problem) from None
        raise
    finally:
        os.close(parent_fd)
    if os.fstat(fd).st_uid != uid:
        os.close(fd)
        raise UnsafePathError(f"{name!r} under {log_dir} is not owned by uid {uid}")
    return fd


def create_run_log(dir_fd: int, dir_path: str, wall_time: float, max_size: int) -> RunLog:
    """Create a fresh 0640 log named for `wall_time`, never reusing or following an existing one."""
    base = log_name(wall_time)
    for attempt in range(100):
        name = base if attempt == 0 else base.replace("Z.log", f"Z-{attempt}.log")
        try:
            fd = os.open(name, _FILE_FLAGS, 0o640, dir_fd=dir_fd)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o640)
        return RunLog(fd, os.path.join(dir_path, name), max_size)
    raise FileExistsError(f"no free log name for {base} in {dir_path}")


def prune(dir_fd: int, keep: int, keep_days: float | None, current: str) -> None:
    """Delete all but the `keep` newest logs and those older than `keep_days`; never `current`."""
    names = sorted((n for n in os.listdir(dir_fd) if is_log_name(n)), reverse=True)
    cutoff = time.time() - keep_days * 86400 if keep_days else None
    for index, name in enumerate(names):
        if name == current:
            continue
        too_many = keep > 0 and index >= keep
        if not too_many and cutoff is not None:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            too_many = stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff
        if too_many:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
