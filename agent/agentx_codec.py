"""Sans-IO AgentX (RFC 2741) codec: bytes in, immutable PDU objects out, and back.

No sockets here.  `decode(data)` turns one whole PDU into a frozen dataclass, `encode(pdu)`
turns it back into bytes in the PDU's own byte order, and `AgentXBuffer` frames a byte
stream (several PDUs per read, one PDU split across reads, a cap on payload_length).
Values are pysnmp/pyasn1 objects.  `entry_varbind` is the hot path for Responses: it encodes
a MibView Entry derived from a row straight from its raw value.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import Any

from pyasn1.error import PyAsn1Error
from pysnmp.proto import rfc1902

from .agentx_pdus import (
    ANY_INDEX,
    EMPTY_TYPES,
    HEADER_SIZE,
    INSTANCE_REGISTRATION,
    INTERNET,
    MAX_PAYLOAD,
    MAX_SUBIDS,
    NETWORK_BYTE_ORDER,
    NEW_INDEX,
    NON_DEFAULT_CONTEXT,
    PDU,
    PDU_CLASSES,
    STRING_TYPES,
    U32_TYPES,
    VERSION,
    AddAgentCaps,
    AgentXError,
    CleanupSet,
    Close,
    CloseReason,
    CommitSet,
    ContextPDU,
    EncodeError,
    Error,
    Get,
    GetBulk,
    GetNext,
    Header,
    IndexAllocate,
    IndexDeallocate,
    Notify,
    Oid,
    Open,
    ParseError,
    PayloadTooLarge,
    PduType,
    Ping,
    Register,
    RemoveAgentCaps,
    Response,
    SearchRange,
    TestSet,
    UndoSet,
    Unregister,
    VarBind,
    VarBindPDU,
    VarType,
    var_type,
)
from .mibview import Entry

# the codec's own API and the vocabulary it encodes (agentx_pdus): one module for callers
__all__ = [
    "ANY_INDEX", "AddAgentCaps", "AgentXBuffer", "AgentXError", "CleanupSet", "Close",
    "CloseReason", "CommitSet", "ContextPDU", "EncodeError", "Error", "Get", "GetBulk", "GetNext",
    "HEADER_SIZE", "Header", "INSTANCE_REGISTRATION", "INTERNET", "IndexAllocate",
    "IndexDeallocate", "MAX_PAYLOAD", "MAX_SUBIDS", "NETWORK_BYTE_ORDER", "NEW_INDEX",
    "NON_DEFAULT_CONTEXT", "Notify", "Oid", "Open", "PDU", "PDU_CLASSES", "ParseError",
    "PayloadTooLarge", "PduType", "Ping", "Register", "RemoveAgentCaps", "Response", "SearchRange",
    "TestSet", "UndoSet", "Unregister", "VERSION", "VarBind", "VarBindPDU", "VarType", "decode",
    "decode_header", "decode_payload", "encode", "encode_octets", "encode_oid", "encode_value",
    "encode_varbind", "entry_varbind", "get_next_response", "response_bytes", "single_get_next",
    "var_type",
]

# --- decoding -----------------------------------------------------------------------------

_SUBIDS = {order: [struct.Struct(f"{order}{n}I") for n in range(MAX_SUBIDS + 1)]
           for order in "<>"}


class _Reader:
    """Walks one PDU's payload in the byte order its header announced."""

    __slots__ = ("data", "pos", "end", "order", "header")

    def __init__(self, data: bytes, pos: int, end: int, network_order: bool,
                 header: Header) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.order = ">" if network_order else "<"
        self.header = header

    def fail(self, message: str) -> ParseError:
        return ParseError(message, self.header)

    def take(self, size: int) -> int:
        pos = self.pos
        if pos + size > self.end:
            raise self.fail("PDU payload ends in the middle of a field")
        self.pos = pos + size
        return pos

    def u8s(self, count: int) -> tuple[int, ...]:
        pos = self.take(count)
        return tuple(self.data[pos:pos + count])

    def u16(self) -> int:
        return struct.unpack_from(self.order + "H", self.data, self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack_from(self.order + "I", self.data, self.take(4))[0]

    def i32(self) -> int:
        return struct.unpack_from(self.order + "i", self.data, self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack_from(self.order + "Q", self.data, self.take(8))[0]

    def octets(self) -> bytes:
        length = self.u32()
        if length > self.end - self.pos:
            raise self.fail(f"octet string length {length} runs past the PDU")
        pos = self.take((length + 3) & ~3)
        return bytes(self.data[pos:pos + length])

    def oid(self) -> tuple[Oid, bool]:
        # The hot spot of request decoding: plain indexing and precompiled structs.
        data, pos = self.data, self.pos
        if pos + 4 > self.end:
            raise self.fail("PDU payload ends in the middle of an OID")
        n_subid, prefix, include = data[pos], data[pos + 1], data[pos + 2]
        if n_subid > MAX_SUBIDS:
            raise self.fail(f"OID with {n_subid} sub-identifiers (at most {MAX_SUBIDS})")
        end = pos + 4 + 4 * n_subid
        if end > self.end:
            raise self.fail("PDU payload ends in the middle of an OID")
        self.pos = end
        subids = _SUBIDS[self.order][n_subid].unpack_from(data, pos + 4)
        if prefix:
            subids = (1, 3, 6, 1, prefix, *subids)
        return subids, include != 0

    def search_ranges(self) -> tuple[SearchRange, ...]:
        ranges = []
        while self.pos < self.end:
            start, include = self.oid()
            end, _ = self.oid()
            ranges.append(SearchRange(start, end, include))
        return tuple(ranges)

    def varbinds(self) -> tuple[VarBind, ...]:
        varbinds = []
        while self.pos < self.end:
            code = self.u16()
            self.u16()
            name, _ = self.oid()
            try:
                value = self.value(code)
            except PyAsn1Error as exc:
                raise self.fail(f"bad {VarType(code).name} value: {exc}") from None
            varbinds.append(VarBind(name, value))
        return tuple(varbinds)

    def value(self, code: int) -> Any:
        if code == VarType.integer:
            return rfc1902.Integer32(self.i32())
        if code in U32_TYPES:
            return U32_TYPES[code](self.u32())  # type: ignore[index]
        if code == VarType.counter64:
            return rfc1902.Counter64(self.u64())
        if code in STRING_TYPES:
            data = self.octets()
            if code == VarType.ip_address and len(data) != 4:
                raise self.fail(f"IpAddress of {len(data)} octets")
            return STRING_TYPES[code](data)  # type: ignore[index]
        if code == VarType.object_identifier:
            return rfc1902.ObjectIdentifier(self.oid()[0])
        if code in EMPTY_TYPES:
            return EMPTY_TYPES[code]  # type: ignore[index]
        raise self.fail(f"unknown varbind type {code}")

    def finish(self) -> None:
        if self.pos != self.end:
            raise self.fail(f"{self.end - self.pos} unexpected octets at the end of the PDU")


def decode_header(data: bytes | memoryview, pos: int = 0) -> Header:
    """The header at `pos` (at least 20 octets must be there)."""
    version, pdu_type, flags, _ = data[pos:pos + 4]
    order = ">" if flags & NETWORK_BYTE_ORDER else "<"
    session_id, transaction_id, packet_id, length = struct.unpack_from(order + "4I", data, pos + 4)
    return Header(version, pdu_type, flags, session_id, transaction_id, packet_id, length)


_FAST_HEAD = {order: struct.Struct(order + "4I") for order in "<>"}
_GET_NEXT_PLAIN = {
    (VERSION, PduType.get_next, 0): "<",
    (VERSION, PduType.get_next, NETWORK_BYTE_ORDER): ">",
}


def single_get_next(frame: bytes) -> tuple[bool, Oid, bool, Oid] | None:
    """(network_order, start, include, end) when `frame` is a whole, well-formed GetNext PDU
    with one SearchRange in the default context (what snmpd sends for every varbind of a
    walk); None for anything else, which `decode` then handles (and reports) in full."""
    size = len(frame)
    if size < HEADER_SIZE + 8:
        return None
    order = _GET_NEXT_PLAIN.get((frame[0], frame[1], frame[2]))
    if order is None or _FAST_HEAD[order].unpack_from(frame, 4)[3] != size - HEADER_SIZE:
        return None
    n_start, prefix, include = frame[20], frame[21], frame[22]
    pos = 24 + 4 * n_start
    if n_start > MAX_SUBIDS or pos + 4 > size:
        return None
    n_end, end_prefix = frame[pos], frame[pos + 1]
    if n_end > MAX_SUBIDS or pos + 4 + 4 * n_end != size:
        return None
    subids = _SUBIDS[order]
    start = subids[n_start].unpack_from(frame, 24)
    if prefix:
        start = (1, 3, 6, 1, prefix, *start)
    end = subids[n_end].unpack_from(frame, pos + 4)
    if end_prefix:
        end = (1, 3, 6, 1, end_prefix, *end)
    return order == ">", start, include != 0, end


_RESPONSE_START = {order: bytes((VERSION, PduType.response, flag, 0))
                   for order, flag in (("<", 0), (">", NETWORK_BYTE_ORDER))}
_RESPONSE_TAIL = {order: struct.Struct(order + "IIHH") for order in "<>"}


def get_next_response(frame: bytes, varbind: bytes, sys_uptime: int) -> bytes:
    """The no-error Response, holding one encoded `varbind`, to the request `frame` that
    `single_get_next` accepted: its byte order, session, transaction and packet ids."""
    order = ">" if frame[2] & NETWORK_BYTE_ORDER else "<"
    return b"".join((_RESPONSE_START[order], frame[4:16],
                     _RESPONSE_TAIL[order].pack(8 + len(varbind), sys_uptime, 0, 0), varbind))


def decode(data: bytes) -> PDU:
    """One whole PDU (header and exactly payload_length octets) -> its PDU object."""
    if len(data) < HEADER_SIZE:
        raise ParseError(f"{len(data)} octets is shorter than an AgentX header")
    header = decode_header(data)
    if len(data) != HEADER_SIZE + header.payload_length:
        raise ParseError(
            f"payload_length {header.payload_length} but {len(data) - HEADER_SIZE} octets follow",
            header)
    return decode_payload(header, data, HEADER_SIZE)


def decode_payload(header: Header, data: bytes, pos: int) -> PDU:
    """The PDU whose header is `header` and whose payload starts at data[pos]."""
    if header.version != VERSION:
        raise ParseError(f"AgentX version {header.version} (only 1 is spoken)", header)
    cls = PDU_CLASSES.get(header.type)
    if cls is None:
        raise ParseError(f"unknown PDU type {header.type}", header)
    if header.payload_length % 4:
        raise ParseError(f"payload_length {header.payload_length} is not a multiple of 4",
                         header)
    reader = _Reader(data, pos, pos + header.payload_length, header.network_order, header)
    common: dict[str, Any] = {
        "session_id": header.session_id, "transaction_id": header.transaction_id,
        "packet_id": header.packet_id, "network_order": header.network_order,
    }
    if cls.has_context and header.flags & NON_DEFAULT_CONTEXT:
        common["context"] = reader.octets()
    pdu = _DECODERS[cls](reader, header, common)
    reader.finish()
    return pdu


def _decode_open(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    timeout = r.u8s(4)[0]
    oid, _ = r.oid()
    return Open(timeout=timeout, id=oid, description=r.octets(), **common)


def _decode_close(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return Close(reason=r.u8s(4)[0], **common)


def _decode_register(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    timeout, priority, range_subid, _ = r.u8s(4)
    subtree, _ = r.oid()
    upper = r.u32() if range_subid else 0
    return Register(timeout=timeout, priority=priority, subtree=subtree, range_subid=range_subid,
                    upper_bound=upper, instance_registration=bool(h.flags & INSTANCE_REGISTRATION),
                    **common)


def _decode_unregister(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    _, priority, range_subid, _ = r.u8s(4)
    subtree, _ = r.oid()
    upper = r.u32() if range_subid else 0
    return Unregister(priority=priority, subtree=subtree, range_subid=range_subid,
                      upper_bound=upper, **common)


def _decode_ranges(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return PDU_CLASSES[h.type](ranges=r.search_ranges(), **common)  # type: ignore[call-arg]


def _decode_get_bulk(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    non_repeaters = r.u16()
    max_repetitions = r.u16()
    return GetBulk(non_repeaters=non_repeaters, max_repetitions=max_repetitions,
                   ranges=r.search_ranges(), **common)


def _decode_varbinds(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return PDU_CLASSES[h.type](varbinds=r.varbinds(), **common)  # type: ignore[call-arg]


def _decode_index(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return PDU_CLASSES[h.type](  # type: ignore[call-arg]
        varbinds=r.varbinds(), new_index=bool(h.flags & NEW_INDEX),
        any_index=bool(h.flags & ANY_INDEX), **common)


def _decode_empty(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return PDU_CLASSES[h.type](**common)


def _decode_add_caps(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    oid, _ = r.oid()
    return AddAgentCaps(id=oid, description=r.octets(), **common)


def _decode_remove_caps(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    return RemoveAgentCaps(id=r.oid()[0], **common)


def _decode_response(r: _Reader, h: Header, common: dict[str, Any]) -> PDU:
    sys_uptime = r.u32()
    error = r.u16()
    index = r.u16()
    return Response(sys_uptime=sys_uptime, error=error, index=index, varbinds=r.varbinds(),
                    **common)


_DECODERS = {
    Open: _decode_open, Close: _decode_close, Register: _decode_register,
    Unregister: _decode_unregister, Get: _decode_ranges, GetNext: _decode_ranges,
    GetBulk: _decode_get_bulk, TestSet: _decode_varbinds, CommitSet: _decode_empty,
    UndoSet: _decode_empty, CleanupSet: _decode_empty, Notify: _decode_varbinds,
    Ping: _decode_empty, IndexAllocate: _decode_index, IndexDeallocate: _decode_index,
    AddAgentCaps: _decode_add_caps, RemoveAgentCaps: _decode_remove_caps,
    Response: _decode_response,
}


# --- encoding -----------------------------------------------------------------------------

def _order(network_order: bool) -> str:
    return ">" if network_order else "<"


def encode_oid(oid: Oid, network_order: bool, include: bool = False) -> bytes:
    """An OID in AgentX form, prefix-compressed when it starts 1.3.6.1.N with N in 1..255."""
    prefix = 0
    subids = oid
    if len(oid) >= 5 and oid[:4] == INTERNET and 0 < oid[4] < 256:
        prefix = oid[4]
        subids = oid[5:]
    if len(subids) > MAX_SUBIDS:
        raise EncodeError(f"OID with {len(subids)} sub-identifiers (at most {MAX_SUBIDS})")
    try:
        packed = struct.pack(f"{_order(network_order)}{len(subids)}I", *subids)
    except struct.error:
        raise EncodeError(f"OID {oid} has a sub-identifier outside 0..4294967295") from None
    return bytes((len(subids), prefix, int(include), 0)) + packed


def encode_octets(data: bytes, network_order: bool) -> bytes:
    padding = -len(data) % 4
    return struct.pack(_order(network_order) + "I", len(data)) + data + b"\0" * padding


def encode_value(value: Any, network_order: bool) -> tuple[VarType, bytes]:
    code = var_type(value)
    order = _order(network_order)
    try:
        if code == VarType.integer:
            return code, struct.pack(order + "i", int(value))
        if code in U32_TYPES:
            return code, struct.pack(order + "I", int(value))
        if code == VarType.counter64:
            return code, struct.pack(order + "Q", int(value))
    except struct.error:
        raise EncodeError(f"{code.name} value {int(value)} out of range") from None
    if code in STRING_TYPES:
        return code, encode_octets(value.asOctets(), network_order)
    if code == VarType.object_identifier:
        return code, encode_oid(tuple(value), network_order)
    return code, b""


def encode_varbind(oid: Oid, value: Any, network_order: bool) -> bytes:
    code, data = encode_value(value, network_order)
    head = struct.pack(_order(network_order) + "HH", code, 0)
    return head + encode_oid(oid, network_order) + data


def entry_varbind(entry: Entry, network_order: bool) -> bytes:
    """The encoded varbind of a MibView entry; one derived from a row is encoded from its raw
    value and class, without building the pysnmp object."""
    if entry.value_class is None:
        return encode_varbind(entry.oid, entry.value, network_order)
    code = class_var_type(entry.value_class)
    order = _order(network_order)
    raw = entry.raw
    if isinstance(raw, bytes):
        data = encode_octets(raw, network_order)
    else:
        try:
            data = struct.pack(order + _INT_FORMATS[code], raw)
        except (KeyError, struct.error):
            raise EncodeError(f"{code.name} value {raw!r} cannot be encoded") from None
    return struct.pack(order + "HH", code, 0) + encode_oid(entry.oid, network_order) + data


_INT_FORMATS = {VarType.integer: "i", VarType.counter32: "I", VarType.gauge32: "I",
                VarType.time_ticks: "I", VarType.counter64: "Q"}


@functools.cache
def class_var_type(cls: type[Any]) -> VarType:
    """The AgentX type code of the values of a pyasn1 class (the class carries their tagSet)."""
    return var_type(cls)


def _header(pdu_type: int, flags: int, session_id: int, transaction_id: int, packet_id: int,
            payload_length: int) -> bytes:
    order = ">" if flags & NETWORK_BYTE_ORDER else "<"
    return struct.pack(order + "4B4I", VERSION, pdu_type, flags, 0, session_id, transaction_id,
                       packet_id, payload_length)


def response_bytes(request: PDU | Header, varbinds: Iterable[bytes], error: int = 0,
                   index: int = 0, sys_uptime: int = 0) -> bytes:
    """A Response to `request` (a PDU, or the header of one that did not parse) in its byte
    order, copying its session, transaction and packet ids, from already-encoded varbinds."""
    order = _order(request.network_order)
    body = b"".join((struct.pack(order + "IHH", sys_uptime, error, index), *varbinds))
    flags = NETWORK_BYTE_ORDER if request.network_order else 0
    return _header(PduType.response, flags, request.session_id, request.transaction_id,
                   request.packet_id, len(body)) + body


def encode(pdu: PDU) -> bytes:
    """A PDU object -> its bytes, header included, in the PDU's byte order."""
    net = pdu.network_order
    order = _order(net)
    flags = NETWORK_BYTE_ORDER if net else 0
    parts: list[bytes] = []
    if isinstance(pdu, ContextPDU) and pdu.context is not None:
        flags |= NON_DEFAULT_CONTEXT
        parts.append(encode_octets(pdu.context, net))
    if isinstance(pdu, Register) and pdu.instance_registration:
        flags |= INSTANCE_REGISTRATION
    if isinstance(pdu, IndexAllocate | IndexDeallocate):
        flags |= (NEW_INDEX if pdu.new_index else 0) | (ANY_INDEX if pdu.any_index else 0)
    try:
        parts.extend(_encode_body(pdu, net, order))
        body = b"".join(parts)
        return _header(pdu.type, flags, pdu.session_id, pdu.transaction_id, pdu.packet_id,
                       len(body)) + body
    except struct.error as exc:
        raise EncodeError(f"{pdu.type.name}: a field is out of range ({exc})") from None


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 255:
        raise EncodeError(f"{what} {value} does not fit in one octet")
    return value


def _encode_body(pdu: PDU, net: bool, order: str) -> list[bytes]:
    if isinstance(pdu, Open):
        return [bytes((_byte(pdu.timeout, "timeout"), 0, 0, 0)), encode_oid(pdu.id, net),
                encode_octets(pdu.description, net)]
    if isinstance(pdu, Close):
        return [bytes((_byte(pdu.reason, "reason"), 0, 0, 0))]
    if isinstance(pdu, Register | Unregister):
        first = pdu.timeout if isinstance(pdu, Register) else 0
        parts = [bytes((_byte(first, "timeout"), _byte(pdu.priority, "priority"),
                        _byte(pdu.range_subid, "range_subid"), 0)),
                 encode_oid(pdu.subtree, net)]
        if pdu.range_subid:
            parts.append(struct.pack(order + "I", pdu.upper_bound))
        return parts
    if isinstance(pdu, Get | GetNext | GetBulk):
        parts = []
        if isinstance(pdu, GetBulk):
            parts.append(struct.pack(order + "HH", pdu.non_repeaters, pdu.max_repetitions))
        for r in pdu.ranges:
            parts.append(encode_oid(r.start, net, r.include))
            parts.append(encode_oid(r.end, net))
        return parts
    if isinstance(pdu, VarBindPDU):
        return [encode_varbind(vb.oid, vb.value, net) for vb in pdu.varbinds]
    if isinstance(pdu, AddAgentCaps):
        return [encode_oid(pdu.id, net), encode_octets(pdu.description, net)]
    if isinstance(pdu, RemoveAgentCaps):
        return [encode_oid(pdu.id, net)]
    if isinstance(pdu, Response):
        return [struct.pack(order + "IHH", pdu.sys_uptime, pdu.error, pdu.index),
                *(encode_varbind(vb.oid, vb.value, net) for vb in pdu.varbinds)]
    return []  # CommitSet, UndoSet, CleanupSet, Ping: header (and context) only


# --- framing ------------------------------------------------------------------------------

class AgentXBuffer:
    """Frames a byte stream into PDUs: `receive` bytes, then `next_pdu` until it gives None."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._data = bytearray()
        self.max_payload = max_payload

    def receive(self, data: bytes) -> None:
        self._data += data

    def next_frame(self) -> bytes | None:
        """The bytes of the next complete PDU (header included), or None until more arrive.

        PayloadTooLarge means the stream is unusable and the connection should be dropped.
        """
        data = self._data
        size = len(data)
        if size < HEADER_SIZE:
            return None
        order = ">" if data[2] & NETWORK_BYTE_ORDER else "<"
        length = _FAST_HEAD[order].unpack_from(data, 4)[3]
        if length > self.max_payload:
            raise PayloadTooLarge(f"payload_length {length} exceeds {self.max_payload}",
                                  decode_header(data))
        total = HEADER_SIZE + length
        if size < total:
            return None
        if size == total:
            frame = bytes(data)
            data.clear()
        else:
            frame = bytes(data[:total])
            del data[:total]
        return frame

    def next_pdu(self) -> PDU | None:
        """The next complete PDU, or None until more bytes arrive.

        A malformed PDU raises ParseError after its bytes are consumed, so the stream goes on;
        PayloadTooLarge means the stream is unusable and the connection should be dropped.
        """
        frame = self.next_frame()
        return None if frame is None else decode(frame)

    def feed(self, data: bytes) -> list[PDU]:
        """`receive` then every complete PDU; an error raises after earlier PDUs were consumed,
        so prefer `next_pdu` when a stream may mix good and bad PDUs."""
        self.receive(data)
        pdus = []
        while (pdu := self.next_pdu()) is not None:
            pdus.append(pdu)
        return pdus

    def __len__(self) -> int:
        return len(self._data)
