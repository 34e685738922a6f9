"""AgentX codec: RFC 2741 golden bytes, round trips in both byte orders, framing, hostile input."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from cronwrap.agent import agentx_codec as ax
from cronwrap.agent.mibview import Entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pysnmp.proto import rfc1902, rfc1905

ROOT = (1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 71)


def h(text: str) -> bytes:
    """Hex octets; `#` starts a comment running to the end of the line."""
    return bytes.fromhex("".join(line.partition("#")[0] for line in text.splitlines()).replace(
        " ", ""))


# --- golden vectors, written out field by field from RFC 2741 section 6 ----------------------

OPEN_BIG = h("""
    01 01 10 00  00000000  00000000  00000001  00000010
    05 000000                      # timeout 5, reserved
    00 00 00 00                    # id: null OID
    00000003 616263 00             # descr "abc", padded
""")
OPEN_LITTLE = h("""
    01 01 00 00  00000000  00000000  01000000  10000000
    05 000000
    00 00 00 00
    03000000 616263 00
""")
GETNEXT_BIG = h("""
    01 06 10 00  00000007  00000008  00000009  00000030
    05 04 01 00  00000001 00001f88 0000270f 0000270f 00000047   # start, prefix 4, include
    05 04 00 00  00000001 00001f88 0000270f 0000270f 00000048   # end
""")
GETNEXT_LITTLE = h("""
    01 06 00 00  07000000  08000000  09000000  30000000
    05 04 01 00  01000000 881f0000 0f270000 0f270000 47000000
    05 04 00 00  01000000 881f0000 0f270000 0f270000 48000000
""")
RESPONSE_LITTLE = h("""
    01 12 00 00  01000000  00000000  03000000  44000000
    00000000  0000 0000                                  # sysUpTime, error, index
    4100 0000  02 04 00 00 01000000 05000000  05000000   # Counter32 1.3.6.1.4.1.5 = 5
    0400 0000  02 00 00 00 01000000 02000000             # OCTET STRING 1.2 =
               05000000 6162636465 000000                #   "abcde"
    8200 0000  01 02 00 00 01000000                      # endOfMibView 1.3.6.1.2.1
""")
RESPONSE_BIG = h("""
    01 12 10 00  00000001  00000000  00000003  00000044
    00000000  0000 0000
    0041 0000  02 04 00 00 00000001 00000005  00000005
    0004 0000  02 00 00 00 00000001 00000002
               00000005 6162636465 000000
    0082 0000  01 02 00 00 00000001
