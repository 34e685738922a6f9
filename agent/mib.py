"""CRON-JOBS-MIB as the code sees it: OIDs, syntaxes, and encoders from the model to SNMP values.

Everything here mirrors mibs/CRON-JOBS-MIB.txt, which stays the source of truth:
tests/test_mib.py compiles the MIB with pysmi and fails when anything here disagrees with it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cronwrap.wrapper.events import safe_text
from pyasn1.type import constraint, namedval
from pysnmp.proto import rfc1902

from .config import MAX_RUN_HISTORY
from .mibview import Oid
from .model import (
    RESULTS,
    RUN_RESULTS,
    AgentStats,
    CronLogState,
    JobRecord,
    JobSource,
    JobState,
    Notification,
    NotificationKind,
    RunRecord,
)

# The MIB this module mirrors: mibs/ in the source tree, the package cronwrap.mibs installed.
MIB_FILE = Path(__file__).resolve().parent.parent / "mibs" / "CRON-JOBS-MIB.txt"

# The arcs a MODULE-IDENTITY may hang the module under, by the name it uses for them.
KNOWN_ARCS: dict[str, Oid] = {
    "iso": (1,),
    "enterprises": (1, 3, 6, 1, 4, 1),
    "netSnmpExperimental": (1, 3, 6, 1, 4, 1, 8072, 9999),
    "netSnmpPlaypen": (1, 3, 6, 1, 4, 1, 8072, 9999, 9999),
}
_MODULE_IDENTITY = re.compile(
    r"^\w[\w-]*\s+MODULE-IDENTITY\b(?:(?!::=).)*::=\s*\{\s*([A-Za-z][\w-]*)((?:\s+\d+)+)\s*\}",
    re.S | re.M)


def root_of(mib_text: str) -> Oid:
    """The OID a MIB's MODULE-IDENTITY assigns, e.g. `::= { netSnmpPlaypen 71 }`.

    Raises ValueError when there is none or it hangs under an arc not in KNOWN_ARCS.
    """
    found = _MODULE_IDENTITY.search(mib_text)
    if found is None:
        raise ValueError("no MODULE-IDENTITY with an assignment like ::= { enterprises 99999 }")
    parent, numbers = found[1], tuple(int(n) for n in found[2].split())
    if parent not in KNOWN_ARCS:
        raise ValueError(f"MODULE-IDENTITY hangs under {parent!r}; known arcs: "
                         + ", ".join(KNOWN_ARCS))
    return KNOWN_ARCS[parent] + numbers


# The module's root: the one place it is written is the MIB's MODULE-IDENTITY (docs/mib.md).
ROOT: Oid = root_of(MIB_FILE.read_text(encoding="ascii"))
NOTIFICATIONS: Oid = ROOT + (0,)
OBJECTS: Oid = ROOT + (1,)
NOTIFY_OBJECTS: Oid = ROOT + (2,)
CONFORMANCE: Oid = ROOT + (3,)
JOB_TABLE: Oid = OBJECTS + (5,)
JOB_ENTRY: Oid = JOB_TABLE + (1,)
RUN_TABLE: Oid = OBJECTS + (30,)
RUN_ENTRY: Oid = RUN_TABLE + (1,)

# Varbinds that front ends put before a notification's objects (SNMPv2-MIB).
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID: Oid = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

UINT32_MAX = 2**32 - 1
OWNER_SIZE = (1, 32)
NAME_SIZE = (1, 64)
TEXT_SIZE = (0, 255)


class Scalar(enum.IntEnum):
    """The agent-wide scalars: sub-identifiers under cronJobsObjects."""

    cronJobCount = 1
    cronEventsAccepted = 2
    cronEventsRejected = 3
    cronAgentStartTime = 4
    cronNotificationsSuppressed = 6
    cronLogSource = 13
    cronLogEntries = 14
    cronJobTableLastChange = 15
    cronJobRunHistorySize = 21
    cronEventsDeferred = 40
    cronStatusDeferred = 41
    cronLogLinesLeftOut = 42
    cronSpoolBacklog = 43


class Column(enum.IntEnum):
    """The columns of cronJobEntry: sub-identifiers under cronJobEntry."""

    cronJobOwner = 1
    cronJobName = 2
    cronJobRuns = 3
    cronJobFailures = 4
    cronJobOverlaps = 5
    cronJobTimeouts = 6
    cronJobMisses = 7
    cronJobLastExitStatus = 8
    cronJobLastSignal = 9
    cronJobLastStart = 10
    cronJobLastSuccess = 11
    cronJobLastDuration = 12
    cronJobState = 13
    cronJobNextExpected = 14
    cronJobRunningPid = 15
    cronJobLogProblem = 16
    cronJobPausedUntil = 17
    cronJobSource = 24
    cronJobStartProblem = 25
    cronJobLastResult = 26
    cronJobCountersSince = 27
    cronJobLastMessage = 36


class NotifyObject(enum.IntEnum):
    """The accessible-for-notify objects: sub-identifiers under cronJobsNotifyObjects."""

    cronNotifyJobOwner = 1
    cronNotifyJobName = 2
    cronNotifyLate = 3
    cronNotifyRunTime = 4
    cronNotifyRunCount = 5
    cronNotifyRequester = 6
    cronNotifyExitStatus = 9
    cronNotifySignal = 10
    cronNotifyEventTime = 11
    cronNotifyStarts = 17
    cronNotifyExpectedStarts = 18
    cronNotifyBurstSince = 19
    cronNotifyMessage = 20


class RunColumn(enum.IntEnum):
    """The columns of cronJobRunEntry: sub-identifiers under cronJobRunEntry."""

    cronJobRunNumber = 1
    cronJobRunStart = 2
    cronJobRunDuration = 3
    cronJobRunExitStatus = 4
    cronJobRunSignal = 5
    cronJobRunResult = 6
    cronJobRunLate = 7


INDEX_COLUMNS: tuple[Column, ...] = (Column.cronJobOwner, Column.cronJobName)
# The readable columns, in OID order: one instance each per row.
VALUE_COLUMNS: tuple[Column, ...] = tuple(c for c in Column if c not in INDEX_COLUMNS)
# cronJobRunEntry's readable columns (its index: the job's row index, then cronJobRunNumber).
RUN_VALUE_COLUMNS: tuple[RunColumn, ...] = tuple(
    c for c in RunColumn if c is not RunColumn.cronJobRunNumber)


def scalar_oid(scalar: Scalar) -> Oid:
    return OBJECTS + (int(scalar),)


def column_oid(column: Column) -> Oid:
    return JOB_ENTRY + (int(column),)


def run_column_oid(column: RunColumn) -> Oid:
    return RUN_ENTRY + (int(column),)


def notify_object_oid(obj: NotifyObject) -> Oid:
    return NOTIFY_OBJECTS + (int(obj),)


# --- value types: pysnmp classes refined with the MIB's constraints -------------------------


class JobStateValue(rfc1902.Integer32):
    """cronJobState: INTEGER { ok(1) ... retired(10), wrapperLost(12) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in JobState)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in JobState))


