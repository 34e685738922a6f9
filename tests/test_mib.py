"""CRON-JOBS-MIB is lint-clean, resolvable by Net-SNMP, compilable by pysmi, and mib.py agrees."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cronwrap.agent import mib, mibcompile, mibvalues
from cronwrap.agent.model import (
    DAEMON_KINDS,
    AgentStats,
    JobKey,
    JobRecord,
    JobState,
    Notification,
    NotificationKind,
)
from pyasn1.error import PyAsn1Error
from pysnmp.proto import rfc1902

MIBS = Path(__file__).resolve().parent.parent / "mibs"
MIB_FILE = MIBS / "CRON-JOBS-MIB.txt"

needs_smilint = pytest.mark.skipif(shutil.which("smilint") is None, reason="smitools missing")
needs_snmptranslate = pytest.mark.skipif(
    shutil.which("snmptranslate") is None, reason="Net-SNMP tools missing"
)


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def code_objects() -> dict[str, tuple[tuple[int, ...], mib.ObjectSyntax, str]]:
    """Every OBJECT-TYPE agent/mib.py knows: descriptor -> (oid, syntax, expected MAX-ACCESS)."""
    objects = {s.name: (mib.scalar_oid(s), mib.SCALAR_SYNTAX[s], "read-only") for s in mib.Scalar}
    for c in mib.Column:
        access = "not-accessible" if c in mib.INDEX_COLUMNS else "read-only"
        objects[c.name] = (mib.column_oid(c), mib.COLUMN_SYNTAX[c], access)
    for r in mib.RunColumn:
        access = "read-only" if r in mib.RUN_VALUE_COLUMNS else "not-accessible"
        objects[r.name] = (mib.run_column_oid(r), mib.RUN_COLUMN_SYNTAX[r], access)
    for n in mib.NotifyObject:
        objects[n.name] = (
            mib.notify_object_oid(n),
            mib.NOTIFY_OBJECT_SYNTAX[n],
            "accessible-for-notify",
        )
    return objects


# --- smilint --------------------------------------------------------------------------------


def smilint(path: Path) -> str:
    env = dict(os.environ, SMIPATH=f"{path.parent}:{MIBS}:{mibcompile.NET_SNMP_MIB_DIR}")
    run = subprocess.run(
        ["smilint", "-l", "6", str(path)], env=env, capture_output=True, text=True, check=False
    )
    return run.stdout + run.stderr  # smilint exits 0 even when it reports errors


@needs_smilint
def test_smilint_reports_nothing() -> None:
    assert smilint(MIB_FILE) == ""


@needs_smilint
def test_smilint_check_sees_a_defect(tmp_path: Path) -> None:
    broken = tmp_path / "CRON-JOBS-MIB.txt"
    text = MIB_FILE.read_text()
    broken.write_text(text.replace("cronJobLastSignal, cronJobLastStart,", "cronJobLastStart,"))
    assert "cronJobLastSignal" in smilint(broken)


# --- Net-SNMP -------------------------------------------------------------------------------


def snmptranslate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["snmptranslate", "-M", f"+{MIBS}", "-m", "CRON-JOBS-MIB", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_description_starts_with_a_whole_sentence() -> None:
    # SNMPTT, NMS MIB browsers and snmptranslate -Td summaries show a DESCRIPTION's first line.
    texts = re.findall(r'DESCRIPTION\s*"([^"]*)"', MIB_FILE.read_text())
    assert len(texts) > 50
    cut = [text.splitlines()[0] for text in texts if not text.splitlines()[0].endswith(".")]
    assert not cut, cut


@needs_snmptranslate
def test_snmptranslate_resolves_every_name_to_the_codes_oid() -> None:
    expected = {name: oid for name, (oid, _, _) in code_objects().items()}
    expected |= {k.value: mib.notification_oid(k) for k in NotificationKind}
    expected |= {"cronJobsMIB": mib.ROOT, "cronJobTable": mib.JOB_TABLE}
    expected["cronJobEntry"] = mib.JOB_ENTRY
    names = sorted(expected)
    run = snmptranslate("-On", *(f"CRON-JOBS-MIB::{n}" for n in names))
    assert run.stderr == ""
    assert run.stdout.split() == ["." + dotted(expected[n]) for n in names]


@needs_snmptranslate
def test_snmptranslate_names_an_instance_and_shows_the_time_convention() -> None:
    index = mibvalues.row_index("root", "backup")
    run = snmptranslate("-OS", dotted(mib.column_oid(mib.Column.cronJobState) + index))
    assert run.stdout.strip() == 'CRON-JOBS-MIB::cronJobState."root"."backup"'
    detail = snmptranslate("-Td", "CRON-JOBS-MIB::cronJobLastStart").stdout
    assert "CronDateAndTimeOrNever" in detail
    assert "(0 | 8 | 11)" in detail


IMPORTER = """IMPORTER-MIB DEFINITIONS ::= BEGIN
IMPORTS
    MODULE-IDENTITY, OBJECT-TYPE, OBJECT-IDENTITY, NOTIFICATION-TYPE, Integer32, Counter32,
    Gauge32, Unsigned32, TimeTicks, IpAddress, Opaque, Counter64, ObjectName, NotificationName,
    org, dod, internet, directory, mgmt, mib-2, transmission, experimental, private,
    enterprises, security, snmpV2, snmpDomains, snmpProxys, snmpModules, zeroDotZero
        FROM SNMPv2-SMI
    TEXTUAL-CONVENTION, DisplayString, PhysAddress, MacAddress, TruthValue, TestAndIncr,
    AutonomousType, InstancePointer, VariablePointer, RowPointer, RowStatus, TimeStamp,
    TimeInterval, DateAndTime, StorageType, TDomain, TAddress
        FROM SNMPv2-TC
    MODULE-COMPLIANCE, OBJECT-GROUP, NOTIFICATION-GROUP, AGENT-CAPABILITIES
        FROM SNMPv2-CONF;
