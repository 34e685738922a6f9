"""CRON-JOBS-MIB as the code sees it: OIDs, objects, syntaxes and notifications (mibvalues.py
turns the model into their values).

Everything here mirrors mibs/CRON-JOBS-MIB.txt, which stays the source of truth:
tests/test_mib.py compiles the MIB with pysmi and fails when anything here disagrees with it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyasn1.type import constraint, namedval
from pysnmp.proto import rfc1902

from .config import MAX_RUN_HISTORY
from .mibview import Oid
from .model import (
    RESULTS,
    RUN_RESULTS,
    BoundKind,
    CronDaemonState,
    CronLogState,
    JobSource,
    JobState,
    NotificationKind,
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
    cronJobRowsRefused = 44
    cronDaemonState = 50
    cronDaemonStateSince = 51
    cronDaemonOutages = 52
    cronDaemonOutageMisses = 53


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
    cronJobCommandLine = 45
    cronJobLineGone = 46
    cronJobDurationAnomalies = 50
    cronJobDurationMin = 51
    cronJobDurationMedian = 52
    cronJobDurationMax = 53
    cronJobDurationLowBound = 54
    cronJobDurationHighBound = 55
    cronJobLastCpuTime = 56
    cronJobLastMaxRss = 57
    cronJobIgnoredByCron = 58
    cronJobOutputsDiscarded = 59


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
    cronNotifyDuration = 40
    cronNotifyDurationBound = 41
    cronNotifyDurationBoundKind = 42
    cronNotifyDurationMedian = 43
    cronNotifyDaemonDownSince = 45


class RunColumn(enum.IntEnum):
    """The columns of cronJobRunEntry: sub-identifiers under cronJobRunEntry."""

    cronJobRunNumber = 1
    cronJobRunStart = 2
    cronJobRunDuration = 3
    cronJobRunExitStatus = 4
    cronJobRunSignal = 5
    cronJobRunResult = 6
    cronJobRunLate = 7
    cronJobRunCpuTime = 10
    cronJobRunMaxRss = 11


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
    """cronJobState: INTEGER { ok(1) ... durationAnomaly(20), ignoredByCron(21) }."""

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


class CronDaemonStateValue(rfc1902.Integer32):
    """cronDaemonState: INTEGER { running(1) ... unknown(6) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in CronDaemonState)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in CronDaemonState))