class LastResultValue(rfc1902.Integer32):
    """cronJobLastResult: cronJobState's outcomes only (never an activity)."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in RESULTS)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in RESULTS))


class JobSourceValue(rfc1902.Integer32):
    """cronJobSource: INTEGER { wrapper(1), cronLog(2) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in JobSource)
    )
    namedValues = namedval.NamedValues(("wrapper", 1), ("cronLog", 2))


class CronLogStateValue(rfc1902.Integer32):
    """cronLogSource: INTEGER { disabled(1), following(2), unavailable(3) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in CronLogState)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in CronLogState))


class RunResultValue(rfc1902.Integer32):
    """cronJobRunResult: how a finished run ended, INTEGER { ok(1), failed(2), timedOut(5) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in RUN_RESULTS)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in RUN_RESULTS))


class HistorySizeValue(rfc1902.Unsigned32):
    """cronJobRunHistorySize: Unsigned32 (0..100)."""

    subtypeSpec = rfc1902.Unsigned32.subtypeSpec + constraint.ValueRangeConstraint(
        0, MAX_RUN_HISTORY)


class RunExitStatusValue(rfc1902.Integer32):
    """cronJobRunExitStatus: Integer32 (0..255)."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.ValueRangeConstraint(0, 255)


class TruthValue(rfc1902.Integer32):
    """SNMPv2-TC's TruthValue: INTEGER { true(1), false(2) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(1, 2)
    namedValues = namedval.NamedValues(("true", 1), ("false", 2))