importerNode OBJECT IDENTIFIER ::= { experimental 4242 }
END
"""


def translate_importer(directory: Path) -> subprocess.CompletedProcess[str]:
    """snmptranslate IMPORTER-MIB::importerNode with our mibs/ and `directory` on the path."""
    return subprocess.run(
        ["snmptranslate", "-M", f"+{MIBS}:{directory}", "-m", "IMPORTER-MIB", "-On",
         "IMPORTER-MIB::importerNode"],
        capture_output=True, text=True, check=False,
    )


@needs_snmptranslate
def test_stand_ins_define_everything_the_rfcs_do(tmp_path: Path) -> None:
    """They shadow real IETF copies under `-M +mibs`, so importers of any RFC name must load."""
    (tmp_path / "IMPORTER-MIB.txt").write_text(IMPORTER)
    run = translate_importer(tmp_path)
    assert (run.stdout.strip(), run.stderr) == (".1.3.6.1.3.4242", "")
    bad = IMPORTER.replace("TAddress", "TAddress, NoSuchConvention")
    (tmp_path / "IMPORTER-MIB.txt").write_text(bad)
    run = translate_importer(tmp_path)
    assert "NoSuchConvention" in run.stderr


# --- pysmi: the JSON document against the code ----------------------------------------------

BASE_CLASS = {
    "Counter32": rfc1902.Counter32,
    "Gauge32": rfc1902.Gauge32,
    "Unsigned32": rfc1902.Unsigned32,
    "Integer32": rfc1902.Integer32,
    "INTEGER": rfc1902.Integer32,
    "DisplayString": rfc1902.OctetString,
}


def accepts(cls: type[Any], value: int | bytes) -> bool:
    try:
        cls(value)
    except PyAsn1Error:
        return False
    return True


def constraint_mismatches(
    name: str, syntax: mib.ObjectSyntax, mib_syntax: dict[str, Any]
) -> list[str]:
    """Compare restated constraints, and probe the value class at and around the MIB's bounds."""
    found: list[str] = []
    constraints = mib_syntax.get("constraints", {})
    ranges = [(r["min"], r["max"]) for r in constraints.get("range", [])]
    sizes = [(s["min"], s["max"]) for s in constraints.get("size", [])]
    enums = sorted(constraints.get("enumeration", {}).items(), key=lambda kv: kv[1])
    if ranges != ([syntax.value_range] if syntax.value_range else []):
        found.append(f"{name}: range {syntax.value_range} in code, {ranges} in MIB")
    if sizes != list(syntax.sizes or []):
        found.append(f"{name}: sizes {syntax.sizes} in code, {sizes} in MIB")
    if enums != list(syntax.enums or []):
        found.append(f"{name}: enums {syntax.enums} in code, {enums} in MIB")
    for low, high in ranges:
        probes = {low: True, high: True, low - 1: False, high + 1: False}
        found += [
            f"{name}: value class {'rejects' if ok else 'accepts'} {v}"
            for v, ok in probes.items()
            if accepts(syntax.value_class, v) != ok
        ]
    if enums:
        allowed = {v for _, v in enums}
        found += [
            f"{name}: value class {'rejects' if v in allowed else 'accepts'} {v}"
            for v in range(min(allowed) - 1, max(allowed) + 2)
            if accepts(syntax.value_class, v) != (v in allowed)
        ]
    if sizes:
        top = max(h for _, h in sizes) + 1
        found += [
            f"{name}: value class {'rejects' if ok else 'accepts'} {n} octets"
            for n in range(top + 1)
            if accepts(syntax.value_class, b"a" * n)
            != (ok := any(lo <= n <= hi for lo, hi in sizes))
        ]
    return found