""")


def response_pdu(network_order: bool) -> ax.Response:
    return ax.Response(session_id=1, packet_id=3, network_order=network_order, varbinds=(
        ax.VarBind((1, 3, 6, 1, 4, 1, 5), rfc1902.Counter32(5)),
        ax.VarBind((1, 2), rfc1902.OctetString(b"abcde")),
        ax.VarBind((1, 3, 6, 1, 2, 1), rfc1905.endOfMibView),
    ))


GOLDEN = [
    (ax.Open(timeout=5, description=b"abc", packet_id=1), OPEN_BIG),
    (ax.Open(timeout=5, description=b"abc", packet_id=1, network_order=False), OPEN_LITTLE),
    (ax.GetNext(session_id=7, transaction_id=8, packet_id=9,
                ranges=(ax.SearchRange(ROOT, (*ROOT[:-1], 72), include=True),)), GETNEXT_BIG),
    (ax.GetNext(session_id=7, transaction_id=8, packet_id=9, network_order=False,
                ranges=(ax.SearchRange(ROOT, (*ROOT[:-1], 72), include=True),)), GETNEXT_LITTLE),
    (response_pdu(True), RESPONSE_BIG),
    (response_pdu(False), RESPONSE_LITTLE),
]


def types_of(pdu: ax.PDU) -> list[ax.VarType]:
    return [ax.var_type(vb.value) for vb in getattr(pdu, "varbinds", ())]


@pytest.mark.parametrize(("pdu", "wire"), GOLDEN)
def test_golden_vectors_encode_and_decode(pdu: ax.PDU, wire: bytes) -> None:
    assert ax.encode(pdu) == wire
    decoded = ax.decode(wire)
    assert decoded == pdu
    assert types_of(decoded) == types_of(pdu)


def test_response_fast_path_matches_generic_encoding() -> None:
    entries = [Entry(vb.oid, vb.value) for vb in response_pdu(False).varbinds]
    fast = ax.response_bytes(response_pdu(False), [ax.entry_varbind(e, False) for e in entries])
    assert fast == RESPONSE_LITTLE


DERIVED = [(rfc1902.Counter32, 2**32 - 1), (rfc1902.Gauge32, 7), (rfc1902.Unsigned32, 0),
           (rfc1902.Integer32, -1), (rfc1902.TimeTicks, 100), (rfc1902.OctetString, b""),
           (rfc1902.OctetString, b"abcde"), (rfc1902.Counter64, 2**40)]


@pytest.mark.parametrize("network_order", [False, True])
@pytest.mark.parametrize(("cls", "raw"), DERIVED)
def test_an_entry_derived_from_a_row_encodes_as_its_pysnmp_value(
        cls: type[Any], raw: int | bytes, network_order: bool) -> None:
    oid = (1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 71, 1, 5, 1, 3, 4, 114, 111, 111, 116)
    derived = Entry(oid, raw=raw, value_class=cls)
    assert ax.entry_varbind(derived, network_order) == ax.encode_varbind(oid, cls(raw),
                                                                         network_order)
    assert derived.value == cls(raw)


def test_a_derived_value_out_of_range_is_an_encode_error() -> None:
    with pytest.raises(ax.EncodeError):
        ax.entry_varbind(Entry((1, 3), raw=2**32, value_class=rfc1902.Counter32), False)


def test_context_flag_puts_the_context_after_the_header() -> None:
    wire = ax.encode(ax.Ping(session_id=2, packet_id=4, context=b"ctx"))
    assert wire == h("01 0d 18 00 00000002 00000000 00000004 00000008  00000003 637478 00")
    assert ax.decode(wire) == ax.Ping(session_id=2, packet_id=4, context=b"ctx")


def test_prefix_compression_rules() -> None:
    assert ax.encode_oid((1, 3, 6, 1, 2, 1, 1), True) == h("02 02 00 00 00000001 00000001")
    # fifth sub-id 0 or above 255: no prefix
    assert ax.encode_oid((1, 3, 6, 1, 0), True)[:4] == h("05 00 00 00")
    assert ax.encode_oid((1, 3, 6, 1, 256), True)[:4] == h("05 00 00 00")
    assert ax.encode_oid((1, 3, 6, 2, 4), True)[:4] == h("05 00 00 00")
    assert ax.encode_oid((), True) == h("00 00 00 00")
    # 128 sub-ids after the prefix is the limit
    assert len(ax.encode_oid((1, 3, 6, 1, 4, *range(128)), True)) == 4 + 4 * 128
    with pytest.raises(ax.EncodeError):
        ax.encode_oid(tuple(range(129)), True)
    with pytest.raises(ax.EncodeError):
        ax.encode_oid((1, 2 ** 32), True)


def test_register_with_range_and_instance_flag() -> None:
    pdu = ax.Register(subtree=ROOT, range_subid=10, upper_bound=99, priority=100,
                      instance_registration=True, network_order=False)
    wire = ax.encode(pdu)
    assert wire[2] == ax.INSTANCE_REGISTRATION
    assert wire[20:24] == bytes((0, 100, 10, 0))
    assert wire[-4:] == struct.pack("<I", 99)
    assert ax.decode(wire) == pdu


# --- round trips ----------------------------------------------------------------------------

u32 = st.integers(0, 2 ** 32 - 1)
plain_oids = st.lists(u32, max_size=ax.MAX_SUBIDS).map(tuple)
internet_oids = st.tuples(st.integers(0, 300), st.lists(u32, max_size=ax.MAX_SUBIDS - 5)).map(
    lambda t: (1, 3, 6, 1, t[0], *t[1]))
oids = st.one_of(plain_oids, internet_oids)
value_oids = st.lists(u32, min_size=2, max_size=20).map(
    lambda s: (s[0] % 3, s[1] % 40, *s[2:]))

values = st.one_of(
    st.integers(-2 ** 31, 2 ** 31 - 1).map(rfc1902.Integer32),
    st.binary(max_size=40).map(rfc1902.OctetString),
    st.just(rfc1902.Null("")),
    value_oids.map(rfc1902.ObjectIdentifier),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    u32.map(rfc1902.Counter32),
    u32.map(rfc1902.Gauge32),
    u32.map(rfc1902.TimeTicks),
    st.binary(max_size=40).map(rfc1902.Opaque),
    st.integers(0, 2 ** 64 - 1).map(rfc1902.Counter64),
    st.sampled_from([rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView]),
)
varbinds = st.lists(st.builds(ax.VarBind, oids, values), max_size=6).map(tuple)
ranges = st.lists(st.builds(ax.SearchRange, oids, oids, st.booleans()), max_size=6).map(tuple)
u8 = st.integers(0, 255)
u16 = st.integers(0, 65535)
contexts = st.none() | st.binary(max_size=12)
common = {"session_id": u32, "transaction_id": u32, "packet_id": u32,
          "network_order": st.booleans()}
with_context = {**common, "context": contexts}

pdus = st.one_of(
    st.builds(ax.Open, timeout=u8, id=oids, description=st.binary(max_size=30), **common),
    st.builds(ax.Close, reason=u8, **common),
    st.builds(ax.Register, timeout=u8, priority=u8, subtree=oids, range_subid=u8,
              upper_bound=u32, instance_registration=st.booleans(), **with_context),
    st.builds(ax.Unregister, priority=u8, subtree=oids, range_subid=u8, upper_bound=u32,
              **with_context),
    st.builds(ax.Get, ranges=ranges, **with_context),
    st.builds(ax.GetNext, ranges=ranges, **with_context),
    st.builds(ax.GetBulk, non_repeaters=u16, max_repetitions=u16, ranges=ranges,
              **with_context),
    st.builds(ax.TestSet, varbinds=varbinds, **with_context),
    st.builds(ax.CommitSet, **common),
    st.builds(ax.UndoSet, **common),
    st.builds(ax.CleanupSet, **common),
    st.builds(ax.Notify, varbinds=varbinds, **with_context),
    st.builds(ax.Ping, **with_context),
    st.builds(ax.IndexAllocate, varbinds=varbinds, new_index=st.booleans(),
              any_index=st.booleans(), **with_context),
    st.builds(ax.IndexDeallocate, varbinds=varbinds, new_index=st.booleans(),
              any_index=st.booleans(), **with_context),
    st.builds(ax.AddAgentCaps, id=oids, description=st.binary(max_size=30), **with_context),
    st.builds(ax.RemoveAgentCaps, id=oids, **with_context),
    st.builds(ax.Response, sys_uptime=u32, error=u16, index=u16, varbinds=varbinds, **common),
)


def normalised(pdu: ax.PDU) -> ax.PDU:
    """What decoding gives back: the upper bound only travels with a range_subid."""
    if isinstance(pdu, ax.Register | ax.Unregister) and not pdu.range_subid:
        from dataclasses import replace

        return replace(pdu, upper_bound=0)
    return pdu


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(pdus)
def test_every_pdu_round_trips(pdu: ax.PDU) -> None:
    wire = ax.encode(pdu)
    assert len(wire) % 4 == 0
    assert (wire[2] & ax.NETWORK_BYTE_ORDER != 0) == pdu.network_order
    decoded = ax.decode(wire)
    assert decoded == normalised(pdu)
    assert type(decoded) is type(pdu)
    assert types_of(decoded) == types_of(pdu)


@settings(max_examples=100)
@given(st.lists(pdus, min_size=1, max_size=5), st.data())
def test_framing_split_and_coalesced_reads(batch: list[ax.PDU], data: st.DataObject) -> None:
    stream = b"".join(ax.encode(p) for p in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    buffer = ax.AgentXBuffer()
    received: list[ax.PDU] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received.extend(buffer.feed(stream[start:end]))
    assert received == [normalised(p) for p in batch]
    assert len(buffer) == 0


def test_one_byte_at_a_time_then_all_at_once() -> None:
    stream = OPEN_BIG + GETNEXT_LITTLE + RESPONSE_BIG
    buffer = ax.AgentXBuffer()
    seen = [pdu for byte in stream for pdu in buffer.feed(bytes([byte]))]
    assert [type(p) for p in seen] == [ax.Open, ax.GetNext, ax.Response]
    assert ax.AgentXBuffer().feed(stream) == seen


# --- hostile input --------------------------------------------------------------------------

def test_huge_payload_length_is_refused_before_reading_it() -> None:
    header = h("01 05 10 00 00000001 00000002 00000003 7fffffff")
    buffer = ax.AgentXBuffer()
    with pytest.raises(ax.PayloadTooLarge) as caught:
        buffer.feed(header)
    assert caught.value.header is not None
    assert caught.value.header.packet_id == 3


def test_malformed_pdu_carries_its_header_and_the_stream_goes_on() -> None:
    bad = h("01 05 10 00 00000001 00000002 00000003 00000004  ff 00 00 00")  # 255 sub-ids
    buffer = ax.AgentXBuffer()
    buffer.receive(bad + OPEN_BIG)
    with pytest.raises(ax.ParseError) as caught:
        buffer.next_pdu()
    header = caught.value.header
    assert header is not None
    assert (header.session_id, header.transaction_id, header.packet_id) == (1, 2, 3)
    reply = ax.decode(ax.response_bytes(header, (), ax.Error.parseError))
    assert isinstance(reply, ax.Response)
    assert (reply.error, reply.session_id, reply.packet_id) == (266, 1, 3)
    assert isinstance(buffer.next_pdu(), ax.Open)


@pytest.mark.parametrize(("wire", "message"), [
    (OPEN_BIG[:-4], "payload_length"),                                       # truncated
    (OPEN_BIG[:19] + b"\x14" + OPEN_BIG[20:] + bytes(4), "unexpected octets"),  # lies: longer
    (OPEN_BIG[:19] + b"\x0c" + OPEN_BIG[20:32], "runs past the PDU"),      # lies: shorter
    (b"\x01\x63" + OPEN_BIG[2:], "unknown PDU type 99"),
    (b"\x02" + OPEN_BIG[1:], "version 2"),
    (h("01 0d 10 00 00000000 00000000 00000000 00000002 0000"), "multiple of 4"),
    (h("01 0d 10 00 00000000 00000000 00000000 00000004 00000000"), "unexpected octets"),
    (h("01 12 10 00 00000000 00000000 00000000 00000010 00000000 00000000"
       "00070000 00000000"), "unknown varbind type 7"),
    (h("01 12 10 00 00000000 00000000 00000000 00000014 00000000 00000000"
       "00400000 00000000 00000003"), "run"),                                 # IpAddress too long
    (h("01 12 10 00 00000000 00000000 00000000 00000018 00000000 00000000"
       "00400000 00000000 00000003 01020300"), "IpAddress of 3"),
    (h("01 05 10 00 00000000 00000000 00000000 00000004 81000000"), "129 sub-identifiers"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_hostile_pdus_raise_parse_errors(wire: bytes, message: str) -> None:
    with pytest.raises(ax.ParseError, match=message):
        ax.decode(wire)


def assert_reencodes(decoded: list[ax.PDU]) -> None:
    """Whatever the decoder accepted is a well-formed PDU: it survives another round trip."""
    for pdu in decoded:
        assert ax.decode(ax.encode(pdu)) == normalised(pdu)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_codec_errors(junk: bytes) -> None:
    buffer = ax.AgentXBuffer(max_payload=4096)
    try:
        decoded = buffer.feed(junk)
    except ax.AgentXError:
        return
    assert_reencodes(decoded)


@settings(max_examples=300)
@given(pdus, st.data())
def test_corrupted_pdus_raise_only_codec_errors(pdu: ax.PDU, data: st.DataObject) -> None:
    wire = bytearray(ax.encode(pdu))
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        decoded = ax.decode(bytes(wire[:cut]))
    except ax.AgentXError:
        return
    assert_reencodes([decoded])


def test_unencodable_values_raise_encode_errors() -> None:
    with pytest.raises(ax.EncodeError):
        ax.encode(ax.Notify(varbinds=(ax.VarBind((1, 3), object()),)))
    with pytest.raises(ax.EncodeError):
        ax.encode(ax.GetBulk(max_repetitions=70000))
    with pytest.raises(ax.EncodeError):
        ax.encode(ax.Open(timeout=256))


def assert_single_get_next_agrees_with_decode(wire: bytes) -> None:
    """The walk's fast path accepts exactly the plain one-range GetNext PDUs `decode` accepts,
    reads the same range from them, and answers them as `response_bytes` would."""
    quick = ax.single_get_next(wire)
    try:
        pdu = ax.decode(wire)
    except ax.AgentXError:
        assert quick is None
        return
    plain = (isinstance(pdu, ax.GetNext) and pdu.context is None and len(pdu.ranges) == 1
             and wire[2] in (0, ax.NETWORK_BYTE_ORDER))
    assert (quick is not None) == plain
    if quick is not None:
        assert isinstance(pdu, ax.GetNext)
        (r,) = pdu.ranges
        assert quick == (pdu.network_order, r.start, r.include, r.end)
        varbind = ax.encode_varbind(r.start, rfc1902.Gauge32(7), pdu.network_order)
        assert ax.get_next_response(wire, varbind, 99) == ax.response_bytes(
            pdu, [varbind], sys_uptime=99)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(pdus, st.data())
def test_single_get_next_fast_path_matches_decode(pdu: ax.PDU, data: st.DataObject) -> None:
    wire = bytearray(ax.encode(pdu))
    assert_single_get_next_agrees_with_decode(bytes(wire))
    for _ in range(data.draw(st.integers(0, 3))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    assert_single_get_next_agrees_with_decode(bytes(wire[:data.draw(st.integers(0, len(wire)))]))


@pytest.mark.parametrize("network_order", [True, False])
def test_single_get_next_reads_a_walk_step(network_order: bool) -> None:
    start, end = (1, 3, 6, 1, 4, 1, 99, 2, 1, 7), (1, 3, 6, 1, 4, 1, 100)
    pdu = ax.GetNext(session_id=5, transaction_id=6, packet_id=7, network_order=network_order,
                     ranges=(ax.SearchRange(start, end, include=True),))
    assert ax.single_get_next(ax.encode(pdu)) == (network_order, start, True, end)
    two = ax.GetNext(ranges=(ax.SearchRange(start), ax.SearchRange(end)))
    assert ax.single_get_next(ax.encode(two)) is None
    context = ax.GetNext(context=b"c", ranges=(ax.SearchRange(start),))
    assert ax.single_get_next(ax.encode(context)) is None
    assert ax.single_get_next(ax.encode(ax.Get(ranges=(ax.SearchRange(start),)))) is None