class RunCountValue(rfc1902.Unsigned32):
    """cronNotifyRunCount, cronJobRunNumber: Unsigned32 (1..4294967295)."""

    subtypeSpec = rfc1902.Unsigned32.subtypeSpec + constraint.ValueRangeConstraint(1, UINT32_MAX)


class ExitStatusValue(rfc1902.Integer32):
    """cronJobLastExitStatus: Integer32 (-1..255)."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.ValueRangeConstraint(-1, 255)


class SignalValue(rfc1902.Integer32):
    """cronJobLastSignal: Integer32 (0..255)."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.ValueRangeConstraint(0, 255)


class DateAndTimeOrNever(rfc1902.OctetString):
    """CronDateAndTimeOrNever: OCTET STRING (SIZE (0 | 8 | 11))."""

    subtypeSpec = rfc1902.OctetString.subtypeSpec + constraint.ConstraintsUnion(
        constraint.ValueSizeConstraint(0, 0),
        constraint.ValueSizeConstraint(8, 8),
        constraint.ValueSizeConstraint(11, 11),
    )


class OwnerValue(rfc1902.OctetString):
    """cronJobOwner / cronNotifyJobOwner: DisplayString (SIZE (1..32))."""

    subtypeSpec = rfc1902.OctetString.subtypeSpec + constraint.ValueSizeConstraint(*OWNER_SIZE)


class NameValue(rfc1902.OctetString):
    """cronJobName / cronNotifyJobName: DisplayString (SIZE (1..64))."""

    subtypeSpec = rfc1902.OctetString.subtypeSpec + constraint.ValueSizeConstraint(*NAME_SIZE)


class TextValue(rfc1902.OctetString):
    """cronJobLogProblem: DisplayString (SIZE (0..255))."""

    subtypeSpec = rfc1902.OctetString.subtypeSpec + constraint.ValueSizeConstraint(*TEXT_SIZE)


@dataclass(frozen=True)
class ObjectSyntax:
    """An OBJECT-TYPE's SYNTAX as the MIB writes it, and the class of the values the agent sends.

    `enums`, `value_range` and `sizes` restate the MIB's constraints as plain data; the value
    class enforces the same constraints (tests check both against the compiled MIB).
    """

    mib_type: str  # the type name in the SYNTAX clause ("INTEGER" for an enumeration)
    value_class: type[Any]
    value_range: tuple[int, int] | None = None
    sizes: tuple[tuple[int, int], ...] | None = None
    enums: tuple[tuple[str, int], ...] | None = None


_TIME = ObjectSyntax("CronDateAndTimeOrNever", DateAndTimeOrNever, sizes=((0, 0), (8, 8), (11, 11)))
_COUNTER = ObjectSyntax("Counter32", rfc1902.Counter32)
_OWNER = ObjectSyntax("DisplayString", OwnerValue, sizes=(OWNER_SIZE,))
_NAME = ObjectSyntax("DisplayString", NameValue, sizes=(NAME_SIZE,))

SCALAR_SYNTAX: dict[Scalar, ObjectSyntax] = {
    Scalar.cronJobCount: ObjectSyntax("Gauge32", rfc1902.Gauge32),
    Scalar.cronEventsAccepted: _COUNTER,
    Scalar.cronEventsRejected: _COUNTER,
    Scalar.cronAgentStartTime: _TIME,
    Scalar.cronNotificationsSuppressed: _COUNTER,
    Scalar.cronLogSource: ObjectSyntax(
        "INTEGER", CronLogStateValue, enums=tuple((s.name, int(s)) for s in CronLogState)),
    Scalar.cronLogEntries: _COUNTER,
    Scalar.cronJobTableLastChange: _TIME,
    Scalar.cronJobRunHistorySize: ObjectSyntax(
        "Unsigned32", HistorySizeValue, value_range=(0, MAX_RUN_HISTORY)),
    Scalar.cronEventsDeferred: _COUNTER,
    Scalar.cronStatusDeferred: _COUNTER,
    Scalar.cronLogLinesLeftOut: _COUNTER,
    Scalar.cronSpoolBacklog: ObjectSyntax("Gauge32", rfc1902.Gauge32),
}

