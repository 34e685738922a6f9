"""What a monitoring host sees of CRON-JOBS-MIB::cronJobTable through snmpd, parsed.

The walk is numeric (`-On`, no MIB needed) so that parsing depends on nothing but the MIB's
OIDs, which tests/test_mib.py ties to mibs/CRON-JOBS-MIB.txt.
"""

from __future__ import annotations

from dataclasses import dataclass

CRON_JOBS_MIB = "1.3.6.1.4.1.8072.9999.9999.71"
CRON_JOB_ENTRY = f"{CRON_JOBS_MIB}.1.5.1"
CRON_JOB_COUNT = f"{CRON_JOBS_MIB}.1.1.0"
COLUMNS = {3: "runs", 4: "failures", 5: "overlaps", 6: "timeouts", 7: "misses", 13: "state"}
NOTIFICATIONS = {
    f"{CRON_JOBS_MIB}.0.1": "cronJobFailed",
    f"{CRON_JOBS_MIB}.0.2": "cronJobOverlapped",
    f"{CRON_JOBS_MIB}.0.3": "cronJobTimedOut",
    f"{CRON_JOBS_MIB}.0.4": "cronJobMissed",
    f"{CRON_JOBS_MIB}.0.6": "cronJobRecovered",
}
NOTIFY_OWNER = f"{CRON_JOBS_MIB}.2.1"
NOTIFY_NAME = f"{CRON_JOBS_MIB}.2.2"
WALK = ("snmpbulkwalk", "-v2c", "-c", "public", "-m", "", "-On", "-Oq", "-Oe", "127.0.0.1")


@dataclass
class Row:
    """The counters of one cronJobTable row."""

    runs: int = 0
    failures: int = 0
    overlaps: int = 0
    timeouts: int = 0
    misses: int = 0
    state: int = 0


def decode_index(sub_ids: list[int]) -> tuple[str, str]:
    """(owner, name) from the row index: two length-prefixed DisplayStrings."""
    owner_length = sub_ids[0]
    owner = bytes(sub_ids[1 : 1 + owner_length]).decode()
    rest = sub_ids[1 + owner_length :]
    name = bytes(rest[1 : 1 + rest[0]]).decode()
    return owner, name


def parse_walk(output: str) -> dict[tuple[str, str], Row]:
    """`snmpbulkwalk -On -Oq -Oe ... cronJobEntry` output -> (owner, name) -> Row."""
    rows: dict[tuple[str, str], Row] = {}
    prefix = f".{CRON_JOB_ENTRY}."
    for line in output.splitlines():
        oid, _, value = line.partition(" ")
        if not oid.startswith(prefix):
            continue
        column, *index = (int(part) for part in oid[len(prefix) :].split("."))
        if column in COLUMNS:
            row = rows.setdefault(decode_index(index), Row())
            setattr(row, COLUMNS[column], int(value))
    return rows


SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"


@dataclass
class Notification:
    """One notification snmptrapd logged: which one, and the job it names."""

    kind: str
    owner: str
    name: str


def varbinds(line: str) -> dict[str, str]:
    """One snmptrapd `-On -F '%v\\n'` line: tab-separated `OID = TYPE: value` -> {OID: value}."""
    values = {}
    for binding in line.split("\t"):
        oid, _, typed = binding.partition(" = ")
        value = typed.partition(": ")[2]
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        values[oid.lstrip(".")] = value.lstrip(".")
    return values


def parse_traps(log: str) -> list[Notification]:
    """This MIB's notifications in a log written by `snmptrapd -On -F '%v\\n'`."""
    notifications = []
    for line in log.splitlines():
        values = varbinds(line)
        kind = NOTIFICATIONS.get(values.get(SNMP_TRAP_OID, ""))
        if kind is not None:
            owner, name = values.get(f"{NOTIFY_OWNER}.0", ""), values.get(f"{NOTIFY_NAME}.0", "")
            notifications.append(Notification(kind, owner, name))
    return notifications
