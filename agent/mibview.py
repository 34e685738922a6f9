"""The read-only view of CRON-JOBS-MIB that both SNMP front ends answer from.

The AgentX session and the standalone pysnmp responder take every value from a MibView, so
the two modes always agree.  Look-ups are a dictionary hit (get) or a bisect (get_next).
"""

from __future__ import annotations

from typing import Any, Protocol

Oid = tuple[int, ...]


class Entry:
    """One instance: its OID and its value as a pyasn1/pysnmp object.

    An instance derived from a row carries its value as `raw` (an int or bytes) and the MIB's
    `value_class`: enough for the AgentX codec to encode it, while the pysnmp object (some
    microseconds to construct) is built only when `value` is read (the standalone front end).
    """

    __slots__ = ("oid", "raw", "value_class", "_value")

    def __init__(self, oid: Oid, value: Any = None, raw: int | bytes | None = None,
                 value_class: type[Any] | None = None) -> None:
        self.oid = oid
        self.raw = raw
        self.value_class = value_class
        self._value = value

    @property
    def value(self) -> Any:
        if self._value is None and self.value_class is not None:
            self._value = self.value_class(self.raw)
        return self._value

    def __repr__(self) -> str:
        return f"Entry({self.oid}, {self.value!r})"


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
