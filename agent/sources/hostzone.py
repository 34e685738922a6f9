"""The zone cron reads crontabs in (TZ, /etc/localtime, or [agent] cron_timezone): its changes.

Debian's cron reads its offset from localtime() every minute (debian/patches/fixes/
Check_for_timezone_changes.patch, bug #1019716), and glibc's localtime() reads TZ and
/etc/localtime again when they changed: a new zone is cron's within a minute, no restart needed.
The agent looks at the same file on every watcher pass and, across restarts, compares it with the
zone it kept in its state; a change is the core's ZoneChanged for every job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .. import cronclock

log = logging.getLogger(__name__)

NAME = "zone"  # this source's name in the state database
ZONE_FILE = "/etc/localtime"
ZONEINFO = "zoneinfo/"  # /etc/localtime links to /usr/share/zoneinfo/NAME on Debian


@dataclass(frozen=True)
class ZoneSeen:
    """Which zone: its name ("" when /etc/localtime is a copy, not a link) and, for a zone file,
    a digest of its bytes (the same name with other rules is another zone)."""

    name: str
    digest: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ZoneSeen | None:
        try:
            data = json.loads(text)
            return cls(str(data["name"]), str(data.get("digest", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def same_rules(self, other: ZoneSeen) -> bool:
        """Whether cron reads times alike in both: the same zone file's bytes (Etc/UTC and UTC,
        a link made again), else the same name."""
        if self.digest and other.digest:
            return self.digest == other.digest
        return self == other

    def text(self) -> str:
        return self.name or "an unnamed zone file"


@dataclass(frozen=True)
class ZoneShift:
    """The zone changed from `old` to `new`, seen at `at`: cron's offset moved from `before` to
    `after` seconds east of UTC."""

    old: ZoneSeen
    new: ZoneSeen
    at: float
    before: int
    after: int


class HostZone:
    """Says when cron's zone is not the one last seen (or kept in the state, `saved`)."""

    def __init__(self, saved: str | None, cron_timezone: str = "", path: str = ZONE_FILE,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.cron_timezone = cron_timezone
        self.path = path
        self.environ = environ
        self.seen = ZoneSeen.from_json(saved) if saved else None
        self._identity: tuple[object, ...] | None = None  # the zone file's, as last read
        self._looked = False  # `seen` was read by this process (its local zone is that one)

    def look(self, now: float) -> ZoneShift | None:
        """The change since the zone last seen, if there is one (the first look at a state that
        kept no zone remembers the current one and reports nothing)."""
        identity = self._file_identity()
        if self._looked and identity == self._identity:
            return None  # the file did not change: nothing to read
        in_process, self._looked, self._identity = self._looked, True, identity
        current = self._current()
        old, self.seen = self.seen, current
        if old is None or old.same_rules(current):
            return None
        before = local_offset(now) if in_process else self._offset_of(old, now)
        cronclock.reload_local_zone()
        after = cronclock.zone_named(self.cron_timezone).offset(now)
        before = after if before is None else before
        log.warning("cron's time zone changed from %s (UTC%+g h) to %s (UTC%+g h): every job's "
                    "next expected start is recomputed in the new zone", old.text(),
                    before / 3600, current.text(), after / 3600)
        return ZoneShift(old, current, now, before, after)

    def _file_identity(self) -> tuple[object, ...]:
        if self.cron_timezone or "TZ" in self.environ:
            return ()  # the zone is named outright: no file to watch
        try:
            st = os.stat(self.path)
        except OSError:
            return (self._link(),)
        return (self._link(), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _link(self) -> str:
        try:
            return os.readlink(self.path)
        except OSError:
            return ""

    def _current(self) -> ZoneSeen:
        if self.cron_timezone:
            return ZoneSeen(self.cron_timezone)
        if "TZ" in self.environ:
            return ZoneSeen(f"TZ={self.environ['TZ']}")
        target = self._link()
        name = target.split(ZONEINFO, 1)[1] if ZONEINFO in target else ""
        try:
            with open(self.path, "rb") as fh:
                return ZoneSeen(name, hashlib.sha256(fh.read(1 << 20)).hexdigest())
        except OSError:
            return ZoneSeen(name or "UTC")  # glibc's zone without /etc/localtime

    @staticmethod
    def _offset_of(zone: ZoneSeen, now: float) -> int | None:
        """A zone kept from before a restart: its named zone's offset at `now` (None: unknown)."""
        name = zone.name.removeprefix("TZ=")
        try:
            return cronclock.zone_named(name).offset(now) if name else None
        except cronclock.UnknownZone:
            return None


def local_offset(now: float) -> int:
    """The process's local offset at `now`, from TZ and /etc/localtime as it read them last."""
    return time.localtime(now).tm_gmtoff
