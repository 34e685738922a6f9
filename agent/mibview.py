"""The read-only view of CRON-JOBS-MIB that both SNMP front ends answer from.

The AgentX session and the standalone pysnmp responder take every value from a MibView, so
the two modes always agree.  Look-ups are a dictionary hit (get) or one bisect (get_next).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Oid = tuple[int, ...]


@dataclass(eq=False, slots=True)
class Entry:
    """One instance: its OID, its value as a pyasn1/pysnmp object, and a per-front-end cache.

    A changed value gets a new Entry, so `cache` (for instance pre-encoded AgentX varbind
    bytes keyed by byte order) never outlives the value it was computed from.
    """

    oid: Oid
    value: Any
    cache: dict[Any, Any] = field(default_factory=dict)


class NoSuch:
    """Why a Get found nothing: `NO_SUCH_OBJECT` or `NO_SUCH_INSTANCE` (RFC 3416 4.2.1)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NO_SUCH_OBJECT = NoSuch("noSuchObject")
NO_SUCH_INSTANCE = NoSuch("noSuchInstance")


class MibView(Protocol):
    def get(self, oid: Oid) -> Entry | NoSuch:
        """The instance at exactly `oid`, or why there is none."""
        ...

    def get_next(self, start: Oid, include: bool = False, end: Oid | None = None) -> Entry | None:
        """The first instance after `start` (at or after it when `include`), strictly before
        `end` when `end` is given; None when there is none (endOfMibView)."""
        ...
