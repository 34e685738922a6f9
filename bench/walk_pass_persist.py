#!/usr/bin/env python3
"""A Net-SNMP pass_persist extension serving a fixed table from a file: a baseline for bench/walk.

snmpd starts it from `pass_persist OID COMMAND TABLE-FILE` and talks on stdin/stdout: PING ->
PONG; get/getnext + OID -> OID, TYPE, VALUE lines, or NONE; set -> not-writable.  TABLE-FILE has
one instance per line, `OID<TAB>TYPE<TAB>VALUE` (types as pass_persist spells them: integer,
counter, gauge, timeticks, string, octet...); the OIDs are kept sorted and searched with bisect.
"""

from __future__ import annotations

import bisect
import sys
from typing import TextIO

Oid = tuple[int, ...]


def parse_oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip().strip(".").split(".") if part)


class Table:
    """Sorted instances: `lines[i]` is the ready-made answer for `oids[i]`."""

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        answers = sorted((parse_oid(oid), f".{oid.strip('.')}\n{kind}\n{value}\n")
                         for oid, kind, value in rows)
        self.oids = [oid for oid, _ in answers]
        self.lines = [line for _, line in answers]

    def get(self, oid: Oid) -> str:
        i = bisect.bisect_left(self.oids, oid)
        return self.lines[i] if i < len(self.oids) and self.oids[i] == oid else "NONE\n"

    def get_next(self, oid: Oid) -> str:
        i = bisect.bisect_right(self.oids, oid)
        return self.lines[i] if i < len(self.oids) else "NONE\n"


def load(path: str) -> Table:
    with open(path, encoding="ascii") as lines:
        return Table([tuple(line.rstrip("\n").split("\t", 2)) for line in lines if line.strip()])


def serve(table: Table, requests: TextIO, out: TextIO) -> None:
    """Answer snmpd until it closes our stdin."""
    while command := requests.readline():
        command = command.strip().lower()
        if command == "ping":
            out.write("PONG\n")
        elif command in ("get", "getnext"):
            oid = parse_oid(requests.readline())
            out.write(table.get(oid) if command == "get" else table.get_next(oid))
        elif command == "set":
            requests.readline()  # the OID
            requests.readline()  # TYPE VALUE
            out.write("not-writable\n")
        elif command:
            out.write("NONE\n")
        out.flush()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: walk_pass_persist.py TABLE-FILE  (run by snmpd's pass_persist)",
              file=sys.stderr)
        return 64
    serve(load(sys.argv[1]), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