# Textual conventions the MIB imports, as SNMPv2-TC (RFC 2579) defines them.
IMPORTED_TCS: dict[str, dict[str, Any]] = {
    "TruthValue": {"type": "INTEGER",
                   "constraints": {"enumeration": {"true": 1, "false": 2}}},
}


def mib_type_syntax(doc: dict[str, Any], mib_syntax: dict[str, Any]) -> dict[str, Any]:
    """An object's syntax with a local or imported TEXTUAL-CONVENTION resolved to its type."""
    tc = doc.get(mib_syntax["type"])
    if tc is not None and tc.get("class") == "textualconvention":
        return tc["type"]
    return IMPORTED_TCS.get(mib_syntax["type"], mib_syntax)


def mismatches(doc: dict[str, Any]) -> list[str]:
    """Everything on which agent/mib.py and the compiled MIB disagree."""
    found: list[str] = []
    objects = code_objects()
    in_mib = {k for k, v in doc.items() if isinstance(v, dict) and v.get("class") == "objecttype"}
    in_mib -= {"cronJobTable", "cronJobEntry", "cronJobRunTable", "cronJobRunEntry"}
    if in_mib != set(objects):
        found.append(
            f"objects only in MIB: {in_mib - set(objects)}, only in code: {set(objects) - in_mib}"
        )
    for name, (oid, syntax, access) in objects.items():
        d = doc.get(name)
        if d is None:
            continue
        if d["oid"] != dotted(oid):
            found.append(f"{name}: oid {dotted(oid)} in code, {d['oid']} in MIB")
        if d["maxaccess"] != access:
            found.append(f"{name}: access {access} in code, {d['maxaccess']} in MIB")
        if d["syntax"]["type"] != syntax.mib_type:
            found.append(f"{name}: type {syntax.mib_type} in code, {d['syntax']['type']} in MIB")
            continue
        resolved = mib_type_syntax(doc, d["syntax"])
        base = BASE_CLASS.get(resolved["type"], rfc1902.OctetString)
        if resolved["type"] not in BASE_CLASS and resolved["type"] != "OCTET STRING":
            found.append(f"{name}: unexpected base type {resolved['type']}")
        if not issubclass(syntax.value_class, base):
            found.append(f"{name}: value class {syntax.value_class} is no {base}")
        merged = dict(resolved)
        merged["constraints"] = {
            **resolved.get("constraints", {}),
            **d["syntax"].get("constraints", {}),
        }
        found += constraint_mismatches(name, syntax, merged)
    run_index = (*mib.INDEX_COLUMNS, mib.RunColumn.cronJobRunNumber)
    for entry, table, want, want_table, want_index in (
            ("cronJobEntry", "cronJobTable", mib.JOB_ENTRY, mib.JOB_TABLE, mib.INDEX_COLUMNS),
            ("cronJobRunEntry", "cronJobRunTable", mib.RUN_ENTRY, mib.RUN_TABLE, run_index)):
        if doc[entry]["oid"] != dotted(want) or doc[table]["oid"] != dotted(want_table):
            found.append(f"{entry}/{table}: oids differ")
        index = [(i["object"], i["implied"]) for i in doc[entry]["indices"]]
        if index != [(c.name, 0) for c in want_index]:
            found.append(f"{entry}: index {index} in MIB, {want_index} in code")
    notifications = {
        k for k, v in doc.items() if isinstance(v, dict) and v.get("class") == "notificationtype"
    }
    if notifications != {k.value for k in NotificationKind}:
        found.append(f"notifications {notifications} in MIB")
    for kind in NotificationKind:
        d = doc.get(kind.value)
        if d is None:
            continue
        if d["oid"] != dotted(mib.notification_oid(kind)):
            found.append(
                f"{kind.value}: oid {dotted(mib.notification_oid(kind))} in code, {d['oid']}"
            )
        objs = [o["object"] for o in d["objects"]]
        if objs != [o.name for o in mib.NOTIFICATION_OBJECTS[kind]]:
            found.append(f"{kind.value}: objects {objs} in MIB")
    if doc["cronJobsMIB"]["oid"] != dotted(mib.ROOT):
        found.append(f"root {doc['cronJobsMIB']['oid']} in MIB")
    return found