COLUMN_SYNTAX: dict[Column, ObjectSyntax] = {
    Column.cronJobOwner: _OWNER,
    Column.cronJobName: _NAME,
    Column.cronJobRuns: _COUNTER,
    Column.cronJobFailures: _COUNTER,
    Column.cronJobOverlaps: _COUNTER,
    Column.cronJobTimeouts: _COUNTER,
    Column.cronJobMisses: _COUNTER,
    Column.cronJobLastExitStatus: ObjectSyntax("Integer32", ExitStatusValue, value_range=(-1, 255)),
    Column.cronJobLastSignal: ObjectSyntax("Integer32", SignalValue, value_range=(0, 255)),
    Column.cronJobLastStart: _TIME,
    Column.cronJobLastSuccess: _TIME,
    Column.cronJobLastDuration: ObjectSyntax("Unsigned32", rfc1902.Unsigned32),
    Column.cronJobState: ObjectSyntax(
        "INTEGER", JobStateValue, enums=tuple((s.name, int(s)) for s in JobState)
    ),
    Column.cronJobNextExpected: _TIME,
    Column.cronJobRunningPid: ObjectSyntax("Unsigned32", rfc1902.Unsigned32),
    Column.cronJobLogProblem: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
    Column.cronJobPausedUntil: _TIME,
    Column.cronJobSource: ObjectSyntax(
        "INTEGER", JobSourceValue, enums=(("wrapper", 1), ("cronLog", 2))),
    Column.cronJobStartProblem: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
    Column.cronJobLastResult: ObjectSyntax(
        "INTEGER", LastResultValue, enums=tuple((s.name, int(s)) for s in RESULTS)),
    Column.cronJobCountersSince: _TIME,
    Column.cronJobLastMessage: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
}

RUN_COLUMN_SYNTAX: dict[RunColumn, ObjectSyntax] = {
    RunColumn.cronJobRunNumber: ObjectSyntax(
        "Unsigned32", RunCountValue, value_range=(1, UINT32_MAX)),
    RunColumn.cronJobRunStart: _TIME,
    RunColumn.cronJobRunDuration: ObjectSyntax("Unsigned32", rfc1902.Unsigned32),
    RunColumn.cronJobRunExitStatus: ObjectSyntax(
        "Integer32", RunExitStatusValue, value_range=(0, 255)),
    RunColumn.cronJobRunSignal: ObjectSyntax("Integer32", SignalValue, value_range=(0, 255)),
    RunColumn.cronJobRunResult: ObjectSyntax(
        "INTEGER", RunResultValue, enums=tuple((s.name, int(s)) for s in RUN_RESULTS)),
    RunColumn.cronJobRunLate: ObjectSyntax(
        "TruthValue", TruthValue, enums=(("true", 1), ("false", 2))),
}

NOTIFY_OBJECT_SYNTAX: dict[NotifyObject, ObjectSyntax] = {
    NotifyObject.cronNotifyJobOwner: _OWNER,
    NotifyObject.cronNotifyJobName: _NAME,
    NotifyObject.cronNotifyLate: ObjectSyntax(
        "TruthValue", TruthValue, enums=(("true", 1), ("false", 2))),
    NotifyObject.cronNotifyRunTime: _TIME,
    NotifyObject.cronNotifyRunCount: ObjectSyntax(
        "Unsigned32", RunCountValue, value_range=(1, UINT32_MAX)),
    NotifyObject.cronNotifyRequester: _OWNER,
    NotifyObject.cronNotifyExitStatus: ObjectSyntax(
        "Integer32", ExitStatusValue, value_range=(-1, 255)),
    NotifyObject.cronNotifySignal: ObjectSyntax("Integer32", SignalValue, value_range=(0, 255)),
    NotifyObject.cronNotifyEventTime: _TIME,
    NotifyObject.cronNotifyStarts: ObjectSyntax("Unsigned32", rfc1902.Unsigned32),
    NotifyObject.cronNotifyExpectedStarts: ObjectSyntax("Unsigned32", rfc1902.Unsigned32),
    NotifyObject.cronNotifyBurstSince: _TIME,
    NotifyObject.cronNotifyMessage: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
}

