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


SHARED_LOG_DIR = "/var/log/cronwrap/users"  # sticky (01733): one private dir per user


def default_log_dir(uid: int, environ: dict[str, str]) -> str:
    """Root: /var/log/cronwrap; users: $XDG_STATE_HOME/cronwrap or ~/.local/state/cronwrap.

    A user whose home is missing or not their own (nobody's /nonexistent, www-data's
    /var/www) gets SHARED_LOG_DIR instead, where the package lets each user keep a private
    directory: their cron jobs log like everyone else's, without a warning on every run.
    """
    if uid == 0:
        return "/var/log/cronwrap"
    state = environ.get("XDG_STATE_HOME", "")
    if state.startswith("/"):
        return os.path.join(state, "cronwrap")
    home = os.path.expanduser("~")
    if not _is_own_directory(home, uid):
        return SHARED_LOG_DIR
    return os.path.join(home, ".local", "state", "cronwrap")


def _is_own_directory(path: str, uid: int) -> bool:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid


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
    """One run's log: the first half of `max_size` streamed to disk, the last half in a ring.

    It holds the job directory's fd it was created in: retention works through that same fd,
    so renaming or swapping components of the log path during the run changes nothing.
    """

    def __init__(self, fd: int, dir_fd: int, path: str, max_size: int) -> None:
        self.fd = fd
        self.dir_fd = dir_fd
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

    def finish(self, keep: int, keep_days: float | None) -> None:
        """Write the kept tail, close the log, then prune the job's directory; closes both fds."""
        try:
            try:
                self._write_tail()
            finally:
                os.close(self.fd)
            prune(self.dir_fd, keep, keep_days, os.path.basename(self.path))
        finally:
            os.close(self.dir_fd)

    def _write_tail(self) -> None:
        if self._tail is None:
            return
        omitted = self._tail.omitted()
        if omitted:
            marker = f"\n[cronwrap: {omitted} bytes omitted by --max-log-size]\n"
            _write_all(self.fd, marker.encode())
        _write_all(self.fd, self._tail.value())


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


def open_job_dir(log_dir: str, user: str, job: str, uid: int, gid: int | None = None,
                 set_modes: bool = True) -> int:
    """An fd on LOGDIR/<user>/<job>, creating each level without following planted symlinks.

    LOGDIR is reached through dirs.open_trusted_dir (nothing another user controls on the
    way); <user> and <job> must belong to `uid`. With `set_modes` the directories get the
    modes this run calls for: the job's directory is private (0700) or, with `gid`, belongs
    to that group with mode 2750 (logs are 0640 and inherit the group); <user> is never
    given to a group: it keeps only search bits for others (0711 once a job is shared), so a
    group reads exactly the jobs shared with it. Without `set_modes` nothing is changed.
    """
    from cronwrap.wrapper.dirs import open_trusted_dir

    top_fd = open_trusted_dir(log_dir, uid, 0o755 if uid == 0 else 0o700)
    try:
        user_fd = _subdir(top_fd, user, uid, log_dir)
    finally:
        os.close(top_fd)
    try:
        if set_modes:
            _limit_user_dir(user_fd, shared=gid is not None, name=user, log_dir=log_dir)
        job_fd = _subdir(user_fd, job, uid, os.path.join(log_dir, user))
    finally:
        os.close(user_fd)
    try:
        if set_modes and gid is not None:
            _share_with_group(job_fd, gid, job, log_dir)
        elif set_modes:
            _set_mode(job_fd, 0o700, job, log_dir)
    except BaseException:
        os.close(job_fd)
        raise
    return job_fd


def open_user_dir(log_dir: str, user: str, uid: int) -> int:
    """An fd on LOGDIR/<user> (the caller's own), checked and created like open_job_dir's."""
    from cronwrap.wrapper.dirs import open_trusted_dir

    top_fd = open_trusted_dir(log_dir, uid, 0o755 if uid == 0 else 0o700)
    try:
        return _subdir(top_fd, user, uid, log_dir)
    finally:
        os.close(top_fd)


LOCKS_SUBDIR = ".locks"  # job names never start with a dot: no job directory can clash


def open_locks_dir(log_dir: str, user: str, uid: int) -> tuple[int, str]:
    """An fd on LOGDIR/<user>/.locks (0700, the caller's own) and its path: the lock fallback.

    Nobody else can create or swap it: LOGDIR/<user> is checked to be the caller's.
    """
    user_fd = open_user_dir(log_dir, user, uid)
    where = os.path.join(log_dir, user)
    try:
        fd = _subdir(user_fd, LOCKS_SUBDIR, uid, where)
    finally:
        os.close(user_fd)
    try:
        _set_mode(fd, 0o700, LOCKS_SUBDIR, where)
    except BaseException:
        os.close(fd)
        raise
    return fd, os.path.join(where, LOCKS_SUBDIR)


def _limit_user_dir(fd: int, shared: bool, name: str, log_dir: str) -> None:
    """No group or world read/write, no set-gid; search bits for all once a job is shared."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    wanted = (mode & 0o711) | 0o700 | (0o711 if shared else 0)
    if mode != wanted:
        _set_mode(fd, wanted, name, log_dir)


def _set_mode(fd: int, mode: int, name: str, log_dir: str) -> None:
    if stat.S_IMODE(os.fstat(fd).st_mode) == mode:
        return
    try:
        os.fchmod(fd, mode)
    except OSError as exc:
        raise UnsafePathError(f"cannot set mode {mode:o} on {name!r} under {log_dir}: "
                              f"{exc.strerror}") from None


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


def _subdir(parent_fd: int, name: str, uid: int, where: str) -> int:
    """An fd on `name` under `parent_fd` (left open), created 0700; refused unless `uid`'s."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (40, 20):  # ELOOP, ENOTDIR
            problem = f"{name!r} under {where} is a symlink or not a directory"
            raise UnsafePathError(problem) from None
        raise UnsafePathError(f"cannot use {name!r} under {where}: {exc.strerror}") from None
    owner = os.fstat(fd).st_uid
    if owner != uid:
        os.close(fd)
        raise UnsafePathError(f"{name!r} under {where} is owned by uid {owner}, not {uid}")
    return fd


def create_run_log(dir_fd: int, dir_path: str, wall_time: float, max_size: int) -> RunLog:
    """Create a fresh 0640 log named for `wall_time`, never reusing or following an existing one.

    The RunLog takes over `dir_fd` (RunLog.finish closes it); on an error it stays the caller's.
    """
    base = log_name(wall_time)
    for attempt in range(100):
        name = base if attempt == 0 else base.replace("Z.log", f"Z-{attempt}.log")
        try:
            fd = os.open(name, _FILE_FLAGS, 0o640, dir_fd=dir_fd)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o640)
        return RunLog(fd, dir_fd, os.path.join(dir_path, name), max_size)
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
