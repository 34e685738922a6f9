"""Applies events the wrappers spooled while the agent was unreachable, then removes them."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cronwrap.wrapper.events import MAX_MESSAGE_BYTES, Event, EventError, decode_message

from .core import AgentCore, Rejected, Unavailable
from .intake import owner_name
from .ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

MAX_FILES_PER_PASS = 5000


class SpoolError(Exception):
    """A spool directory or file that must not be trusted; str() says why."""


@dataclass(frozen=True)
class Spooled:
    """One spooled file and the event read from it."""

    path: Path
    event: Event


def check_owner_dir(path: Path) -> int:
    """The uid ROOT/<uid> speaks for: lstat, a real dir named after its owner, not shared."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SpoolError("not a directory (or a symlink)")
    if path.name != str(info.st_uid):
        raise SpoolError(f"named {path.name!r} but owned by uid {info.st_uid}")
    if info.st_mode & 0o022:
        raise SpoolError("group or world writable")
    return info.st_uid


def read_spooled(path: Path, uid: int) -> Event:
    """Open without following symlinks; a regular file owned by `uid`, at most one message long."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SpoolError(f"cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SpoolError("not a regular file")
        if info.st_uid != uid:
            raise SpoolError(f"owned by uid {info.st_uid}, not {uid}")
        data = fh.read(MAX_MESSAGE_BYTES + 1)
    try:
        message = decode_message(data)
    except EventError as exc:
        raise SpoolError(str(exc)) from None
    if not isinstance(message, Event):
        raise SpoolError("not an event")
    return message


class SpoolDrain:
    """Walks ROOT/<uid>/*.json, applies the events in time order, unlinks what is done."""

    def __init__(self, core: AgentCore, root: Path) -> None:
        self.core = core
        self.root = root
        self.limiter = RateLimitedLog()

    async def drain(self) -> int:
        """One pass over the spool; returns how many events were applied.

        Their notifications are marked late; those the core held back to coalesce a flood of
        one job's late runs are published at the end of the pass.
        """
        try:
            return await self._drain_all()
        finally:
            self.core.flush_late()

    async def _drain_all(self) -> int:
        applied = 0
        try:
            entries = sorted(self.root.iterdir())
        except OSError as exc:
            self.limiter.warning(f"spool {self.root}", exc.strerror or str(exc))
            return 0
        for directory in entries:
            try:
                uid = check_owner_dir(directory)
            except (SpoolError, OSError) as exc:
                self.limiter.warning(f"spool dir {directory}", f"skipped: {exc}")
                continue
            applied += await self._drain_owner(directory, uid)
        return applied

    async def _drain_owner(self, directory: Path, uid: int) -> int:
        spooled, refused = await asyncio.to_thread(self._read_all, directory, uid)
        for path, reason in refused:
            self.core.reject()
            self._discard(path, reason)
        owner = owner_name(uid)
        applied = 0
        for item in spooled:
            try:
                await self.core.submit(uid, owner, item.event, late=True)
            except Unavailable:
                return applied  # keep the files; try again next pass
            except Rejected as exc:
                self._discard(item.path, str(exc))
                continue
            _unlink(item.path)
            applied += 1
        return applied

    def _files(self, directory: Path) -> list[Path]:
        """At most MAX_FILES_PER_PASS spooled files: a flooded spool cannot exhaust memory."""
        try:
            names = (p for p in directory.iterdir()
                     if p.suffix == ".json" and not p.name.startswith("."))
            return list(itertools.islice(names, MAX_FILES_PER_PASS))
        except OSError as exc:
            self.limiter.warning(f"spool dir {directory}", exc.strerror or str(exc))
            return []

    def _read_all(self, directory: Path, uid: int) -> tuple[list[Spooled], list[tuple[Path, str]]]:
        """In a worker thread: reading thousands of files must not stall live events.

        Returns the events in time order, and the refused files with the reason.
        """
        spooled: list[Spooled] = []
        refused: list[tuple[Path, str]] = []
        for path in self._files(directory):
            try:
                spooled.append(Spooled(path, read_spooled(path, uid)))
            except SpoolError as exc:
                refused.append((path, str(exc)))
        spooled.sort(key=lambda s: (s.event.time, s.event.id))
        return spooled, refused

    def _discard(self, path: Path, reason: str) -> None:
        log.warning("spool file %s refused and removed: %s", path, reason)
        _unlink(path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove spool file %s: %s", path, exc.strerror)