class RunResultValue(rfc1902.Integer32):
    """cronJobRunResult: how a finished run ended, INTEGER { ok(1), failed(2), timedOut(5),
    durationAnomaly(20) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(s) for s in RUN_RESULTS)
    )
    namedValues = namedval.NamedValues(*((s.name, int(s)) for s in RUN_RESULTS))


class BoundKindValue(rfc1902.Integer32):
    """cronNotifyDurationBoundKind: INTEGER { minDuration(1) ... learnedHigh(4) }."""

    subtypeSpec = rfc1902.Integer32.subtypeSpec + constraint.SingleValueConstraint(
        *(int(k) for k in BoundKind)
    )
    namedValues = namedval.NamedValues(*((k.name, int(k)) for k in BoundKind))


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
_UNSIGNED = ObjectSyntax("Unsigned32", rfc1902.Unsigned32)

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
    Scalar.cronJobRowsRefused: _COUNTER,
    Scalar.cronDaemonState: ObjectSyntax(
        "INTEGER", CronDaemonStateValue, enums=tuple((s.name, int(s)) for s in CronDaemonState)),
    Scalar.cronDaemonStateSince: _TIME,
    Scalar.cronDaemonOutages: _COUNTER,
    Scalar.cronDaemonOutageMisses: ObjectSyntax("Gauge32", rfc1902.Gauge32),
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
    Column.cronJobCommandLine: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
    Column.cronJobLineGone: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
    Column.cronJobDurationAnomalies: _COUNTER,
    Column.cronJobDurationMin: _UNSIGNED,
    Column.cronJobDurationMedian: _UNSIGNED,
    Column.cronJobDurationMax: _UNSIGNED,
    Column.cronJobDurationLowBound: _UNSIGNED,
    Column.cronJobDurationHighBound: _UNSIGNED,
    Column.cronJobLastCpuTime: _UNSIGNED,
    Column.cronJobLastMaxRss: _UNSIGNED,
    Column.cronJobIgnoredByCron: ObjectSyntax("DisplayString", TextValue, sizes=(TEXT_SIZE,)),
    Column.cronJobOutputsDiscarded: _COUNTER,
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
    RunColumn.cronJobRunCpuTime: _UNSIGNED,
    RunColumn.cronJobRunMaxRss: _UNSIGNED,
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
    NotifyObject.cronNotifyDuration: _UNSIGNED,
    NotifyObject.cronNotifyDurationBound: _UNSIGNED,
    NotifyObject.cronNotifyDurationBoundKind: ObjectSyntax(
        "INTEGER", BoundKindValue, enums=tuple((k.name, int(k)) for k in BoundKind)),
    NotifyObject.cronNotifyDurationMedian: _UNSIGNED,
    NotifyObject.cronNotifyDaemonDownSince: _TIME,
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
    NotificationKind.duration_anomaly: 40,
    NotificationKind.crontab_ignored: 43,
    NotificationKind.output_discarded: 44,
    NotificationKind.cron_not_running: 45,
    NotificationKind.cron_running: 46,
}

_OWNER_AND_NAME = (NotifyObject.cronNotifyJobOwner, NotifyObject.cronNotifyJobName)
# Whether the run was learnt late, when it started, how many runs the notification stands for.
RUN_OBJECTS: tuple[NotifyObject, ...] = (
    NotifyObject.cronNotifyLate, NotifyObject.cronNotifyRunTime, NotifyObject.cronNotifyRunCount)

# Each NOTIFICATION-TYPE's OBJECTS clause, in order (the cron daemon's carry scalars).
NOTIFICATION_OBJECTS: dict[NotificationKind, tuple[NotifyObject | Column | Scalar, ...]] = {
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
    NotificationKind.duration_anomaly: _OWNER_AND_NAME
    + (NotifyObject.cronNotifyDuration, NotifyObject.cronNotifyDurationBound,
       NotifyObject.cronNotifyDurationBoundKind, NotifyObject.cronNotifyDurationMedian,
       Column.cronJobDurationAnomalies) + RUN_OBJECTS
    + (NotifyObject.cronNotifyEventTime, Column.cronJobState, Column.cronJobLastResult),
    NotificationKind.crontab_ignored: _OWNER_AND_NAME
    + (Column.cronJobIgnoredByCron, NotifyObject.cronNotifyEventTime, Column.cronJobState,
       Column.cronJobLastResult),
    NotificationKind.output_discarded: _OWNER_AND_NAME
    + (Column.cronJobOutputsDiscarded, NotifyObject.cronNotifyEventTime, Column.cronJobState,
       Column.cronJobLastResult),
    NotificationKind.cron_not_running: (
        Scalar.cronDaemonState, Scalar.cronDaemonStateSince, Scalar.cronDaemonOutageMisses,
        NotifyObject.cronNotifyEventTime),
    NotificationKind.cron_running: (
        Scalar.cronDaemonState, Scalar.cronDaemonStateSince,
        NotifyObject.cronNotifyDaemonDownSince, Scalar.cronDaemonOutageMisses,
        NotifyObject.cronNotifyEventTime),
}


# The finished run's own exit status and signal (version 2).
EXIT_OBJECTS: tuple[NotifyObject, ...] = (
    NotifyObject.cronNotifyExitStatus, NotifyObject.cronNotifySignal)
# When the event happened, and the row's state and last outcome as it left them (version 2).
STATE_OBJECTS: tuple[NotifyObject | Column, ...] = (
    NotifyObject.cronNotifyEventTime, Column.cronJobState, Column.cronJobLastResult)

# The finished run's own last line of output (--last-message): last, and left out when the job
# does not send it, so the varbinds before it keep their positions.
MESSAGE_OBJECTS: tuple[NotifyObject, ...] = (NotifyObject.cronNotifyMessage,)

# Why a job is expected though its crontab line is gone: last, and left out while a line runs it.
LINE_GONE_OBJECTS: tuple[Column, ...] = (Column.cronJobLineGone,)

# Appended after the OBJECTS clause of the notifications defined before (RFC 3416 4.2.6 lets an
# agent add varbinds; the MIB's DESCRIPTIONs say so): positions of the OBJECTS stay put.
APPENDED_OBJECTS: dict[NotificationKind, tuple[NotifyObject | Column, ...]] = {
    NotificationKind.failed: RUN_OBJECTS + EXIT_OBJECTS + STATE_OBJECTS + MESSAGE_OBJECTS,
    NotificationKind.overlapped: RUN_OBJECTS + STATE_OBJECTS,
    NotificationKind.timed_out: RUN_OBJECTS + EXIT_OBJECTS + STATE_OBJECTS + MESSAGE_OBJECTS,
    NotificationKind.recovered: RUN_OBJECTS + EXIT_OBJECTS + STATE_OBJECTS,
    NotificationKind.missed: STATE_OBJECTS + LINE_GONE_OBJECTS,
    NotificationKind.overrunning: STATE_OBJECTS,
    NotificationKind.log_failing: STATE_OBJECTS,
    NotificationKind.log_recovered: STATE_OBJECTS,
    NotificationKind.wrapper_lost: STATE_OBJECTS,
    NotificationKind.forgotten: STATE_OBJECTS,
    NotificationKind.retired: STATE_OBJECTS + LINE_GONE_OBJECTS,
}


def notification_oid(kind: NotificationKind) -> Oid:
    """The NOTIFICATION-TYPE's OID: the value of snmpTrapOID.0."""
    return NOTIFICATIONS + (NOTIFICATION_NUMBER[kind],)
