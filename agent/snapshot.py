"""The job table as the SNMP front ends read it: one row per job, instances derived when asked.

MibSnapshot listens to the core (JobTableListener) and answers Get/GetNext (MibView).  It keeps
one small `_Row` per job (the core's immutable JobRecord and the job's valid kept runs), one
sorted list of row indexes and, beside it, the rows' records in the same order (a GetNext reads
the record it lands on without going through the row: at 10,000 jobs every object touched is a
likely cache miss); an instance's OID and value are derived from them when a front end asks,
so memory grows by rows, not by rows times columns.  The MIB's objects under the module
(scalars, cronJobTable's and cronJobRunTable's columns) form a short sorted list: a Get is a
bisect in it and a dictionary hit, a GetNext a bisect in it and one in the row indexes.  A new
column costs no memory and no code here (mib.VALUE_COLUMNS, mibvalues.column_raw).
"""

from __future__ import annotations

import bisect
import enum
import logging
from dataclasses import dataclass
from typing import Any

from pyasn1.error import PyAsn1Error

from . import mib, mibvalues
from .mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, NoSuch, Oid
from .model import AgentStats, JobKey, JobRecord, RunRecord

log = logging.getLogger(__name__)


class _Kind(enum.Enum):
    scalar = "scalar"
    column = "column"
    run_column = "run_column"


@dataclass(frozen=True)
class _Object:
    """A readable object of the MIB: a scalar or a column, whose instances we serve."""

    oid: Oid
    kind: _Kind
    member: mib.Scalar | mib.Column | mib.RunColumn
    value_class: type[Any]


def _served_objects() -> tuple[_Object, ...]:
    objects = [_Object(mib.scalar_oid(s), _Kind.scalar, s, mib.SCALAR_SYNTAX[s].value_class)
               for s in mib.Scalar]
    objects += [_Object(mib.column_oid(c), _Kind.column, c, mib.COLUMN_SYNTAX[c].value_class)
                for c in mib.VALUE_COLUMNS]
    objects += [_Object(mib.run_column_oid(c), _Kind.run_column, c,
                        mib.RUN_COLUMN_SYNTAX[c].value_class) for c in mib.RUN_VALUE_COLUMNS]
    return tuple(sorted(objects, key=lambda o: o.oid))


# No object's OID is a prefix of another's: an OID lies under at most one of them.
_OBJECTS = _served_objects()
_OBJECT_OIDS: list[Oid] = [o.oid for o in _OBJECTS]
_INSTANCE = (0,)  # a scalar's one instance


@dataclass(slots=True)
class _Row:
    """One job's row: its index, its record as the core keeps it, and its runs the MIB can
    carry, in cronJobRunNumber order."""

    index: Oid
    key: JobKey
    record: JobRecord
    runs: tuple[RunRecord, ...]


_LONGEST_INDEX = 2 + mib.OWNER_SIZE[1] + mib.NAME_SIZE[1]


def _sort_key(suffix: Oid) -> bytes:
    """A row index's sub-identifiers (each 0..255: lengths and ASCII) as bytes, which sort as
    the OIDs do and compare far faster than tuples of ints.  A suffix with a larger
    sub-identifier gets a key that sorts where the suffix would: after every index sharing
    its part before that sub-identifier."""
    try:
        return bytes(suffix)
    except ValueError:
        cut = next(i for i, subid in enumerate(suffix) if subid > 255)
        return bytes(suffix[:cut]) + b"\xff" * _LONGEST_INDEX


