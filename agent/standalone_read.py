"""The standalone agent's read path: views composed into one ordered view, pysnmp's read hooks
answered from it (VACM checked per varbind), and a GETBULK that stops at the end of the view.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pysnmp.entity.rfc3413 import cmdrsp
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.smi.instrum import AbstractMibInstrumController

from .mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, MibView, NoSuch, Oid

_VALUE_FOR = {NO_SUCH_OBJECT: rfc1905.noSuchObject, NO_SUCH_INSTANCE: rfc1905.noSuchInstance}


# --- the views ---------------------------------------------------------------------------

def _subtree_end(root: Oid) -> Oid:
    """The first OID after every OID under `root` (an exclusive upper bound)."""
    return root[:-1] + (root[-1] + 1,)


class CompositeView:
    """Several views, each owning one subtree, answered as one ordered view."""

    def __init__(self, parts: Iterable[tuple[Oid, MibView]]) -> None:
        self._parts = sorted(parts, key=lambda part: part[0])

    def get(self, oid: Oid) -> Entry | NoSuch:
        for root, view in self._parts:
            if oid[: len(root)] == root:
                return view.get(oid)
        return NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        for root, view in self._parts:
            root_end = _subtree_end(root)
            if start >= root_end:
                continue
            if end is not None and end <= root:
                return None
            found = view.get_next(start, include, root_end if end is None else min(end, root_end))
            if found is not None:
                return found
        return None


class SystemGroupView:
    """SNMPv2-MIB's system group: fixed strings, sysObjectID and a live sysUpTime."""

    def __init__(self, oids: dict[str, Oid], values: dict[str, Any], started: float) -> None:
        self._started = started
        self._uptime_oid = oids["sysUpTime"] + (0,)
        self._entries = {oids[name] + (0,): Entry(oids[name] + (0,), value)
                         for name, value in values.items()}
        self._order = sorted([*self._entries, self._uptime_oid])

    def uptime(self) -> rfc1902.TimeTicks:
        return rfc1902.TimeTicks(int((time.monotonic() - self._started) * 100) % 2**32)

    def get(self, oid: Oid) -> Entry | NoSuch:
        if oid == self._uptime_oid:
            return Entry(oid, self.uptime())
        entry = self._entries.get(oid)
        if entry is not None:
            return entry
        return NO_SUCH_INSTANCE if oid[:-1] + (0,) in self._order else NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        for oid in self._order:
            if (oid > start or (include and oid == start)) and (end is None or oid < end):
                found = self.get(oid)
                return found if isinstance(found, Entry) else None
        return None


# --- the instrumentation -----------------------------------------------------------------

class ViewInstrumentation(AbstractMibInstrumController):
    """pysnmp's read hooks answered from a MibView, with VACM checked per varbind via acFun."""

    def __init__(self, view: MibView) -> None:
        self._view = view

    def read_variables(self, *var_binds: tuple[Any, Any], **ctx: Any) -> list[tuple[Any, Any]]:
        answers = []
        for idx, (name, _) in enumerate(var_binds):
            found = self._view.get(tuple(name))
            value = _VALUE_FOR[found] if isinstance(found, NoSuch) else found.value
            if self._hidden(name, value, idx, ctx):
                value = rfc1905.noSuchObject
            answers.append((name, value))
        return answers

    def read_next_variables(self, *var_binds: tuple[Any, Any], **ctx: Any) -> list[tuple[Any, Any]]:
        answers = []
        for idx, (name, _) in enumerate(var_binds):
            start = tuple(name)
            while True:
                entry = self._view.get_next(start)
                if entry is None:
                    answers.append((name, rfc1905.endOfMibView))
                    break
                oid = rfc1902.ObjectName(entry.oid)  # not cached: ~600 B per instance
                if not self._hidden(oid, entry.value, idx, ctx):
                    answers.append((oid, entry.value))
                    break
                start = entry.oid
        return answers

    @staticmethod
    def _hidden(name: Any, value: Any, idx: int, ctx: dict[str, Any]) -> bool:
        """True when VACM puts `name` outside the requester's read view (raises when denied)."""
        check = ctx.get("acFun")
        return bool(check and check("read", (name, value), **{**ctx, "idx": idx}))


class BulkResponder(cmdrsp.BulkCommandResponder):
    """GETBULK that stops repeating once every repeater is at endOfMibView (RFC 3416 4.2.3)."""

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                    contextName: Any, PDU: Any) -> None:
        request = list(v2c.apiPDU.get_varbinds(PDU))
        non_repeaters = min(max(int(v2c.apiBulkPDU.get_non_repeaters(PDU)), 0), len(request))
        repeaters = request[non_repeaters:]
        repetitions = max(int(v2c.apiBulkPDU.get_max_repetitions(PDU)), 0)
        if repeaters:
            repetitions = min(repetitions, self.max_varbinds // len(repeaters))
        read_next = self.snmpContext.get_mib_instrum(contextName).read_next_variables
        ctx = {"snmpEngine": snmpEngine, "acFun": self.verify_access, "cbCtx": self.cbCtx}
        answers = read_next(*request[:non_repeaters], **ctx) if non_repeaters else []
        row = repeaters
        for _ in range(repetitions if repeaters else 0):
            row = read_next(*row, **ctx)
            answers.extend(row)
            if all(isinstance(value, rfc1905.EndOfMibView) for _, value in row):
                break
        self.send_varbinds(snmpEngine, stateReference, 0, 0, answers)
        self.release_state_information(stateReference)
