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
and summed up in one line a minute for the whole root, and never counted as rejected events. The
root is scanned, never listed whole: a pass keeps the names of users' directories only (of one
user at most MAX_DIRS_PER_OWNER fallbacks: the rest wait for later passes), whatever is planted.

The agent serves while it drains: a pass first counts each owner's spooled files (the backlog,
cronSpoolBacklog) and notes the retries among them (`r-<id>.json`: events whose delivery may
have been applied, drained first: each settles an id its owner has in doubt), then takes
slices of at most SLICE files, one owner after another in turn, each slice applied in one
commit, so one owner's backlog delays another's events by one slice at most. Each owner may
have `spool_events_per_second` events applied on average (a token bucket holding one spool
interval's worth); an owner over it is deferred: the files stay where they are for later
passes, and the core logs it once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cronwrap.wrapper.events import MAX_MESSAGE_BYTES, Event, EventError, decode_message
from cronwrap.wrapper.spool import RETRY_PREFIX

from ..config import Config
from ..core import AgentCore, Rejected, Unavailable
from ..lifeevents import Deferral, WorkDeferred
from ..owners import owner_name
from ..ratelimit import OwnerBudget, RateLimitedLog

log = logging.getLogger(__name__)

# the one cause of an owner's spool problems: a line a minute, then a count
OWNER_SPOOL = "a user's spool"
SLICE = 100  # files of one owner taken in one turn, their events applied in one commit
# names of one directory listed at a time: a listing skips the holes unlinked files leave
# (ext4 never shrinks a directory), so listing once a window, not once a slice, keeps the
# drain of a big directory linear
WINDOW = 1000
MAX_SKIPPED_REPORTED = 10  # directories named *.json reported per listing
# fallback directories of one owner a pass takes (and <uid>); the rest are counted and wait
MAX_DIRS_PER_OWNER = 100
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
    """What one slice read from ROOT/<uid>: events in time order, refused names."""

    events: list[Spooled]
    refused: list[tuple[str, str]]  # (name, reason): removed and counted


@dataclass
class Listing:
    """One listing of a spool directory: files (name, whether regular) and directories."""

    files: list[tuple[str, bool]]
    skipped: list[str]  # directories named *.json: left in place
    full: bool  # the window was filled: listing again may find more


@dataclass
class OwnerTurn:
    """An owner's place in a pass: its directories still to drain, files counted and left,
    and the names of its first directory's last listing not taken yet."""

    uid: int
    names: deque[str] = field(default_factory=deque)
    left: int = 0
    listed: deque[tuple[str, bool]] = field(default_factory=deque)
    list_again: bool = True
    retries: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)  # by directory
    retries_kept: int = 0  # in all its directories together: at most WINDOW
    dirs_left_out: int = 0  # directories past MAX_DIRS_PER_OWNER: counted in `left`, not kept


@dataclass
class Junk:
    """Entries of the spool root that are not users' spool directories: counted, one kept."""

    count: int = 0
    example: str = ""

    def add(self, name: str, reason: str) -> None:
        self.count += 1
        self.example = self.example or f"{name!r}: {reason}"


def is_owner_dir_name(name: str) -> bool:
    """`<uid>` (ASCII digits) or a fallback `<uid>.<16 hex>`: a name a user's directory has."""
    return (name.isascii() and name.isdigit()) or is_fallback_name(name)