class MibSnapshot:
    """Both a JobTableListener (fed by the core) and a MibView (read by the front ends)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, _Row] = {}  # row index (as bytes, _sort_key) -> row
        self._indexes: list[bytes] = []  # every row index, sorted
        self._records: list[JobRecord] = []  # the rows' records in the order of _indexes
        self._run_indexes: list[bytes] = []  # the indexes of rows with runs, sorted
        self._index_of: dict[JobKey, bytes] = {}
        self._stats: dict[mib.Scalar, int | bytes] = {}
        # the last column instance get_next answered: (its OID, its object's position in
        # _OBJECTS, its row's in _indexes); None once rows came or went since
        self._walk: tuple[Oid, int, int] | None = None
        self._run_count = 0

    def __len__(self) -> int:
        """How many instances are served."""
        return (len(self._stats) + len(self._rows) * len(mib.VALUE_COLUMNS)
                + self._run_count * len(mib.RUN_VALUE_COLUMNS))

    # --- JobTableListener ---------------------------------------------------------------------

    def job_changed(self, record: JobRecord) -> None:
        """Insert or update the record's row; a record the MIB cannot carry is logged, skipped."""
        try:
            index = bytes(mibvalues.row_index(record.owner, record.key.name))
            mibvalues.row_values(record)  # the MIB's constraints, checked once per change
        except (ValueError, PyAsn1Error) as exc:
            log.error(
                "job %r of %r left out of cronJobTable: %s", record.key.name, record.owner, exc
            )
            return
        row = self._rows.get(index)
        if row is not None and row.key != record.key:
            log.error(
                "job %r of uid %d left out of cronJobTable: uid %d already has owner %r, name %r",
                record.key.name,
                record.key.owner_uid,
                row.key.owner_uid,
                record.owner,
                record.key.name,
            )
            return
        old_index = self._index_of.get(record.key)
        if old_index is not None and old_index != index:
            self.job_removed(record.key)  # the owner's name changed: the row moves
            row = None
        if row is None:
            row = self._rows[index] = _Row(tuple(index), record.key, record, ())
            self._index_of[record.key] = index
            self._insert_row(index, record)
            shown: tuple[RunRecord, ...] = ()
        else:
            shown = row.record.history
            self._records[bisect.bisect_left(self._indexes, index)] = record
        row.record = record
        if record.history is not shown:
            self._show_runs(row, index, record.history)

    def _insert_row(self, index: bytes, record: JobRecord) -> None:
        at = bisect.bisect_left(self._indexes, index)
        self._indexes.insert(at, index)
        self._records.insert(at, record)
        self._walk = None

    def _show_runs(self, row: _Row, index: bytes, history: tuple[RunRecord, ...]) -> None:
        """Make the row's cronJobRunTable rows the runs of `history` the MIB can carry."""
        runs = tuple(sorted((run for run in history if self._carries(row.key, run)),
                            key=mibvalues.run_number))
        if bool(runs) != bool(row.runs):
            if runs:
                bisect.insort(self._run_indexes, index)
            else:
                del self._run_indexes[bisect.bisect_left(self._run_indexes, index)]
        self._run_count += len(runs) - len(row.runs)
        row.runs = runs

    @staticmethod
    def _carries(key: JobKey, run: RunRecord) -> bool:
        try:
            mibvalues.run_values(run)
        except PyAsn1Error as exc:
            log.error("run %d of job %r left out of cronJobRunTable: %s", run.number, key.name,
                      exc)
            return False
        return True

    def job_removed(self, key: JobKey) -> None:
        index = self._index_of.pop(key, None)
        if index is None:
            return
        row = self._rows.pop(index)
        at = bisect.bisect_left(self._indexes, index)
        del self._indexes[at], self._records[at]
        self._walk = None
        if row.runs:
            del self._run_indexes[bisect.bisect_left(self._run_indexes, index)]
            self._run_count -= len(row.runs)

    def stats_changed(self, stats: AgentStats) -> None:
        self._stats = dict(mibvalues.scalar_raws(stats))

    # --- MibView ------------------------------------------------------------------------------

    def get(self, oid: Oid) -> Entry | NoSuch:
        position = bisect.bisect_right(_OBJECT_OIDS, oid) - 1
        if position < 0 or oid[: len(_OBJECT_OIDS[position])] != _OBJECT_OIDS[position]:
            return NO_SUCH_OBJECT
        obj = _OBJECTS[position]
        suffix = oid[len(obj.oid):]
        raw: int | bytes | None = None
        if obj.kind is _Kind.scalar:
            raw = self._stats.get(obj.member) if suffix == _INSTANCE else None  # type: ignore
        elif obj.kind is _Kind.column:
            row = self._rows.get(_sort_key(suffix))
            raw = None if row is None else mibvalues.column_raw(row.record, obj.member)  # type: ignore
        else:
            run = self._run_at(suffix)
            raw = None if run is None else mibvalues.run_raw(run, obj.member)  # type: ignore
        if raw is None:
            return NO_SUCH_INSTANCE
        return Entry(oid, raw=raw, value_class=obj.value_class)

    def _run_at(self, suffix: Oid) -> RunRecord | None:
        row = self._rows.get(_sort_key(suffix[:-1]))
        if row is None or not row.runs:
            return None
        position = bisect.bisect_left(row.runs, suffix[-1], key=mibvalues.run_number)
        if position < len(row.runs) and mibvalues.run_number(row.runs[position]) == suffix[-1]:
            return row.runs[position]
        return None

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        walk = self._walk
        if walk is not None and not include and start == walk[0]:
            # A walk asks for the successor of the previous answer: no search needed.
            position = walk[1]
            found = self._column_entry(_OBJECTS[position], position, walk[2] + 1)
        else:
            position = bisect.bisect_right(_OBJECT_OIDS, start) - 1
            found = None
            if position >= 0 and start[: len(_OBJECT_OIDS[position])] == _OBJECT_OIDS[position]:
                found = self._first_in(position, start[len(_OBJECT_OIDS[position]):], include)
        position += 1
        while found is None and position < len(_OBJECTS):
            if end is not None and _OBJECT_OIDS[position] >= end:
                return None
            found = self._first_in(position, None, True)
            position += 1
        if found is None or (end is not None and found.oid >= end):
            return None
        return found

    def _first_in(self, position: int, after: Oid | None, include: bool) -> Entry | None:
        """The first instance of the object at `position` whose suffix follows `after` (None:
        its very first)."""
        obj = _OBJECTS[position]
        if obj.kind is _Kind.scalar:
            raw = self._stats.get(obj.member)  # type: ignore[call-overload]
            if raw is None or not (after is None or after < _INSTANCE
                                   or (include and after == _INSTANCE)):
                return None
            return Entry(obj.oid + _INSTANCE, raw=raw, value_class=obj.value_class)
        if obj.kind is _Kind.column:
            i = 0 if after is None else (bisect.bisect_left if include else bisect.bisect_right)(
                self._indexes, _sort_key(after))
            return self._column_entry(obj, position, i)
        return self._first_run(obj, after, include)

    def _column_entry(self, obj: _Object, position: int, i: int) -> Entry | None:
        """The column's instance in the i-th row, remembered as where a walk goes on from."""
        if i >= len(self._records):
            return None
        entry = Entry(obj.oid + tuple(self._indexes[i]), value_class=obj.value_class,
                      raw=mibvalues.column_raw(self._records[i], obj.member))  # type: ignore[arg-type]
        self._walk = (entry.oid, position, i)
        return entry

    def _first_run(self, obj: _Object, after: Oid | None, include: bool) -> Entry | None:
        """cronJobRunTable's instances are (row index, run number): no row index is a prefix
        of another (both parts are length-prefixed), so they sort as (index, number) pairs."""
        indexes = self._run_indexes
        i = 0
        if after is not None:
            i = bisect.bisect_right(indexes, _sort_key(after))
            holder = self._rows[indexes[i - 1]] if i else None
            if holder is not None and after[: len(holder.index)] == holder.index:
                number = after[len(holder.index):]
                runs = holder.runs
                j = (bisect.bisect_left if include else bisect.bisect_right)(
                    runs, number, key=lambda run: (mibvalues.run_number(run),))
                if j < len(runs):
                    return self._run_entry(obj, holder, runs[j])
        if i == len(indexes):
            return None
        row = self._rows[indexes[i]]
        return self._run_entry(obj, row, row.runs[0])

    @staticmethod
    def _run_entry(obj: _Object, row: _Row, run: RunRecord) -> Entry:
        return Entry(obj.oid + row.index + (mibvalues.run_number(run),),
                     value_class=obj.value_class,
                     raw=mibvalues.run_raw(run, obj.member))  # type: ignore[arg-type]