# --- notifications ---------------------------------------------------------------------------

NOTIFICATION_NUMBER: dict[NotificationKind, int] = {
    NotificationKind.failed: 1,
    NotificationKind.overlapped: 2,
    NotificationKind.timed_out: 3,
    NotificationKind.missed: 4,
    NotificationKind.overrunning: 5,
    NotificationKind.recovered: 6,
    NotificationKind.log_failing: 7,
    NotificationKind.log_recovered: 8,
    NotificationKind.forgotten: 9,
    NotificationKind.retired: 10,
    NotificationKind.wrapper_lost: 11,
    NotificationKind.not_started: 15,
    NotificationKind.cleared: 17,
    NotificationKind.runs_too_often: 23,
}

_OWNER_AND_NAME = (NotifyObject.cronNotifyJobOwner, NotifyObject.cronNotifyJobName)
# Whether the run was learnt late, when it started, how many runs the notification stands for.
RUN_OBJECTS: tuple[NotifyObject, ...] = (
    NotifyObject.cronNotifyLate, NotifyObject.cronNotifyRunTime, NotifyObject.cronNotifyRunCount)

# Each NOTIFICATION-TYPE's OBJECTS clause, in order.
NOTIFICATION_OBJECTS: dict[NotificationKind, tuple[NotifyObject | Column, ...]] = {
    NotificationKind.failed: _OWNER_AND_NAME
    + (
        Column.cronJobLastExitStatus,
        Column.cronJobLastSignal,
        Column.cronJobLastDuration,
        Column.cronJobFailures,
    ),
    NotificationKind.overlapped: _OWNER_AND_NAME
    + (Column.cronJobRunningPid, Column.cronJobOverlaps),
    NotificationKind.timed_out: _OWNER_AND_NAME
    + (Column.cronJobLastDuration, Column.cronJobTimeouts),
    NotificationKind.missed: _OWNER_AND_NAME + (Column.cronJobLastStart, Column.cronJobMisses),
    NotificationKind.overrunning: _OWNER_AND_NAME
    + (Column.cronJobLastStart, Column.cronJobRunningPid),
    NotificationKind.recovered: _OWNER_AND_NAME
    + (Column.cronJobLastDuration, Column.cronJobFailures),
    NotificationKind.log_failing: _OWNER_AND_NAME + (Column.cronJobLogProblem,) + RUN_OBJECTS,
    NotificationKind.log_recovered: _OWNER_AND_NAME + RUN_OBJECTS,
    NotificationKind.forgotten: _OWNER_AND_NAME
    + (Column.cronJobRuns, Column.cronJobFailures, NotifyObject.cronNotifyRequester),
    NotificationKind.retired: _OWNER_AND_NAME + (Column.cronJobLastStart, Column.cronJobMisses),
    NotificationKind.wrapper_lost: _OWNER_AND_NAME
    + (Column.cronJobLastStart, Column.cronJobRunningPid),
    NotificationKind.cleared: _OWNER_AND_NAME
    + (Column.cronJobState, Column.cronJobLastResult, Column.cronJobLastDuration,
       NotifyObject.cronNotifyExitStatus, NotifyObject.cronNotifySignal,
       NotifyObject.cronNotifyEventTime),
    NotificationKind.runs_too_often: _OWNER_AND_NAME
    + (NotifyObject.cronNotifyStarts, NotifyObject.cronNotifyExpectedStarts,
       NotifyObject.cronNotifyBurstSince, NotifyObject.cronNotifyEventTime,
       Column.cronJobState, Column.cronJobLastResult),
    NotificationKind.not_started: _OWNER_AND_NAME
    + (NotifyObject.cronNotifyExitStatus, Column.cronJobStartProblem, Column.cronJobFailures)
    + RUN_OBJECTS + (NotifyObject.cronNotifyEventTime, Column.cronJobState,
                     Column.cronJobLastResult),
}