@pytest.fixture(scope="module")
def compiled() -> dict[str, Any]:
    return mibcompile.compile_json()


def test_pysmi_json_agrees_with_the_code(compiled: dict[str, Any]) -> None:
    assert mismatches(compiled) == []


def test_job_state_enum_is_the_mibs(compiled: dict[str, Any]) -> None:
    enum = compiled["cronJobState"]["syntax"]["constraints"]["enumeration"]
    assert enum == {s.name: int(s) for s in JobState}


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("ok(1),", "ok(9),", "cronJobState: enums"),
        ("::= { cronJobEntry 9 }", "::= { cronJobEntry 99 }", "cronJobLastSignal: oid"),
        ("Integer32 (-1..255)", "Integer32 (-1..127)", "cronJobLastExitStatus: range"),
        ("cronJobRunningPid, cronJobOverlaps }", "cronJobOverlaps }", "cronJobOverlapped: objects"),
        ("{ cronJobsNotifications 6 }", "{ cronJobsNotifications 7 }", "cronJobRecovered: oid"),
        (
            "INDEX       { cronJobOwner, cronJobName }",
            "INDEX { cronJobName, cronJobOwner }",
            "cronJobEntry: index",
        ),
        (
            "INDEX       { cronJobOwner, cronJobName, cronJobRunNumber }",
            "INDEX { cronJobOwner, cronJobName }",
            "cronJobRunEntry: index",
        ),
        ("::= { cronJobsObjects 30 }", "::= { cronJobsObjects 31 }", "cronJobRunStart: oid"),
        ("SIZE (0 | 8 | 11)", "SIZE (0 | 11)", "cronJobLastStart: sizes"),
        ("SYNTAX      Gauge32", "SYNTAX      Counter32", "cronJobCount: type"),
    ],
)
def test_comparison_catches_a_changed_mib(tmp_path: Path, old: str, new: str, expect: str) -> None:
    text = MIB_FILE.read_text()
    assert old in text
    (tmp_path / "CRON-JOBS-MIB.txt").write_text(text.replace(old, new, 1))
    for base in ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF"):
        shutil.copy(MIBS / f"{base}.txt", tmp_path)
    doc = mibcompile.compile_json([tmp_path, mibcompile.NET_SNMP_MIB_DIR])
    assert any(m.startswith(expect) for m in mismatches(doc)), mismatches(doc)


def test_compile_error_names_the_missing_module(tmp_path: Path) -> None:
    shutil.copy(MIB_FILE, tmp_path)
    with pytest.raises(mibcompile.MibCompileError, match="SNMPv2-SMI"):
        mibcompile.compile_json([tmp_path])


