"""An in-memory, incrementally updated copy of CRON-JOBS-MIB's instances that SNMP front ends read.

MibSnapshot listens to the core (JobTableListener) and answers Get/GetNext (MibView): a dict
from instance OID to Entry for Get, and a sorted list of the same OIDs for GetNext (bisect).
One job change touches only that row's instances; unchanged values keep their Entry, so a
front end's per-Entry cache (pre-encoded varbinds) survives.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

from pyasn1.error import PyAsn1Error

from . import mib
from .mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, NoSuch, Oid
from .model import AgentStats, JobKey, JobRecord, RunRecord

log = logging.getLogger(__name__)

# OIDs of the objects (not instances) we serve: a Get under one of them is noSuchInstance.
_SERVED_OBJECTS: tuple[Oid, ...] = tuple(mib.scalar_oid(s) for s in mib.Scalar) + tuple(
    mib.column_oid(c) for c in mib.VALUE_COLUMNS
) + tuple(mib.run_column_oid(c) for c in mib.RUN_VALUE_COLUMNS)
_OBJECT_OID_LENGTHS = sorted({len(o) for o in _SERVED_OBJECTS})
_SERVED_OBJECT_SET = frozenset(_SERVED_OBJECTS)


class MibSnapshot:
    """Both a JobTableListener (fed by the core) and a MibView (read by the front ends)."""

    def __init__(self) -> None:
        self._oids: list[Oid] = []  # every instance, sorted
        self._entries: dict[Oid, Entry] = {}
        self._rows: dict[JobKey, Oid] = {}  # job -> its row index
        self._jobs: dict[Oid, JobKey] = {}  # row index -> its job
        self._runs: dict[JobKey, tuple[RunRecord, ...]] = {}  # the history each job's rows show
        self._cursor = 0  # position of the last get_next answer: where a walk goes on from

    def __len__(self) -> int:
        return len(self._oids)

    # --- JobTableListener ---------------------------------------------------------------------

    def job_changed(self, record: JobRecord) -> None:
        """Insert or update the record's row; a record the MIB cannot carry is logged, skipped."""
        try:
            index = mib.row_index(record.owner, record.key.name)
            values = mib.row_values(record)
        except (ValueError, PyAsn1Error) as exc:
            log.error(
                "job %r of %r left out of cronJobTable: %s", record.key.name, record.owner, exc
            )
            return
        holder = self._jobs.get(index, record.key)
        if holder != record.key:
            log.error(
                "job %r of uid %d left out of cronJobTable: uid %d already has owner %r, name %r",
                record.key.name,
                record.key.owner_uid,
                holder.owner_uid,
                record.owner,
                record.key.name,
            )
            return
        old_index = self._rows.get(record.key)
        if old_index is not None and old_index != index:
            self.job_removed(record.key)  # the owner's name changed: the row moves
        self._rows[record.key] = index
        self._jobs[index] = record.key
        for column, value in values:
            self._put(mib.column_oid(column) + index, value)
        self._show_runs(record.key, index, record.history)

    def _show_runs(self, key: JobKey, index: Oid, history: tuple[RunRecord, ...]) -> None:
        """Make cronJobRunTable hold exactly `history` for the row at `index`."""
        shown = self._runs.get(key, ())
        if shown is history:
            return
        for run in set(shown) - set(history):
            self._delete_run(index, run)
        for run in history:
            try:
                values = mib.run_values(run)
            except PyAsn1Error as exc:
                log.error("run %d of job %r left out of cronJobRunTable: %s", run.number,
                          key.name, exc)
                continue
            number = (mib.run_number(run),)
            for column, value in values:
                self._put(mib.run_column_oid(column) + index + number, value)
        if history:
            self._runs[key] = history
        else:
            self._runs.pop(key, None)

    def _delete_run(self, index: Oid, run: RunRecord) -> None:
        for column in mib.RUN_VALUE_COLUMNS:
            self._delete(mib.run_column_oid(column) + index + (mib.run_number(run),))

    def job_removed(self, key: JobKey) -> None:
        index = self._rows.pop(key, None)
        if index is None:
            return
        del self._jobs[index]
        for column in mib.VALUE_COLUMNS:
            self._delete(mib.column_oid(column) + index)
        for run in self._runs.pop(key, ()):
            self._delete_run(index, run)

    def stats_changed(self, stats: AgentStats) -> None:
        for scalar, value in mib.scalar_values(stats):
            self._put(mib.scalar_oid(scalar) + (0,), value)

    def _put(self, oid: Oid, value: Any) -> None:
        old = self._entries.get(oid)
        if old is None:
            bisect.insort(self._oids, oid)
        elif old.value is value or (type(old.value) is type(value) and old.value == value):
            return  # unchanged: keep the Entry and its cache
        self._entries[oid] = Entry(oid, value)

    def _delete(self, oid: Oid) -> None:
        if self._entries.pop(oid, None) is not None:
            del self._oids[bisect.bisect_left(self._oids, oid)]

    # --- MibView ------------------------------------------------------------------------------

    def get(self, oid: Oid) -> Entry | NoSuch:
        entry = self._entries.get(oid)
        if entry is not None:
            return entry
        for n in _OBJECT_OID_LENGTHS:
            if oid[:n] in _SERVED_OBJECT_SET:
                return NO_SUCH_INSTANCE
        return NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        oids = self._oids
        i = self._cursor
        if i < len(oids) and oids[i] == start:
            # A walk asks for the successor of the previous answer: no search needed.  A stale
            # cursor (rows inserted or removed since) fails this check and falls back to bisect.
            i += 0 if include else 1
        else:
            i = (bisect.bisect_left if include else bisect.bisect_right)(oids, start)
        if i == len(oids):
            return None
        oid = oids[i]
        if end is not None and oid >= end:
            return None
        self._cursor = i
        return self._entries[oid]