# The finished run's own exit status and signal (version 2).
EXIT_OBJECTS: tuple[NotifyObject, ...] = (
    NotifyObject.cronNotifyExitStatus, NotifyObject.cronNotifySignal)
# When the event happened, and the row's state and last outcome as it left them (version 2).
STATE_OBJECTS: tuple[NotifyObject | Column, ...] = (
    NotifyObject.cronNotifyEventTime, Column.cronJobState, Column.cronJobLastResult)

# The finished run's own last line of output (--last-message; "" when not sent).
MESSAGE_OBJECTS: tuple[NotifyObject, ...] = (NotifyObject.cronNotifyMessage,)

# Appended after the OBJECTS clause of the notifications defined before (RFC 3416 4.2.6 lets an
# agent add varbinds; the MIB's DESCRIPTIONs say so): positions of the OBJECTS stay put.
APPENDED_OBJECTS: dict[NotificationKind, tuple[NotifyObject | Column, ...]] = {
    NotificationKind.failed: RUN_OBJECTS + EXIT_OBJECTS + MESSAGE_OBJECTS + STATE_OBJECTS,
    NotificationKind.overlapped: RUN_OBJECTS + STATE_OBJECTS,
    NotificationKind.timed_out: RUN_OBJECTS + EXIT_OBJECTS + MESSAGE_OBJECTS + STATE_OBJECTS,
    NotificationKind.recovered: RUN_OBJECTS + EXIT_OBJECTS + STATE_OBJECTS,
    NotificationKind.missed: STATE_OBJECTS,
    NotificationKind.overrunning: STATE_OBJECTS,
    NotificationKind.log_failing: STATE_OBJECTS,
    NotificationKind.log_recovered: STATE_OBJECTS,
    NotificationKind.wrapper_lost: STATE_OBJECTS,
    NotificationKind.forgotten: STATE_OBJECTS,
    NotificationKind.retired: STATE_OBJECTS,
}


def notification_oid(kind: NotificationKind) -> Oid:
    """The NOTIFICATION-TYPE's OID: the value of snmpTrapOID.0."""
    return NOTIFICATIONS + (NOTIFICATION_NUMBER[kind],)


# --- encoders --------------------------------------------------------------------------------