# --- pysmi: pysnmp modules ------------------------------------------------------------------


def test_pysnmp_modules_load_and_agree(tmp_path: Path) -> None:
    from pysnmp.smi import builder

    mibcompile.compile_pysnmp(tmp_path)
    mib_builder = builder.MibBuilder()
    mib_builder.add_mib_sources(builder.DirMibSource(str(tmp_path)))
    with warnings.catch_warnings():
        # generated modules call the camelCase importSymbols that pysnmp 7 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        mib_builder.load_modules("CRON-JOBS-MIB")
    for name, (oid, _, _) in code_objects().items():
        (symbol,) = mib_builder.import_symbols("CRON-JOBS-MIB", name)
        assert tuple(symbol.getName()) == oid, name
    for kind in NotificationKind:
        (symbol,) = mib_builder.import_symbols("CRON-JOBS-MIB", kind.value)
        assert tuple(symbol.getName()) == mib.notification_oid(kind)
    (last_start,) = mib_builder.import_symbols("CRON-JOBS-MIB", "cronJobLastStart")
    syntax = last_start.getSyntax()
    assert syntax.clone(b"") == b""
    assert syntax.clone(mibvalues.date_and_time(0.0)) == mibvalues.date_and_time(0.0)
    with pytest.raises(PyAsn1Error):
        syntax.clone(b"12345")


# --- encoders -------------------------------------------------------------------------------


def test_date_and_time() -> None:
    assert mibvalues.date_and_time(None) == b""
    # 2026-11-25 06:58:21.75 UTC
    assert mibvalues.date_and_time(1795589901.75) == bytes(
        [0x07, 0xEA, 11, 25, 6, 58, 21, 7, 43, 0, 0])
    assert mibvalues.date_and_time(0) == bytes([0x07, 0xB2, 1, 1, 0, 0, 0, 0, 43, 0, 0])


def test_row_index_is_length_prefixed_owner_then_name() -> None:
    assert mibvalues.row_index("root", "db-1") == (4, *b"root", 4, *b"db-1")
    assert mibvalues.row_index("a", "b") < mibvalues.row_index("a", "ab")  # shorter strings first
    longest = mib.column_oid(mib.Column.cronJobRunningPid) + mibvalues.row_index("u" * 32, "n" * 64)
    assert len(longest) < 128


@pytest.mark.parametrize(
    ("owner", "name"), [("", "x"), ("u" * 33, "x"), ("r", ""), ("r", "n" * 65), ("é", "x")]
)
def test_row_index_rejects_what_the_mib_cannot_carry(owner: str, name: str) -> None:
    with pytest.raises(ValueError, match="owner|job name"):
        mibvalues.row_index(owner, name)


def test_row_values_map_none_fields() -> None:
    record = JobRecord(JobKey(0, "backup"), "root")
    values = dict(mibvalues.row_values(record))
    assert list(values) == list(mib.VALUE_COLUMNS)
    assert int(values[mib.Column.cronJobLastExitStatus]) == -1
    assert int(values[mib.Column.cronJobLastDuration]) == 0
    assert int(values[mib.Column.cronJobRunningPid]) == 0
    assert int(values[mib.Column.cronJobState]) == JobState.unknown
    for column in (
        mib.Column.cronJobLastStart,
        mib.Column.cronJobLastSuccess,
        mib.Column.cronJobNextExpected,
    ):
        assert bytes(values[column]) == b""


