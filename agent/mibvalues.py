"""CRON-JOBS-MIB's values from the agent's model: row indexes, each column's, run's, scalar's
and notification object's value, as ints and bytes (what the AgentX codec encodes) or as the
MIB's pysnmp types (constraints checked).

A new column is one entry in `_COLUMN_RAW` here beside its number and SYNTAX in mib.py; the
snapshot derives its instances from these, so it costs no memory per row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cronwrap.wrapper.events import safe_text

from .config import MAX_RUN_HISTORY
from .mib import (
    APPENDED_OBJECTS,
    COLUMN_SYNTAX,
    NAME_SIZE,
    NOTIFICATION_OBJECTS,
    NOTIFY_OBJECT_SYNTAX,
    OWNER_SIZE,
    RUN_COLUMN_SYNTAX,
    RUN_VALUE_COLUMNS,
    SCALAR_SYNTAX,
    TEXT_SIZE,
    UINT32_MAX,
    VALUE_COLUMNS,
    Column,
    NotifyObject,
    RunColumn,
    Scalar,
    column_oid,
    notify_object_oid,
    scalar_oid,
)
from .mibview import Oid
from .model import (
    AgentStats,
    AnyNotification,
    CronDaemon,
    DaemonNotification,
    JobRecord,
    Notification,
    RunRecord,
)


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
    Column.cronJobCommandLine: lambda r: display_text(r.command_line),
    Column.cronJobLineGone: lambda r: display_text(r.line_gone),
    Column.cronJobDurationAnomalies: lambda r: _counter(r.duration_anomalies),
    Column.cronJobDurationMin: lambda r: _unsigned(r.durations.minimum),
    Column.cronJobDurationMedian: lambda r: _unsigned(r.durations.median),
    Column.cronJobDurationMax: lambda r: _unsigned(r.durations.maximum),
    Column.cronJobDurationLowBound: lambda r: _unsigned(r.durations.low),
    Column.cronJobDurationHighBound: lambda r: _unsigned(r.durations.high),
    Column.cronJobLastCpuTime: lambda r: _unsigned(r.last_cpu_ms),
    Column.cronJobLastMaxRss: lambda r: _unsigned(r.last_max_rss_kib),
    Column.cronJobIgnoredByCron: lambda r: display_text(r.ignored_by_cron),
    Column.cronJobOutputsDiscarded: lambda r: _counter(r.outputs_discarded),
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
    RunColumn.cronJobRunCpuTime: lambda r: _unsigned(r.cpu_ms),
    RunColumn.cronJobRunMaxRss: lambda r: _unsigned(r.max_rss_kib),
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
        (Scalar.cronJobRowsRefused, _counter(stats.rows_refused)),
        *daemon_scalar_raws(stats.cron_daemon),
    ]


def daemon_scalar_raws(daemon: CronDaemon) -> list[tuple[Scalar, int | bytes]]:
    """The cron daemon's scalars, in OID order, as ints or bytes."""
    return [
        (Scalar.cronDaemonState, int(daemon.state)),
        (Scalar.cronDaemonStateSince, date_and_time(daemon.since)),
        (Scalar.cronDaemonOutages, _counter(daemon.outages)),
        (Scalar.cronDaemonOutageMisses, min(max(daemon.misses, 0), UINT32_MAX)),
    ]


def scalar_values(stats: AgentStats) -> list[tuple[Scalar, Any]]:
    """The agent-wide scalars, in OID order, as pysnmp values (instance is the OID plus .0)."""
    return [(s, _value(SCALAR_SYNTAX[s].value_class, v)) for s, v in scalar_raws(stats)]


def notification_varbinds(n: AnyNotification) -> list[tuple[Oid, Any]]:
    """The varbinds of the notification's OBJECTS and appended objects, in order, without
    sysUpTime.0/snmpTrapOID.0 (without cronJobLineGone while a crontab line runs the job, and
    without cronNotifyMessage when the run sent no last line).

    Table columns are instances of the job's row; cronNotifyJobOwner/Name are instance .0.
    """
    if isinstance(n, DaemonNotification):
        return daemon_varbinds(n)
    job = n.job
    index = row_index(job.owner, job.key.name)
    varbinds: list[tuple[Oid, Any]] = []
    for obj in NOTIFICATION_OBJECTS[n.kind] + APPENDED_OBJECTS.get(n.kind, ()):
        if obj is Column.cronJobLineGone and job.line_gone is None:
            continue  # its line runs it: no empty varbind stands for a cause
        if obj is NotifyObject.cronNotifyMessage and n.message is None:
            continue  # the job does not send its last line: no empty varbind stands for it
        if isinstance(obj, Column):
            varbinds.append((column_oid(obj) + index, column_value(job, obj)))
        else:
            value = NOTIFY_OBJECT_SYNTAX[obj].value_class(_NOTIFY_RAW[obj](n))
            varbinds.append((notify_object_oid(obj) + (0,), value))
    return varbinds


def daemon_varbinds(n: DaemonNotification) -> list[tuple[Oid, Any]]:
    """The varbinds of a notification about the cron daemon: its scalars' instances (.0), when
    its outage began, and when the agent raised it."""
    scalars = dict(daemon_scalar_raws(n.daemon))
    notify = {NotifyObject.cronNotifyDaemonDownSince: date_and_time(n.daemon.down_since),
              NotifyObject.cronNotifyEventTime: date_and_time(n.time)}
    varbinds: list[tuple[Oid, Any]] = []
    for obj in NOTIFICATION_OBJECTS[n.kind]:
        if isinstance(obj, Scalar):
            varbinds.append((scalar_oid(obj) + (0,),
                             _value(SCALAR_SYNTAX[obj].value_class, scalars[obj])))
        elif isinstance(obj, NotifyObject):
            value = NOTIFY_OBJECT_SYNTAX[obj].value_class(notify[obj])
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
    NotifyObject.cronNotifyDuration: lambda n: _unsigned(n.anomaly and n.anomaly.duration_ms),
    NotifyObject.cronNotifyDurationBound: lambda n: _unsigned(n.anomaly and n.anomaly.bound_ms),
    NotifyObject.cronNotifyDurationBoundKind: lambda n: int(n.anomaly.kind) if n.anomaly else 1,
    NotifyObject.cronNotifyDurationMedian: lambda n: _unsigned(n.anomaly and n.anomaly.median_ms),
}
