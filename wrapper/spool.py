"""Durable spooling of events the agent could not take: SPOOL_ROOT/<uid>/<event-id>.json."""

from __future__ import annotations

import os
import stat

from cronwrap.wrapper.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def spool_event(root: str, uid: int, event_id: str, wire: bytes) -> str:
    """Write `wire` atomically and durably as ROOT/<uid>/<event_id>.json; return the path.

    Two fsyncs per event, the least that is both atomic and durable: the file's (so the name
    never points at missing data after a crash) and the directory's after the rename (so the
    name itself survives).  They are not shared between a run's events: the started event
    must be durable before the job is spawned (a host that crashes mid-run must still show
    the run as started), the finished one before the wrapper exits; deferring the first
    directory fsync to the finished event would lose every interrupted run's start.
    """
    dir_fd = _open_user_dir(root, uid)
    try:
        temp, final = f".{event_id}.tmp", f"{event_id}.json"
        fd = os.open(temp, _TMP_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            view = memoryview(wire)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temp, dir_fd=dir_fd)
            raise
        os.close(fd)
        os.rename(temp, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return os.path.join(root, str(uid), final)


def _sync_new_entry(root: str) -> None:
    """fsync ROOT so a just-created ROOT/<uid> survives a crash with the event inside it.

    Root can; other users cannot open the 01733 spool root for reading, so their first spooled
    event relies on the filesystem committing the new directory entry on its own.
    """
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_user_dir(root: str, uid: int) -> int:
    """An fd on ROOT/<uid> (0700, owned by `uid`), creating ROOT (01733 as root) if needed."""
    if not os.path.isdir(root):
        try:
            os.mkdir(root, 0o1733 if uid == 0 else 0o700)
            os.chmod(root, 0o1733 if uid == 0 else 0o700)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # ROOT may be 01733
    try:
        try:
            os.mkdir(str(uid), 0o700, dir_fd=root_fd)
            _sync_new_entry(root)
        except FileExistsError:
            pass
        try:
            fd = os.open(str(uid), _DIR_FLAGS, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno in (40, 20):  # ELOOP, ENOTDIR
                raise UnsafePathError(f"{root}/{uid} is a symlink or not a directory") from None
            raise
    finally:
        os.close(root_fd)
    info = os.fstat(fd)
    if info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        raise UnsafePathError(f"{root}/{uid} must be owned by uid {uid} with mode 0700")
    return fd
