"""A small in-memory MibView for AgentX tests and benchmarks: a sorted list of OIDs and bisect."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from cronwrap.agent.mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, NoSuch, Oid


class SortedView:
    """Implements the MibView protocol over fixed (oid, value) pairs.

    `objects` are the OID prefixes of the object types (columns/scalars): a Get under one
    of them that finds nothing is noSuchInstance, anywhere else noSuchObject.
    """

    def __init__(self, items: Iterable[tuple[Oid, Any]], objects: Iterable[Oid] = ()) -> None:
        self.entries = {oid: Entry(oid, value) for oid, value in items}
        self.oids = sorted(self.entries)
        self.objects = tuple(objects)

    def get(self, oid: Oid) -> Entry | NoSuch:
        entry = self.entries.get(oid)
        if entry is not None:
            return entry
        if any(oid[: len(obj)] == obj and len(oid) > len(obj) for obj in self.objects):
            return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        oids = self.oids
        i = bisect.bisect_left(oids, start) if include else bisect.bisect_right(oids, start)
        if i == len(oids) or (end is not None and oids[i] >= end):
            return None
        return self.entries[oids[i]]
