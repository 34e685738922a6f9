"""Applies events the wrappers spooled while the agent was unreachable, then removes them.

Any user may write in the spool root, so every file operation goes through directory file
descriptors: ROOT is opened once per pass, ROOT/<uid> with O_NOFOLLOW|O_DIRECTORY and checked
with fstat, and each file is listed, opened, checked and unlinked relative to that descriptor.
No path is resolved twice, so renaming or swapping names in the spool root can only ever
affect one's own events. What a user's directory may hold and what happens to the rest:

- `<id>.json` regular files owned by the directory's uid: applied, then removed;
- any other regular file, symlink, FIFO, socket or device named `*.json`: refused, counted in
  cronEventsRejected, removed (unlinked, never opened through a symlink, never read from a FIFO);
- a directory named `*.json`: left in place (root never walks into a user's tree), not counted;
- names not ending in `.json` or starting with `.` (wrappers' temporary files): ignored.

A user's directory is `<uid>`, or `<uid>.<16 hex digits>`: the fallback a wrapper makes when
another user squatted `<uid>` (wrapper/spool.py). Both must belong to that uid; a fallback
directory is removed (rmdir: only if empty) once a pass has applied everything in it.

Problems are logged at most once a minute per user directory, with a count of the rest; entries
of the spool root that are not users' directories (junk anyone may create there) are skipped
and summed up in one line a minute for the whole root, and never counted as rejected events.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cronwrap.wrapper.events import MAX_MESSAGE_BYTES, Event, EventError, decode_message

from ..core import AgentCore, Rejected, Unavailable
from ..owners import owner_name
from ..ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

MAX_FILES_PER_PASS = 5000
OWNER_SPOOL = "spool"  # the one cause of an owner's spool problems: a line a minute, then a count
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class SpoolError(Exception):
    """A spool directory or file that must not be trusted; str() says why."""


@dataclass(frozen=True)
class Spooled:
    """One spooled file (its name in the owner's directory) and the event read from it."""

    name: str
    event: Event


@dataclass
class OwnerSpool:
    """What one pass read from ROOT/<uid>: events in time order, refused and skipped names."""

    events: list[Spooled]
    refused: list[tuple[str, str]]  # (name, reason): removed and counted
    skipped: list[str]  # directories named *.json: left in place


def is_fallback_name(name: str) -> bool:
    """`<uid>.<16 lowercase hex digits>`: a wrapper's fallback spool directory."""
    uid, dot, suffix = name.partition(".")
    return (bool(dot) and uid.isdigit() and len(suffix) == 16
            and all(c in "0123456789abcdef" for c in suffix))


def open_owner_dir(root_fd: int, name: str) -> tuple[int, int]:
    """An fd on ROOT/<name> and the uid it speaks for: a real directory, never a symlink, owned
    by the uid it is named after (`<uid>` or a fallback `<uid>.<hex>`), writable by nobody
    else."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise SpoolError("not a directory (or a symlink)") from None
        raise SpoolError(f"cannot open: {exc.strerror}") from None
    info = os.fstat(fd)
    problem = None
    named_for = name.partition(".")[0] if is_fallback_name(name) else name
    if named_for != str(info.st_uid):
        problem = f"named {name!r} but owned by uid {info.st_uid}"
    elif info.st_mode & 0o022:
        problem = "group or world writable"
    if problem is not None:
        os.close(fd)
        raise SpoolError(problem)
    return fd, info.st_uid


def read_spooled(dir_fd: int, name: str, uid: int) -> Event:
    """The event in `name` under `dir_fd`: a regular file owned by `uid`, one message long."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpoolError("a symlink") from None
        raise SpoolError(f"cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpoolError("not a regular file")
        if info.st_uid != uid:
            raise SpoolError(f"owned by uid {info.st_uid}, not {uid}")
        data = os.read(fd, MAX_MESSAGE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        message = decode_message(data)
    except EventError as exc:
        raise SpoolError(str(exc)) from None
    if not isinstance(message, Event):
        raise SpoolError("not an event")
    return message


def read_owner_spool(dir_fd: int, uid: int) -> OwnerSpool:
    """At most MAX_FILES_PER_PASS entries of one owner's directory, read through `dir_fd`."""
    spool = OwnerSpool([], [], [])
    with os.scandir(dir_fd) as entries:
        names = (e for e in entries if e.name.endswith(".json") and not e.name.startswith("."))
        for entry in itertools.islice(names, MAX_FILES_PER_PASS):
            if entry.is_dir(follow_symlinks=False):
                spool.skipped.append(entry.name)
                continue
            if not entry.is_file(follow_symlinks=False):  # a FIFO or device is never opened
                spool.refused.append((entry.name, "not a regular file (or a symlink)"))
                continue
            try:
                spool.events.append(Spooled(entry.name, read_spooled(dir_fd, entry.name, uid)))
            except SpoolError as exc:
                spool.refused.append((entry.name, str(exc)))
    spool.events.sort(key=lambda s: (s.event.time, s.event.id))
    return spool


class SpoolDrain:
    """Walks ROOT/<uid>/*.json, applies the events in time order, unlinks what is done."""

    def __init__(self, core: AgentCore, root: Path) -> None:
        self.core = core
        self.root = root
        self.limiter = RateLimitedLog("spool")

    async def drain(self) -> int:
        """One pass over the spool; returns how many events were applied. Never raises for
        anything a user can put in the spool.

        Their notifications are marked late; those the core held back to coalesce a flood of
        one job's late runs are published at the end of the pass.
        """
        try:
            return await self._drain_all()
        finally:
            self.core.flush_late()

    async def _drain_all(self) -> int:
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            self.limiter.warning("spool root", f"{self.root}: {exc.strerror or exc}")
            return 0
        try:
            names = sorted(os.listdir(root_fd))
            applied = 0
            skipped: list[str] = []
            for name in names:
                applied += await self._drain_owner(root_fd, name, skipped)
        finally:
            os.close(root_fd)
        if skipped:  # one line for the lot: junk in the root must not flood the log
            self.limiter.warning("junk in the spool root", f"{self.root}: skipped {len(skipped)} "
                                 f"entries that are not users' spool directories, e.g. "
                                 f"{skipped[0]}")
        return applied

    async def _drain_owner(self, root_fd: int, name: str, skipped: list[str]) -> int:
        where = str(self.root / name)
        try:
            dir_fd, uid = open_owner_dir(root_fd, name)
        except SpoolError as exc:
            skipped.append(f"{name!r}: {exc}")
            return 0
        try:
            spool = await asyncio.to_thread(read_owner_spool, dir_fd, uid)
            self._report(where, dir_fd, uid, spool)
            applied = await self._apply(where, dir_fd, uid, spool.events)
            if applied == len(spool.events) and is_fallback_name(name):
                _remove_if_empty(root_fd, name)
            return applied
        except OSError as exc:  # e.g. an I/O error reading the directory: try again next pass
            self.limiter.warning(OWNER_SPOOL, f"{where}: skipped this pass: "
                                 f"{exc.strerror or exc}", uid)
            return 0
        finally:
            os.close(dir_fd)

    def _report(self, where: str, dir_fd: int, uid: int, spool: OwnerSpool) -> None:
        for name, reason in spool.refused:
            self.core.reject()
            self._discard(where, dir_fd, uid, name, reason)
        for name in spool.skipped:
            self.limiter.warning(OWNER_SPOOL, f"{where}/{name}: a directory, not a "
                                 "spooled event; left in place", uid)

    async def _apply(self, where: str, dir_fd: int, uid: int, events: list[Spooled]) -> int:
        owner = owner_name(uid)
        applied = 0
        for item in events:
            try:
                await self.core.submit(uid, owner, item.event, late=True)
            except Unavailable:
                return applied  # keep the files; try again next pass
            except Rejected as exc:
                self._discard(where, dir_fd, uid, item.name, str(exc))
                continue
            _unlink(where, dir_fd, item.name)
            applied += 1
        return applied

    def _discard(self, where: str, dir_fd: int, uid: int, name: str, reason: str) -> None:
        self.limiter.warning(OWNER_SPOOL, f"{where}/{name} refused and removed: "
                             f"{reason}", uid)
        _unlink(where, dir_fd, name)


def _remove_if_empty(root_fd: int, name: str) -> None:
    """rmdir a drained fallback directory; anything still in it (a wrapper writing) keeps it.

    A wrapper whose fallback directory disappears makes a new one for its next event.
    """
    with contextlib.suppress(OSError):  # not empty, already gone: left for a later pass
        os.rmdir(name, dir_fd=root_fd)


def _unlink(where: str, dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("%s: cannot remove %s: %s", where, name, exc.strerror)
