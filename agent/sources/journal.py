"""Reading chosen entries of the systemd journal from a saved place (systemd-python's Reader).

A Place is where a source stopped: the cursor of the last entry it applied, or, before it has
applied any, the wall-clock time it started following.  `JournalReader.seek` goes back there so
that nothing after it is lost and nothing at or before it is read twice; journald restarts,
rotation and vacuuming are the Reader's business (it watches the journal directories with
inotify, `fileno`).  Not thread-safe: the caller uses one Reader from one thread at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


class JournalUnavailable(Exception):
    """There is no journal this process can read; str() says why in one line."""


@dataclass(frozen=True)
class Place:
    """Where reading resumes: after `cursor`, or else from the entries sent at `since` on."""

    cursor: str | None = None
    since: float | None = None  # wall clock, seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor} if self.cursor else {"since": self.since}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Place:
        return cls(cursor=data.get("cursor"), since=data.get("since"))


@dataclass(frozen=True)
class Entry:
    """The fields of a journal entry a source uses."""

    cursor: str
    time: float  # when the sender logged it (_SOURCE_REALTIME_TIMESTAMP, else journald's time)
    boot: str  # _BOOT_ID, 32 hex digits
    message: str
    pid: int = 0  # _PID: the process that logged it (0: not known)


def entry_from_fields(fields: dict[str, Any]) -> Entry:
    """An Entry from a Reader's entry (converted values) or journalctl's JSON (strings)."""
    sent = fields.get("_SOURCE_REALTIME_TIMESTAMP") or fields["__REALTIME_TIMESTAMP"]
    seconds = sent.timestamp() if isinstance(sent, datetime) else int(sent) / 1e6
    boot = fields.get("_BOOT_ID", "")
    message = fields.get("MESSAGE", "")
    if isinstance(message, bytes):  # not UTF-8: the Reader leaves it as bytes
        message = message.decode(errors="replace")
    pid = fields.get("_PID", 0)
    return Entry(str(fields["__CURSOR"]), seconds, getattr(boot, "hex", boot), str(message),
                 int(pid) if str(pid).isdigit() else 0)


def kernel_boot() -> str:
    """The kernel's boot id as this process sees it (32 hex digits), "" when unknown.  It can
    differ from the journal's: a container's is mounted over /proc, which a service's own /proc
    (systemd's ProtectProc=) does not show."""
    try:
        with open(BOOT_ID_FILE) as fh:
            return fh.read().strip().replace("-", "")
    except OSError:
        return ""


class JournalReader:
    """The journal entries matching `matches` (FIELD, value), read in order: the values given
    for one field are alternatives, and a match of each field given must hold.

    `directory`: read the journal files there instead of the system's journal (a container's
    journal, or a test's private journald).
    """

    def __init__(self, matches: Iterable[tuple[str, str]], directory: str = "") -> None:
        self.matches = tuple(matches)
        self.directory = directory
        self._reader: Any = None
        self._pending: Entry | None = None  # read by seek(), not yet returned

    def open(self) -> None:
        """Open the journal; raise JournalUnavailable when there is none this process can read."""
        try:
            from systemd import journal
        except ImportError as exc:
            raise JournalUnavailable(f"systemd-python is not installed ({exc})") from None
        try:
            reader = journal.Reader(path=self.directory) if self.directory else journal.Reader()
        except OSError as exc:
            where = self.directory or "the system journal"
            raise JournalUnavailable(f"cannot open {where}: {exc.strerror or exc}") from None
        if reader.get_usage() == 0:  # no journal file was opened
            reader.close()
            where = self.directory or "/run/log/journal or /var/log/journal"
            raise JournalUnavailable(f"no journal files readable in {where} (no journald, or "
                                     "the agent is neither root nor in group systemd-journal)")
        for field, value in self.matches:
            reader.add_match(**{field: value})
        self._reader = reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def fileno(self) -> int:
        """Readable when the journal changed: call `take_changes()`, then `read()`."""
        return int(self._reader.fileno())

    def take_changes(self) -> None:
        """Take the journal's change notifications (new files, rotation) so `fileno` is not
        readable again until the next change."""
        self._reader.process()

    def seek(self, place: Place | None) -> Place:
        """Position after `place` (None: after the newest entry); the Place to save now."""
        reader = self._reader
        self._pending = None
        if place is not None and place.cursor:
            reader.seek_cursor(place.cursor)
            first = reader.get_next()
            if first and not reader.test_cursor(place.cursor):
                # the saved entry is gone (vacuumed): this is the first one after it
                self._pending = entry_from_fields(first)
            return place
        if place is not None and place.since is not None:
            reader.seek_realtime(place.since)
            return place
        reader.seek_tail()
        newest = reader.get_previous()
        if newest:
            return Place(cursor=str(newest["__CURSOR"]))
        # no matching entry at all: position by time, as libsystemd (252) skips the first
        # entry appended after a tail with no match
        since = time.time()
        reader.seek_realtime(since)
        return Place(since=since)

    def current_boot(self) -> str:
        """The boot the journal's writer is in (32 hex digits, "" when unknown): the kernel's
        boot id if the journal has entries of it, else the boot of the journal's newest entry
        (the agent's own start is logged before it reads, so that is its boot)."""
        from systemd import journal

        reader = journal.Reader(path=self.directory) if self.directory else journal.Reader()
        try:
            kernel = kernel_boot()
            if kernel:
                reader.add_match(_BOOT_ID=kernel)
                reader.seek_head()
                if reader.get_next():
                    return kernel
                reader.flush_matches()
            reader.seek_tail()
            newest = reader.get_previous()
            boot = newest.get("_BOOT_ID", "") if newest else ""
            return str(getattr(boot, "hex", boot))
        finally:
            reader.close()

    def read(self, limit: int) -> list[Entry]:
        """Up to `limit` entries after the last one returned (or after the seek)."""
        entries = [self._pending] if self._pending is not None else []
        self._pending = None
        while len(entries) < limit:
            fields = self._reader.get_next()
            if not fields:
                break
            entries.append(entry_from_fields(fields))
        return entries
