"""The AgentX (RFC 2741) vocabulary: header flags, PDU types, error codes, value types with the
pyasn1 class of each value type, the codec's exceptions and one immutable dataclass per PDU
(agentx_codec.py puts them on the wire)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyasn1.type import univ
from pysnmp.proto import rfc1902, rfc1905

Oid = tuple[int, ...]

VERSION = 1
HEADER_SIZE = 20
MAX_PAYLOAD = 1 << 20
MAX_SUBIDS = 128
INTERNET = (1, 3, 6, 1)

# Header flags (RFC 2741 6.1).
INSTANCE_REGISTRATION = 0x01
NEW_INDEX = 0x02
ANY_INDEX = 0x04
NON_DEFAULT_CONTEXT = 0x08
NETWORK_BYTE_ORDER = 0x10


class PduType(enum.IntEnum):
    open = 1
    close = 2
    register = 3
    unregister = 4
    get = 5
    get_next = 6
    get_bulk = 7
    test_set = 8
    commit_set = 9
    undo_set = 10
    cleanup_set = 11
    notify = 12
    ping = 13
    index_allocate = 14
    index_deallocate = 15
    add_agent_caps = 16
    remove_agent_caps = 17
    response = 18


class Error(enum.IntEnum):
    """res.error values: the SNMP ones a subagent uses and the AgentX ones (RFC 2741 6.2.16)."""

    noAgentXError = 0
    genErr = 5
    noAccess = 6
    notWritable = 17
    commitFailed = 14
    undoFailed = 15
    openFailed = 256
    notOpen = 257
    indexWrongType = 258
    indexAlreadyAllocated = 259
    indexNoneAvailable = 260
    indexNotAllocated = 261
    unsupportedContext = 262
    duplicateRegistration = 263
    unknownRegistration = 264
    unknownAgentCaps = 265
    parseError = 266
    requestDenied = 267
    processingError = 268


class CloseReason(enum.IntEnum):
    other = 1
    parseError = 2
    protocolError = 3
    timeouts = 4
    shutdown = 5
    byManager = 6


class AgentXError(Exception):
    """Anything the codec refuses to decode or encode."""


class EncodeError(AgentXError):
    """A PDU or value that cannot be put on the wire (too many sub-ids, unknown value type)."""


class ParseError(AgentXError):
    """Malformed bytes.  `header` is set when the 20-byte header was readable, so the peer
    can be answered with a parseError Response carrying its session/transaction/packet ids."""

    def __init__(self, message: str, header: Header | None = None) -> None:
        super().__init__(message)
        self.header = header


class PayloadTooLarge(ParseError):
    """payload_length above the cap: the stream cannot be trusted any further."""


class VarType(enum.IntEnum):
    integer = 2
    octet_string = 4
    null = 5
    object_identifier = 6
    ip_address = 64
    counter32 = 65
    gauge32 = 66
    time_ticks = 67
    opaque = 68
    counter64 = 70
    no_such_object = 128
    no_such_instance = 129
    end_of_mib_view = 130


# --- value types: the pyasn1 class of each AgentX type ------------------------------------

_TYPE_OF_TAG = {
    univ.Integer.tagSet: VarType.integer,
    univ.OctetString.tagSet: VarType.octet_string,
    univ.Null.tagSet: VarType.null,
    univ.ObjectIdentifier.tagSet: VarType.object_identifier,
    rfc1902.IpAddress.tagSet: VarType.ip_address,
    rfc1902.Counter32.tagSet: VarType.counter32,
    rfc1902.Gauge32.tagSet: VarType.gauge32,
    rfc1902.TimeTicks.tagSet: VarType.time_ticks,
    rfc1902.Opaque.tagSet: VarType.opaque,
    rfc1902.Counter64.tagSet: VarType.counter64,
    rfc1905.NoSuchObject.tagSet: VarType.no_such_object,
    rfc1905.NoSuchInstance.tagSet: VarType.no_such_instance,
    rfc1905.EndOfMibView.tagSet: VarType.end_of_mib_view,
}

U32_TYPES = {
    VarType.counter32: rfc1902.Counter32,
    VarType.gauge32: rfc1902.Gauge32,
    VarType.time_ticks: rfc1902.TimeTicks,
}
STRING_TYPES = {
    VarType.octet_string: rfc1902.OctetString,
    VarType.ip_address: rfc1902.IpAddress,
    VarType.opaque: rfc1902.Opaque,
}
EMPTY_TYPES = {
    VarType.null: rfc1902.Null(""),
    VarType.no_such_object: rfc1905.noSuchObject,
    VarType.no_such_instance: rfc1905.noSuchInstance,
    VarType.end_of_mib_view: rfc1905.endOfMibView,
}


def var_type(value: Any) -> VarType:
    """The AgentX type code of a pyasn1 value."""
    try:
        return _TYPE_OF_TAG[value.tagSet]
    except (AttributeError, KeyError):
        raise EncodeError(f"no AgentX type for value {value!r}") from None


# --- PDUs ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Header:
    version: int
    type: int
    flags: int
    session_id: int
    transaction_id: int
    packet_id: int
    payload_length: int

    @property
    def network_order(self) -> bool:
        return bool(self.flags & NETWORK_BYTE_ORDER)


@dataclass(frozen=True, slots=True)
class SearchRange:
    start: Oid
    end: Oid = ()  # the null OID: unbounded
    include: bool = False


@dataclass(frozen=True, slots=True)
class VarBind:
    oid: Oid
    value: Any


@dataclass(frozen=True, kw_only=True)
class PDU:
    """Fields every PDU header carries; `network_order` is the NETWORK_BYTE_ORDER flag."""

    type: ClassVar[PduType]
    has_context: ClassVar[bool] = False
    session_id: int = 0
    transaction_id: int = 0
    packet_id: int = 0
    network_order: bool = True


@dataclass(frozen=True, kw_only=True)
class ContextPDU(PDU):
    """A PDU that may name a non-default context (flag NON_DEFAULT_CONTEXT); None = default."""

    has_context: ClassVar[bool] = True
    context: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class Open(PDU):
    type: ClassVar[PduType] = PduType.open
    timeout: int = 0
    id: Oid = ()
    description: bytes = b""


@dataclass(frozen=True, kw_only=True)
class Close(PDU):
    type: ClassVar[PduType] = PduType.close
    reason: int = CloseReason.shutdown


@dataclass(frozen=True, kw_only=True)
class Register(ContextPDU):
    type: ClassVar[PduType] = PduType.register
    timeout: int = 0
    priority: int = 127
    subtree: Oid = ()
    range_subid: int = 0
    upper_bound: int = 0
    instance_registration: bool = False


@dataclass(frozen=True, kw_only=True)
class Unregister(ContextPDU):
    type: ClassVar[PduType] = PduType.unregister
    priority: int = 127
    subtree: Oid = ()
    range_subid: int = 0
    upper_bound: int = 0


@dataclass(frozen=True, kw_only=True)
class Get(ContextPDU):
    type: ClassVar[PduType] = PduType.get
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetNext(ContextPDU):
    type: ClassVar[PduType] = PduType.get_next
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetBulk(ContextPDU):
    type: ClassVar[PduType] = PduType.get_bulk
    non_repeaters: int = 0
    max_repetitions: int = 0
    ranges: tuple[SearchRange, ...] = ()


@dataclass(frozen=True, kw_only=True)
class VarBindPDU(ContextPDU):
    varbinds: tuple[VarBind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TestSet(VarBindPDU):
    type: ClassVar[PduType] = PduType.test_set


@dataclass(frozen=True, kw_only=True)
class Notify(VarBindPDU):
    type: ClassVar[PduType] = PduType.notify


@dataclass(frozen=True, kw_only=True)
class IndexAllocate(VarBindPDU):
    type: ClassVar[PduType] = PduType.index_allocate
    new_index: bool = False
    any_index: bool = False


@dataclass(frozen=True, kw_only=True)
class IndexDeallocate(VarBindPDU):
    type: ClassVar[PduType] = PduType.index_deallocate
    new_index: bool = False
    any_index: bool = False


@dataclass(frozen=True, kw_only=True)
class CommitSet(PDU):
    type: ClassVar[PduType] = PduType.commit_set


@dataclass(frozen=True, kw_only=True)
class UndoSet(PDU):
    type: ClassVar[PduType] = PduType.undo_set


@dataclass(frozen=True, kw_only=True)
class CleanupSet(PDU):
    type: ClassVar[PduType] = PduType.cleanup_set


@dataclass(frozen=True, kw_only=True)
class Ping(ContextPDU):
    type: ClassVar[PduType] = PduType.ping


@dataclass(frozen=True, kw_only=True)
class AddAgentCaps(ContextPDU):
    type: ClassVar[PduType] = PduType.add_agent_caps
    id: Oid = ()
    description: bytes = b""


@dataclass(frozen=True, kw_only=True)
class RemoveAgentCaps(ContextPDU):
    type: ClassVar[PduType] = PduType.remove_agent_caps
    id: Oid = ()


@dataclass(frozen=True, kw_only=True)
class Response(PDU):
    type: ClassVar[PduType] = PduType.response
    sys_uptime: int = 0
    error: int = 0
    index: int = 0
    varbinds: tuple[VarBind, ...] = field(default=())


PDU_CLASSES: dict[int, type[PDU]] = {
    cls.type: cls
    for cls in (Open, Close, Register, Unregister, Get, GetNext, GetBulk, TestSet, CommitSet,
                UndoSet, CleanupSet, Notify, Ping, IndexAllocate, IndexDeallocate,
                AddAgentCaps, RemoveAgentCaps, Response)
}