def test_row_values_carry_the_record_with_mib_types() -> None:
    record = JobRecord(
        JobKey(1000, "sync"),
        "alice",
        runs=2**32 + 5,
        failures=3,
        overlaps=1,
        timeouts=2,
        misses=4,
        last_exit_status=124,
        last_signal=9,
        last_start=0.0,
        last_success=86400.0,
        last_duration_ms=1500,
        state=JobState.timedOut,
        running_pid=4242,
        next_expected=3600.0,
    )
    values = dict(mibvalues.row_values(record))
    assert isinstance(values[mib.Column.cronJobRuns], rfc1902.Counter32)
    assert int(values[mib.Column.cronJobRuns]) == 5  # Counter32 wraps
    assert [int(values[c]) for c in mib.VALUE_COLUMNS[1:7]] == [3, 1, 2, 4, 124, 9]
    assert bytes(values[mib.Column.cronJobLastSuccess]) == mibvalues.date_and_time(86400.0)
    assert isinstance(values[mib.Column.cronJobLastDuration], rfc1902.Unsigned32)
    assert int(values[mib.Column.cronJobLastDuration]) == 1500
    assert int(values[mib.Column.cronJobState]) == 5
    assert int(values[mib.Column.cronJobRunningPid]) == 4242
    assert bytes(values[mib.Column.cronJobNextExpected]) == mibvalues.date_and_time(3600.0)


def test_scalar_values() -> None:
    values = dict(
        mibvalues.scalar_values(
            AgentStats(job_count=7, events_accepted=2**32, events_rejected=1, started_at=0.0)
        )
    )
    assert isinstance(values[mib.Scalar.cronJobCount], rfc1902.Gauge32)
    assert [int(values[s]) for s in list(mib.Scalar)[:3]] == [7, 0, 1]
    assert bytes(values[mib.Scalar.cronAgentStartTime]) == mibvalues.date_and_time(0.0)


def test_notification_varbinds_follow_the_objects_clause() -> None:
    record = JobRecord(
        JobKey(0, "backup"), "root", failures=3, last_exit_status=2, last_duration_ms=10
    )
    binds = mibvalues.notification_varbinds(Notification(
        NotificationKind.failed, record, 0.0, exit_status=9, signal=15, event_time=86400.0,
        message="no space left"))
    index = mibvalues.row_index("root", "backup")
    assert [oid for oid, _ in binds] == [
        mib.ROOT + (2, 1, 0),
        mib.ROOT + (2, 2, 0),
        mib.column_oid(mib.Column.cronJobLastExitStatus) + index,
        mib.column_oid(mib.Column.cronJobLastSignal) + index,
        mib.column_oid(mib.Column.cronJobLastDuration) + index,
        mib.column_oid(mib.Column.cronJobFailures) + index,
        mib.ROOT + (2, 3, 0),
        mib.ROOT + (2, 4, 0),
        mib.ROOT + (2, 5, 0),
        mib.ROOT + (2, 9, 0),
        mib.ROOT + (2, 10, 0),
        mib.ROOT + (2, 11, 0),
        mib.column_oid(mib.Column.cronJobState) + index,
        mib.column_oid(mib.Column.cronJobLastResult) + index,
        mib.ROOT + (2, 20, 0),
    ]
    assert [bytes(v) for _, v in binds[:2]] == [b"root", b"backup"]
    assert [int(v) for _, v in binds[2:6]] == [2, 0, 10, 3]
    assert int(binds[6][1]) == 2 and bytes(binds[7][1]) == b"" and int(binds[8][1]) == 1
    # the event's own exit status, signal and time, not the row's
    assert [int(v) for _, v in binds[9:11]] == [9, 15]
    assert bytes(binds[11][1]) == mibvalues.date_and_time(86400.0)
    assert [int(v) for _, v in binds[12:14]] == [8, 8]  # unknown, unknown
    assert bytes(binds[14][1]) == b"no space left"  # its own last line of output, last
    assert mib.SNMP_TRAP_OID not in [oid for oid, _ in binds]
    # a job that does not send its last line: no cronNotifyMessage at all, the rest in place
    unsent = mibvalues.notification_varbinds(Notification(
        NotificationKind.failed, record, 0.0, exit_status=9, signal=15, event_time=86400.0))
    assert [oid for oid, _ in unsent] == [oid for oid, _ in binds][:-1]
    assert mib.notification_oid(NotificationKind.failed) == mib.ROOT + (0, 1)