def date_and_time(ts: float | None) -> bytes:
    """A CronDateAndTimeOrNever value: the 11-octet DateAndTime in UTC, or b"" for None."""
    if ts is None:
        return b""
    t = datetime.fromtimestamp(ts, UTC)
    return bytes(
        (t.year >> 8, t.year & 0xFF, t.month, t.day, t.hour, t.minute, t.second)
        + (t.microsecond // 100_000, ord("+"), 0, 0)
    )


def _index_octets(what: str, text: str, size: tuple[int, int]) -> bytes:
    try:
        octets = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {text!r} is not ASCII") from None
    if not size[0] <= len(octets) <= size[1]:
        raise ValueError(f"{what} {text!r} is not {size[0]}..{size[1]} characters long")
    return octets


def row_index(owner: str, name: str) -> Oid:
    """The row's index sub-identifiers: owner then name, each length-prefixed (not IMPLIED).

    Raises ValueError when owner is not 1..32 or name not 1..64 ASCII characters.
    """
    o = _index_octets("owner", owner, OWNER_SIZE)
    n = _index_octets("job name", name, NAME_SIZE)
    return (len(o), *o, len(n), *n)


@lru_cache(maxsize=8192)
def _value(cls: type[Any], raw: int | bytes) -> Any:
    """A shared immutable value object: equal values (0, -1, b"", states...) are built once."""
    return cls(raw)


def display_text(text: str | None) -> bytes:
    """A DisplayString (SIZE (0..255)) value: printable ASCII (events.safe_text), cut to 255."""
    return safe_text(text or "", TEXT_SIZE[1]).encode("ascii")


def _counter(n: int) -> int:
    return n % 2**32  # Counter32 wraps


def _unsigned(n: int | None) -> int:
    return 0 if n is None else min(max(n, 0), UINT32_MAX)


_COLUMN_RAW: dict[Column, Callable[[JobRecord], int | bytes]] = {
    Column.cronJobRuns: lambda r: _counter(r.runs),
    Column.cronJobFailures: lambda r: _counter(r.failures),
    Column.cronJobOverlaps: lambda r: _counter(r.overlaps),
    Column.cronJobTimeouts: lambda r: _counter(r.timeouts),
    Column.cronJobMisses: lambda r: _counter(r.misses),
    Column.cronJobLastExitStatus: lambda r: (
        -1 if r.last_exit_status is None else r.last_exit_status
    ),
    Column.cronJobLastSignal: lambda r: r.last_signal,
    Column.cronJobLastStart: lambda r: date_and_time(r.last_start),
    Column.cronJobLastSuccess: lambda r: date_and_time(r.last_success),
    Column.cronJobLastDuration: lambda r: _unsigned(r.last_duration_ms),
    Column.cronJobState: lambda r: int(r.shown_state),
    Column.cronJobNextExpected: lambda r: date_and_time(r.next_expected),
    Column.cronJobRunningPid: lambda r: _unsigned(r.running_pid),
    Column.cronJobLogProblem: lambda r: display_text(r.log_problem),
    Column.cronJobPausedUntil: lambda r: date_and_time(r.paused_until),
    Column.cronJobSource: lambda r: int(r.source),
    Column.cronJobStartProblem: lambda r: display_text(r.start_problem),
    Column.cronJobLastResult: lambda r: int(r.last_result),
    Column.cronJobCountersSince: lambda r: date_and_time(r.counters_since),
    Column.cronJobLastMessage: lambda r: display_text(r.last_message),
}


def column_raw(record: JobRecord, column: Column) -> int | bytes:
    """The value of one readable column for `record`, as an int or bytes (unchecked)."""
    return _COLUMN_RAW[column](record)


def column_value(record: JobRecord, column: Column) -> Any:
    """The value of one readable column for `record`, as the MIB's type."""
    return _value(COLUMN_SYNTAX[column].value_class, _COLUMN_RAW[column](record))


def row_values(record: JobRecord) -> list[tuple[Column, Any]]:
    """The readable columns of the record's row, in OID order, as pysnmp values.

    Raises pyasn1's ValueConstraintError when a field is outside the MIB's range.
    """
    return [(c, column_value(record, c)) for c in VALUE_COLUMNS]


_RUN_RAW: dict[RunColumn, Callable[[RunRecord], int | bytes]] = {
    RunColumn.cronJobRunStart: lambda r: date_and_time(r.start),
    RunColumn.cronJobRunDuration: lambda r: _unsigned(r.duration_ms),
    RunColumn.cronJobRunExitStatus: lambda r: r.exit_status,
    RunColumn.cronJobRunSignal: lambda r: r.signal,
    RunColumn.cronJobRunResult: lambda r: int(r.result),
    RunColumn.cronJobRunLate: lambda r: 1 if r.late else 2,
}


def run_number(run: RunRecord) -> int:
    """cronJobRunNumber: the run's ordinal, kept within Unsigned32 (1..4294967295)."""
    return (run.number - 1) % UINT32_MAX + 1


def run_raw(run: RunRecord, column: RunColumn) -> int | bytes:
    """The value of one readable column of a run's row, as an int or bytes (unchecked)."""
    return _RUN_RAW[column](run)


def run_values(run: RunRecord) -> list[tuple[RunColumn, Any]]:
    """The readable columns of a run's row in cronJobRunTable, in OID order, as pysnmp values.

    Raises pyasn1's ValueConstraintError when a field is outside the MIB's range.
    """
    return [(c, _value(RUN_COLUMN_SYNTAX[c].value_class, _RUN_RAW[c](run)))
            for c in RUN_VALUE_COLUMNS]


def scalar_raws(stats: AgentStats) -> list[tuple[Scalar, int | bytes]]:
    """The agent-wide scalars, in OID order, as ints or bytes (instance is the OID plus .0)."""
    return [
        (Scalar.cronJobCount, min(max(stats.job_count, 0), UINT32_MAX)),
        (Scalar.cronEventsAccepted, _counter(stats.events_accepted)),
        (Scalar.cronEventsRejected, _counter(stats.events_rejected)),
        (Scalar.cronAgentStartTime, date_and_time(stats.started_at)),
        (Scalar.cronNotificationsSuppressed, _counter(stats.notifications_suppressed)),
        (Scalar.cronLogSource, int(stats.cron_log)),
        (Scalar.cronLogEntries, _counter(stats.cron_log_entries)),
        (Scalar.cronJobTableLastChange, date_and_time(stats.table_changed_at or stats.started_at)),
        (Scalar.cronJobRunHistorySize, min(max(stats.run_history, 0), MAX_RUN_HISTORY)),
        (Scalar.cronEventsDeferred, _counter(stats.events_deferred)),
        (Scalar.cronStatusDeferred, _counter(stats.status_deferred)),
        (Scalar.cronLogLinesLeftOut, _counter(stats.log_lines_left_out)),
        (Scalar.cronSpoolBacklog, min(max(stats.spool_backlog, 0), UINT32_MAX)),
    ]


def scalar_values(stats: AgentStats) -> list[tuple[Scalar, Any]]:
    """The agent-wide scalars, in OID order, as pysnmp values (instance is the OID plus .0)."""
    return [(s, _value(SCALAR_SYNTAX[s].value_class, v)) for s, v in scalar_raws(stats)]


def notification_varbinds(n: Notification) -> list[tuple[Oid, Any]]:
    """The varbinds of the notification's OBJECTS, in order, without sysUpTime.0/snmpTrapOID.0.

    Table columns are instances of the job's row; cronNotifyJobOwner/Name are instance .0.
    """
    job = n.job
    index = row_index(job.owner, job.key.name)
    varbinds: list[tuple[Oid, Any]] = []
    for obj in NOTIFICATION_OBJECTS[n.kind] + APPENDED_OBJECTS.get(n.kind, ()):
        if isinstance(obj, Column):
            varbinds.append((column_oid(obj) + index, column_value(job, obj)))
        else:
            value = NOTIFY_OBJECT_SYNTAX[obj].value_class(_NOTIFY_RAW[obj](n))
            varbinds.append((notify_object_oid(obj) + (0,), value))
    return varbinds


_NOTIFY_RAW: dict[NotifyObject, Callable[[Notification], int | bytes]] = {
    NotifyObject.cronNotifyJobOwner: lambda n: n.job.owner.encode("ascii"),
    NotifyObject.cronNotifyJobName: lambda n: n.job.key.name.encode("ascii"),
    NotifyObject.cronNotifyLate: lambda n: 1 if n.late else 2,
    NotifyObject.cronNotifyRunTime: lambda n: date_and_time(n.run_time),
    NotifyObject.cronNotifyRunCount: lambda n: min(max(n.run_count, 1), UINT32_MAX),
    NotifyObject.cronNotifyRequester: lambda n: (n.requester or "?").encode("ascii", "replace")[
        : OWNER_SIZE[1]],
    NotifyObject.cronNotifyExitStatus: lambda n: -1 if n.exit_status is None else n.exit_status,
    NotifyObject.cronNotifySignal: lambda n: n.signal,
    NotifyObject.cronNotifyEventTime: lambda n: date_and_time(
        n.time if n.event_time is None else n.event_time),
    NotifyObject.cronNotifyStarts: lambda n: n.burst.starts if n.burst else 0,
    NotifyObject.cronNotifyExpectedStarts: lambda n: n.burst.expected if n.burst else 0,
    NotifyObject.cronNotifyBurstSince: lambda n: date_and_time(n.burst.since if n.burst else None),
    NotifyObject.cronNotifyMessage: lambda n: display_text(n.message),
}
