"""Durable spooling of events the agent could not take: SPOOL_ROOT/<uid>/<event-id>.json.

Anyone may create names in the spool root (01733), so another user may create `<uid>` (a
directory of theirs, a symlink) before its owner ever spools. Such a directory is never
used: the events go to a fallback `<uid>.<16 hex digits>` directory instead, created fresh
with a random name nobody can predict or take first. The agent drains `<uid>` and
`<uid>.<hex>` directories alike (each must belong to that uid) and removes a fallback
directory once it is empty; a Spool that finds its fallback gone makes a new one.
"""

from __future__ import annotations

import os
import stat

from cronwrap.wrapper.errors import UnsafePathError

RETRY_PREFIX = "r-"  # an event the agent may have applied already: drained first
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Spool:
    """One user's spooled events under ROOT: in ROOT/<uid>, else in a fallback of its own."""

    def __init__(self, root: str, uid: int) -> None:
        self.root = root
        self.uid = uid
        self.dir_name = str(uid)  # becomes the fallback's name once <uid> proves unusable

    def write(self, event_id: str, wire: bytes, retry: bool = False) -> str:
        """Write `wire` atomically and durably as <dir>/<event_id>.json; return the path.

        `retry`: the agent may have applied the event already (its reply was lost): the file
        is named `r-<event_id>.json`, which the agent drains before the owner's other files.

        Two fsyncs per event, the least that is both atomic and durable: the file's (so the
        name never points at missing data after a crash) and the directory's after the rename
        (so the name itself survives).  They are not shared between a run's events: the
        started event must be durable before the job is spawned (a host that crashes mid-run
        must still show the run as started), the finished one before the wrapper exits.
        """
        for _ in range(3):
            dir_fd = self._open_dir()
            try:
                name = _write_event(dir_fd, event_id, wire, retry)
                return os.path.join(self.root, self.dir_name, name)
            except FileNotFoundError:
                if self.dir_name == str(self.uid):
                    raise
                self.dir_name = ""  # the agent emptied and removed our fallback: a new one
            finally:
                os.close(dir_fd)
        raise UnsafePathError(f"{self.root}: fallback spool directories keep disappearing")

    def _open_dir(self) -> int:
        root_fd = _open_root(self.root, self.uid)
        try:
            if self.dir_name == str(self.uid):
                try:
                    return _open_own_dir(root_fd, self.dir_name, self.uid, create=True)
                except UnsafePathError:
                    pass  # squatted or planted by another user: never used
            elif self.dir_name:
                try:
                    return _open_own_dir(root_fd, self.dir_name, self.uid, create=False)
                except FileNotFoundError:
                    pass
            self.dir_name = f"{self.uid}.{os.urandom(8).hex()}"
            fd = _open_own_dir(root_fd, self.dir_name, self.uid, create=True)
        finally:
            os.close(root_fd)
        return fd


def spool_event(root: str, uid: int, event_id: str, wire: bytes) -> str:
    """Spool one event (Spool(root, uid).write); return the file's path."""
    return Spool(root, uid).write(event_id, wire)


def _write_event(dir_fd: int, event_id: str, wire: bytes, retry: bool) -> str:
    temp, final = f".{event_id}.tmp", f"{RETRY_PREFIX if retry else ''}{event_id}.json"
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
    return final


def _open_root(root: str, uid: int) -> int:
    """An O_PATH fd on ROOT (which may be 01733), creating it (01733 as root) if needed."""
    if not os.path.isdir(root):
        try:
            os.mkdir(root, 0o1733 if uid == 0 else 0o700)
            os.chmod(root, 0o1733 if uid == 0 else 0o700)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass
    return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _open_own_dir(root_fd: int, name: str, uid: int, create: bool) -> int:
    """An fd on ROOT/<name>: a real directory of `uid`'s, 0700 (UnsafePathError otherwise)."""
    if create:
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
            _sync_new_entry(root_fd)
        except FileExistsError:
            pass
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno in (40, 20):  # ELOOP, ENOTDIR
            raise UnsafePathError(f"spool directory {name} is a symlink or not a directory") \
                from None
        raise
    info = os.fstat(fd)
    if info.st_uid != uid:
        os.close(fd)
        raise UnsafePathError(f"spool directory {name} belongs to uid {info.st_uid}, not {uid}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.fchmod(fd, 0o700)  # our own directory: only we may write in it
    return fd


def _sync_new_entry(root_fd: int) -> None:
    """fsync ROOT so a just-created ROOT/<name> survives a crash with the event inside it.

    Root can; other users cannot open the 01733 spool root for reading, so their first spooled
    event relies on the filesystem committing the new directory entry on its own.
    """
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root_fd)
    except PermissionError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
