"""The standalone agent's read path: views composed into one ordered view, pysnmp's read hooks
answered from it, and the requester's VACM read view asked once per subtree where it can be.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pysnmp.proto import rfc1902, rfc1905
from pysnmp.smi.error import NoSuchInstanceError
from pysnmp.smi.instrum import AbstractMibInstrumController

from .mibview import NO_SUCH_INSTANCE, NO_SUCH_OBJECT, Entry, MibView, NoSuch, Oid

_VALUE_FOR = {NO_SUCH_OBJECT: rfc1905.noSuchObject, NO_SUCH_INSTANCE: rfc1905.noSuchInstance}
SNMPV1 = 1  # the SNMPv1 security model: VACM adds a rule per value (Counter64) for it


# --- the views ---------------------------------------------------------------------------

def _subtree_end(root: Oid) -> Oid:
    """The first OID after every OID under `root` (an exclusive upper bound)."""
    return root[:-1] + (root[-1] + 1,)


class CompositeView:
    """Several views, each owning one subtree, answered as one ordered view."""

    def __init__(self, parts: Iterable[tuple[Oid, MibView]]) -> None:
        self._parts = [(root, _subtree_end(root), view)
                       for root, view in sorted(parts, key=lambda part: part[0])]

    def root_of(self, oid: Oid) -> Oid:
        """The root of the part `oid` lies under (every OID the view answers lies under one)."""
        for root, end, _ in self._parts:
            if root <= oid < end:
                return root
        raise LookupError(f"{oid} is in no part of the view")

    def get(self, oid: Oid) -> Entry | NoSuch:
        for root, _, view in self._parts:
            if oid[: len(root)] == root:
                return view.get(oid)
        return NO_SUCH_OBJECT

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        for root, root_end, view in self._parts:
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


# --- access control ----------------------------------------------------------------------

class ViewFamilyDepth:
    """The length of the longest subtree of any VACM view family configured in the engine.

    VACM decides for an OID by the view families whose subtree (masked) is a prefix of it.  No
    family longer than a subtree's root means every OID under that root matches the same
    families, so gets the same decision.  Recounted when pysnmp's VACM would rebuild its map.
    """

    def __init__(self) -> None:
        self._version: Any = None
        self._depth = 0

    def __call__(self, engine: Any) -> int:
        (subtrees,) = engine.get_mib_builder().import_symbols(
            "SNMP-VIEW-BASED-ACM-MIB", "vacmViewTreeFamilySubtree")
        if subtrees.branchVersionId != self._version:
            self._depth = self._count(subtrees)
            self._version = subtrees.branchVersionId
        return self._depth

    @staticmethod
    def _count(subtrees: Any) -> int:
        depth = 0
        node = subtrees
        while True:
            try:
                node = subtrees.getNextNode(node.name)
            except NoSuchInstanceError:
                return depth
            depth = max(depth, len(node.syntax))


class ReadAccess:
    """The requester's read view for one request, asked of pysnmp's VACM (the responder's
    `verify_access`): once per subtree of the view when no view family reaches below its root
    (`uniform(root)`), otherwise per varbind.  `hidden` raises as verify_access does when VACM
    refuses the request outright (no group, no access entry, unknown context)."""

    def __init__(self, check: Callable[..., Any], ctx: dict[str, Any],
                 uniform: Callable[[Oid], bool]) -> None:
        self._check = check
        self._ctx = ctx
        self._uniform = uniform
        self._decided: dict[Oid, bool] = {}

    def hidden(self, root: Oid, entry: Entry, idx: int) -> bool:
        """True when VACM puts `entry` outside the requester's read view."""
        decided = self._decided.get(root)
        if decided is not None:
            return decided
        name = rfc1902.ObjectName(entry.oid)
        hidden = bool(self._check("read", (name, entry.value), **{**self._ctx, "idx": idx}))
        if self._uniform(root):
            self._decided[root] = hidden
        return hidden

    def hides_all_of(self, root: Oid) -> bool:
        """True once VACM was asked about an OID under `root` and its answer, hidden, holds for
        every OID under it."""
        return self._decided.get(root, False)


def read_access(check: Callable[..., Any], ctx: dict[str, Any], depth: ViewFamilyDepth
                ) -> ReadAccess:
    """The ReadAccess of the request being answered (pysnmp's execution context names its
    security model); SNMPv1 requests are checked per varbind."""
    engine = ctx["snmpEngine"]
    request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
    if request["securityModel"] == SNMPV1:
        return ReadAccess(check, ctx, lambda root: False)
    deepest = depth(engine)
    return ReadAccess(check, ctx, lambda root: len(root) >= deepest)


# --- the instrumentation -----------------------------------------------------------------

class ViewInstrumentation(AbstractMibInstrumController):
    """pysnmp's read hook (Get, VACM checked per varbind via acFun) answered from a
    CompositeView, and the successors GETNEXT and GETBULK ask for, VACM checked by ReadAccess."""

    def __init__(self, view: CompositeView) -> None:
        self._view = view
        self.view_depth = ViewFamilyDepth()

    def read_variables(self, *var_binds: tuple[Any, Any], **ctx: Any) -> list[tuple[Any, Any]]:
        answers = []
        check = ctx.get("acFun")
        for idx, (name, _) in enumerate(var_binds):
            found = self._view.get(tuple(name))
            value = _VALUE_FOR[found] if isinstance(found, NoSuch) else found.value
            if check and check("read", (name, value), **{**ctx, "idx": idx}):
                value = rfc1905.noSuchObject
            answers.append((name, value))
        return answers

    def next_visible(self, start: Oid, access: ReadAccess, idx: int) -> Entry | None:
        """The first instance after `start` in the requester's read view; None at its end.
        A subtree hidden as a whole is stepped over at once."""
        include = False
        while (entry := self._view.get_next(start, include)) is not None:
            root = self._view.root_of(entry.oid)
            if not access.hidden(root, entry, idx):
                return entry
            if access.hides_all_of(root):
                start, include = _subtree_end(root), True
            else:
                start, include = entry.oid, False
        return None