def is_fallback_name(name: str) -> bool:
    """`<uid>.<16 lowercase hex digits>`: a wrapper's fallback spool directory."""
    uid, dot, suffix = name.partition(".")
    return (bool(dot) and uid.isascii() and uid.isdigit() and len(suffix) == 16
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
        if exc.errno == errno.ENOENT:
            raise
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


def spooled_entries(dir_fd: int) -> Iterator[os.DirEntry[str]]:
    """The entries of a spool directory that may be events: `*.json`, not hidden."""
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                yield entry


def survey(dir_fd: int, max_retries: int = WINDOW) -> tuple[int, list[tuple[str, bool]]]:
    """How many files (directories aside) wait in a spool directory (its share of the backlog),
    and the first `max_retries` retries among them (`r-<id>.json`: name, whether a regular
    file)."""
    count, retries = 0, []
    for entry in spooled_entries(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            continue
        count += 1
        if entry.name.startswith(RETRY_PREFIX) and len(retries) < max_retries:
            retries.append((entry.name, entry.is_file(follow_symlinks=False)))
    return count, retries


def list_spooled(dir_fd: int, window: int, taken: frozenset[str] = frozenset()) -> Listing:
    """The names of at most `window` files of a spool directory, in directory order, leaving
    out those already `taken` (the retries, listed first)."""
    listing = Listing([], [], full=False)
    for entry in spooled_entries(dir_fd):
        if entry.name in taken:
            continue
        if entry.is_dir(follow_symlinks=False):
            if len(listing.skipped) < MAX_SKIPPED_REPORTED:
                listing.skipped.append(entry.name)
            continue
        if len(listing.files) >= window:
            listing.full = True
            break
        listing.files.append((entry.name, entry.is_file(follow_symlinks=False)))
    return listing


def read_owner_spool(dir_fd: int, uid: int, files: list[tuple[str, bool]]) -> OwnerSpool:
    """The events in `files` (name, whether a regular file) of one owner's directory, read
    through `dir_fd`, in time order; a file gone since it was listed is left out."""
    spool = OwnerSpool([], [])
    for name, regular in files:
        if not regular:  # a FIFO or device is never opened
            spool.refused.append((name, "not a regular file (or a symlink)"))
            continue
        try:
            spool.events.append(Spooled(name, read_spooled(dir_fd, name, uid)))
        except FileNotFoundError:
            continue
        except SpoolError as exc:
            spool.refused.append((name, str(exc)))
    spool.events.sort(key=lambda s: (s.event.time, s.event.id))
    return spool


class SpoolDrain:
    """Walks ROOT/<uid>/*.json in slices, owner after owner, applies the events in time order
    within each slice, unlinks what is done."""

    def __init__(self, core: AgentCore, root: Path, config: Config,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.core = core
        self.root = root
        self.limiter = RateLimitedLog("spool")
        per_pass = max(SLICE, round(config.spool_events_per_second * config.spool_interval))
        self.budget = OwnerBudget(per_pass, per_pass / config.spool_events_per_second, clock)
        self.passes = 0

    async def drain(self) -> int:
        """One pass over the spool; returns how many events were applied. Never raises for
        anything a user can put in the spool.

        Their notifications are marked late; those the core held back to coalesce a flood of
        one job's late runs are published at the end of the pass.
        """
        try:
            applied = await self._drain_all()
        finally:
            self.core.flush_late()
        if not self.passes:
            log.info("first spool pass since the start: %d spooled events applied, %d left for "
                     "later passes", applied, sum(self.core.spool_backlog.values()))
        self.passes += 1
        return applied

    async def _drain_all(self) -> int:
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            self.limiter.warning("spool root", f"{self.root}: {exc.strerror or exc}")
            return 0
        try:
            owners = await asyncio.to_thread(self._census, root_fd)
            return await self._take_turns(root_fd, owners)
        finally:
            os.close(root_fd)

    def _census(self, root_fd: int) -> list[OwnerTurn]:
        """Each owner with spooled files, its directories and how many files they hold, by
        uid; at most MAX_DIRS_PER_OWNER fallbacks and WINDOW retries an owner, however many
        fallback directories it made. The root is scanned, not listed: junk anyone planted
        there is counted, never kept."""
        owners: dict[int, OwnerTurn] = {}
        junk = Junk()
        with os.scandir(root_fd) as entries:
            for entry in entries:
                if is_owner_dir_name(entry.name):
                    self._count_owner_dir(root_fd, entry.name, owners, junk)
                else:
                    junk.add(entry.name, "not named <uid> or <uid>.<16 hex digits>")
        if junk.count:  # one line for the lot: junk in the root must not flood the log
            self.limiter.warning("junk in the spool root", f"{self.root}: skipped {junk.count}"
                                 " entries that are not users' spool directories, e.g. "
                                 f"{junk.example}")
        for owner in owners.values():
            owner.names = deque(sorted(owner.names))  # <uid> before its fallbacks
            if owner.dirs_left_out:
                self.limiter.warning(OWNER_SPOOL, f"{self.root}: uid {owner.uid} has "
                                     f"{owner.dirs_left_out} more spool directories than "
                                     f"{MAX_DIRS_PER_OWNER}: left for later passes", owner.uid)
        return sorted(owners.values(), key=lambda owner: owner.uid)

    def _count_owner_dir(self, root_fd: int, name: str, owners: dict[int, OwnerTurn],
                         junk: Junk) -> None:
        """Survey ROOT/<name> into its owner's turn: its files counted, its name and first
        retries kept for <uid> and the owner's first MAX_DIRS_PER_OWNER fallbacks."""
        try:
            dir_fd, uid = open_owner_dir(root_fd, name)
        except SpoolError as exc:
            junk.add(name, str(exc))
            return
        owner = owners.get(uid) or OwnerTurn(uid)
        keep = not is_fallback_name(name) or len(owner.names) < MAX_DIRS_PER_OWNER
        try:
            count, retries = survey(dir_fd, WINDOW - owner.retries_kept if keep else 0)
        except OSError as exc:  # e.g. an I/O error reading the directory: next pass
            self.limiter.warning(OWNER_SPOOL, f"{self.root / name}: skipped this pass: "
                                 f"{exc.strerror or exc}", uid)
            return
        finally:
            os.close(dir_fd)
        if count == 0:
            if is_fallback_name(name):
                _remove_if_empty(root_fd, name)
            return
        owners[uid] = owner
        owner.left += count
        if not keep:
            owner.dirs_left_out += 1
            return
        owner.names.append(name)
        owner.retries[name] = retries
        owner.retries_kept += len(retries)

    async def _take_turns(self, root_fd: int, owners: list[OwnerTurn]) -> int:
        """Slices round-robin across `owners` until each is drained or over its budget."""
        applied = 0
        deferred: dict[int, int] = {}
        turns = deque(owners)
        self._progress(owners, {})
        while turns:
            owner = turns.popleft()
            granted = self._grant(owner.uid, min(SLICE, owner.left))
            if granted == 0:
                deferred[owner.uid] = owner.left
                continue
            done, more = await self._slice(root_fd, owner, granted)
            applied += done
            if more:
                turns.append(owner)
            self._progress(owners, {})
        self._progress(owners, deferred)
        return applied

    def _grant(self, uid: int, wanted: int) -> int:
        """How many files `uid` may have applied now, up to `wanted` (its budget's tokens)."""
        granted = 0
        while granted < wanted and self.budget.take(uid):
            granted += 1
        return granted

    def _progress(self, owners: list[OwnerTurn], deferred: dict[int, int]) -> None:
        """The backlog per owner, and the owners deferred over their drain budget as events."""
        for uid, left in deferred.items():
            self.core.note(WorkDeferred(uid, Deferral.drain, left=left))
        self.core.spool_progress({owner.uid: owner.left for owner in owners})

    async def _slice(self, root_fd: int, owner: OwnerTurn, limit: int) -> tuple[int, bool]:
        """Apply up to `limit` files of the owner's first directory; (events applied, whether
        the owner has files left for another turn in this pass)."""
        name = owner.names[0]
        where = str(self.root / name)
        try:
            dir_fd, uid = open_owner_dir(root_fd, name)
        except SpoolError:  # replaced since the census: the next pass looks again
            self._next_directory(owner)
            return 0, bool(owner.names)
        try:
            if not owner.listed and owner.list_again:
                retries = owner.retries.pop(name, [])
                owner.listed.extend(retries)  # first: their ids are surely still remembered
                listing = await asyncio.to_thread(list_spooled, dir_fd, WINDOW,
                                                  frozenset(name for name, _ in retries))
                owner.listed.extend(listing.files)
                owner.list_again = listing.full
                self._report_skipped(where, uid, listing.skipped)
            files = [owner.listed.popleft() for _ in range(min(limit, len(owner.listed)))]
            spool = await asyncio.to_thread(read_owner_spool, dir_fd, uid, files)
            self._report(where, dir_fd, uid, spool)
            applied, complete = await self._apply(where, dir_fd, uid, spool.events)
        except OSError as exc:  # e.g. an I/O error reading the directory: try again next pass
            self.limiter.warning(OWNER_SPOOL, f"{where}: skipped this pass: "
                                 f"{exc.strerror or exc}", uid)
            return 0, False
        finally:
            os.close(dir_fd)
        owner.left = max(0, owner.left - applied - len(spool.refused))
        if not owner.listed and not owner.list_again:  # this directory is drained
            self._next_directory(owner)
            if complete and is_fallback_name(name):
                _remove_if_empty(root_fd, name)
        return applied, complete and owner.left > 0 and bool(owner.names)

    def _next_directory(self, owner: OwnerTurn) -> None:
        owner.names.popleft()
        owner.listed.clear()
        owner.list_again = True

    def _report(self, where: str, dir_fd: int, uid: int, spool: OwnerSpool) -> None:
        for name, reason in spool.refused:
            self.core.reject()
            self._discard(where, dir_fd, uid, name, reason)

    def _report_skipped(self, where: str, uid: int, directories: list[str]) -> None:
        for name in directories:
            self.limiter.warning(OWNER_SPOOL, f"{where}: {name}: a directory, not a "
                                 "spooled event; left in place", uid)

    async def _apply(self, where: str, dir_fd: int, uid: int, events: list[Spooled]
                     ) -> tuple[int, bool]:
        """Apply a slice in one commit; (events applied, False when the core could not store
        them: their files stay for a later pass)."""
        outcomes = await self.core.submit_all(uid, owner_name(uid), [s.event for s in events],
                                              late=True)
        applied, complete, gone = 0, True, []
        for item, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Unavailable):
                complete = False  # keep the file; try again next pass
            elif isinstance(outcome, Rejected):
                self._discard(where, dir_fd, uid, item.name, str(outcome))
            elif isinstance(outcome, bool):
                # a retry applied first: its wrapper's line may still wait unread in the agent
                # (it stays in doubt until that copy comes); any other file gone is the last copy
                last = not (outcome and item.name.startswith(RETRY_PREFIX))
                if self._unlink(where, dir_fd, uid, item.name) and last:
                    gone.append(item.event.id)
                applied += 1
            else:
                raise outcome
        self.core.settle(uid, gone)
        return applied, complete

    def _discard(self, where: str, dir_fd: int, uid: int, name: str, reason: str) -> None:
        self.limiter.warning(OWNER_SPOOL, f"{where}: {name} refused and removed: {reason}",
                             uid)
        self._unlink(where, dir_fd, uid, name)

    def _unlink(self, where: str, dir_fd: int, uid: int, name: str) -> bool:
        """Remove a spooled file; whether it is gone.  A failure is said through the owner's
        limiter: the name is the user's text, and the user can make every unlink fail (a file
        swapped for a directory once read)."""
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.limiter.warning(OWNER_SPOOL, f"{where}: cannot remove {name}: {exc.strerror}",
                                 uid)
            return False
        return True


def _remove_if_empty(root_fd: int, name: str) -> None:
    """rmdir a drained fallback directory; anything still in it (a wrapper writing) keeps it.

    A wrapper whose fallback directory disappears makes a new one for its next event.
    """
    with contextlib.suppress(OSError):  # not empty, already gone: left for a later pass
        os.rmdir(name, dir_fd=root_fd)
