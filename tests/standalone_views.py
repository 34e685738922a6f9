"""Small MibViews for the standalone tests and benchmark: a sorted dict answered by bisect."""

from __future__ import annotations

import bisect
from typing import Any

from cronwrap.agent.mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, NoSuch, Oid
from pysnmp.proto import rfc1902

# The cronwrap subtree, as CRON-JOBS-MIB defines it (enterprises 8072 9999 9999 71).
SUBTREE: Oid = (1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 71)
JOB_ENTRY: Oid = SUBTREE + (1, 5, 1)
COLUMNS = range(3, 16)  # cronJobRuns .. cronJobRunningPid: 13 readable columns


class SortedView:
    """A MibView over a fixed set of instances."""

    def __init__(self, values: dict[Oid, Any]) -> None:
        self._entries = {oid: Entry(oid, value) for oid, value in values.items()}
        self._order = sorted(self._entries)

    def get(self, oid: Oid) -> Entry | NoSuch:
        entry = self._entries.get(oid)
        if entry is not None:
            return entry
        return NO_SUCH_INSTANCE if oid[: len(JOB_ENTRY) + 1] in _COLUMN_OIDS else NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        position = (bisect.bisect_left if include else bisect.bisect_right)(self._order, start)
        if position == len(self._order):
            return None
        oid = self._order[position]
        return None if end is not None and oid >= end else self._entries[oid]


_COLUMN_OIDS = {JOB_ENTRY + (column,) for column in COLUMNS}


def row_index(owner: str, name: str) -> Oid:
    return (len(owner), *owner.encode(), len(name), *name.encode())


def job_rows(count: int) -> dict[Oid, Any]:
    """`count` jobs of 13 columns each, plus cronJobCount.0."""
    values: dict[Oid, Any] = {SUBTREE + (1, 1, 0): rfc1902.Gauge32(count)}
    for number in range(count):
        index = row_index("root", f"job-{number:05d}")
        for column in COLUMNS:
            values[JOB_ENTRY + (column,) + index] = (
                rfc1902.OctetString(b"") if column in (10, 11, 14)
                else rfc1902.Integer32(number) if column in (8, 9, 13)
                else rfc1902.Counter32(number * column)
            )
    return values