def test_a_late_coalesced_notification_says_so() -> None:
    record = JobRecord(JobKey(0, "backup"), "root", overlaps=7)
    note = Notification(NotificationKind.overlapped, record, 0.0, late=True, run_time=86400.5,
                        run_count=250)
    binds = dict(mibvalues.notification_varbinds(note))
    assert int(binds[mib.notify_object_oid(mib.NotifyObject.cronNotifyLate) + (0,)]) == 1
    assert bytes(binds[mib.notify_object_oid(mib.NotifyObject.cronNotifyRunTime) + (0,)]) == (
        mibvalues.date_and_time(86400.5))
    assert int(binds[mib.notify_object_oid(mib.NotifyObject.cronNotifyRunCount) + (0,)]) == 250
    missed = mibvalues.notification_varbinds(Notification(NotificationKind.missed, record, 0.0))
    assert len(missed) == len(mib.NOTIFICATION_OBJECTS[NotificationKind.missed]) + len(
        mib.STATE_OBJECTS)
    # its crontab line gone: the cause follows, last; the varbinds before it stay in place
    cause = "line gone from /var/spool/cron/crontabs/root (seen 2026-12-07T03:40:00Z)"
    gone = mibvalues.notification_varbinds(Notification(
        NotificationKind.missed, replace(record, line_gone=cause), 0.0))
    assert [oid for oid, _ in gone[:-1]] == [oid for oid, _ in missed]
    assert gone[-1][0] == mib.column_oid(mib.Column.cronJobLineGone) + mibvalues.row_index(
        record.owner, record.key.name)
    assert bytes(gone[-1][1]) == cause.encode()


def notification_description(name: str) -> str:
    text = MIB_FILE.read_text()
    start = text.index(f"\n{name} NOTIFICATION-TYPE")
    return " ".join(text[start:text.index("::=", start)].split())


def test_the_mib_says_which_notifications_get_appended_objects() -> None:
    """RFC 3416 4.2.6 appended varbinds are not in OBJECTS: the DESCRIPTIONs must name them."""
    run_objects = " ".join(o.name for o in mib.RUN_OBJECTS)
    for kind in NotificationKind:
        said = "The agent appends cronNotifyLate, cronNotifyRunTime and cronNotifyRunCount."
        appended = " ".join(o.name for o in mib.APPENDED_OBJECTS.get(kind, ()))
        assert (said in notification_description(kind.value)) == appended.startswith(run_objects)
    # version 2's objects, appended to every notification defined before, as cronNotifyEventTime
    # says; the finished-run ones add the exit status and signal first
    text = " ".join(MIB_FILE.read_text().split())
    assert ("Every notification of this module about a job ends with cronNotifyEventTime, "
            "cronJobState and cronJobLastResult") in text
    assert ("cronJobMissed and cronJobRetired are followed by cronJobLineGone, last, when the "
            "job's crontab line is gone") in text
    assert ("cronJobFailed and cronJobTimedOut are followed by cronNotifyMessage, last, when "
            "the job sends its last line") in text
    for kind in NotificationKind:
        objects = mib.NOTIFICATION_OBJECTS[kind] + mib.APPENDED_OBJECTS.get(kind, ())
        if kind in (NotificationKind.missed, NotificationKind.retired):
            assert objects[-1:] == mib.LINE_GONE_OBJECTS  # last: left out while a line runs it
            objects = objects[:-1]
        if kind in (NotificationKind.failed, NotificationKind.timed_out):
            assert objects[-1:] == mib.MESSAGE_OBJECTS  # last: left out when not sent
            objects = objects[:-1]
        if kind in DAEMON_KINDS:  # about no job: the daemon's scalars, then the event's time
            assert objects[-1] is mib.NotifyObject.cronNotifyEventTime
            assert not any(isinstance(o, mib.Column) for o in objects)
        elif kind is not NotificationKind.cleared:
            assert objects[-3:] == mib.STATE_OBJECTS
        finished = kind in (NotificationKind.failed, NotificationKind.timed_out,
                            NotificationKind.recovered)
        assert (mib.EXIT_OBJECTS[0] in objects) == (
            finished or kind in (NotificationKind.cleared, NotificationKind.not_started))


def test_well_known_oids() -> None:
    assert mib.SNMP_TRAP_OID == (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
    assert mib.SYS_UPTIME == (1, 3, 6, 1, 2, 1, 1, 3, 0)
