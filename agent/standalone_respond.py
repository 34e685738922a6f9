"""The standalone agent's GETNEXT and GETBULK responders: a request answered in one pass, each
answer encoded by pyasn1 as pysnmp's VarBind and handed to pysnmp's response as bytes.

pysnmp's own responders build a tree of pyasn1 objects per varbind (the VarBind, the choices
around its value) into the response PDU, then encode them with the message: about 55 us per
varbind, most of what a walk cost here.  These have pyasn1 encode each answer's name and value
(each distinct value once, a bounded number kept) and wrap them as a VarBind, and give the
response's VarBindList as one `univ.Any` tagged as the SEQUENCE it is, whose content pyasn1's
encoder copies as is; message processing, security (USM) and sending stay pysnmp's.
"""

from __future__ import annotations

from typing import Any

from pyasn1.codec.ber import encoder
from pyasn1.type import univ
from pysnmp.entity.rfc3413 import cmdrsp
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c

from .mibview import Entry, Oid
from .standalone_read import ReadAccess, ViewInstrumentation, read_access

PDU_OVERHEAD = 100  # a response's bytes besides its varbinds (PDU header, v3 context), at most
TOO_BIG = 1  # error-status tooBig (RFC 3416)
MAX_ENCODED_VALUES = 4096  # distinct encoded values kept (each at most ~300 bytes)
_END_OF_MIB_VIEW = encoder.encode(rfc1905.endOfMibView)
# VarBind and VarBindList are SEQUENCEs: as a univ.Any tagged so, pyasn1 encodes the tag and
# length of one around content encoded already (the name and value, the varbinds)
_VARBIND = rfc1905.VarBind.tagSet
_VARBIND_LIST = rfc1905.VarBindList.tagSet
_AS_IS: dict[str, Any] = {"verifyConstraints": False, "matchTags": False,
                          "matchConstraints": False}  # set encoded content in a PDU's place


class VarbindEncoder:
    """Answers as VarBinds encoded by pyasn1, ready to stand in a response's VarBindList."""

    def __init__(self, max_values: int = MAX_ENCODED_VALUES) -> None:
        self._values: dict[tuple[type[Any], int | bytes], bytes] = {}
        self._max_values = max_values

    def entry(self, entry: Entry) -> bytes:
        return self._varbind(entry.oid, self._value(entry))

    def end_of_view(self, name: Oid) -> bytes:
        return self._varbind(name, _END_OF_MIB_VIEW)

    def _value(self, entry: Entry) -> bytes:
        if entry.value_class is None or entry.raw is None:  # a value given as an object
            return encoder.encode(entry.value)
        key = (entry.value_class, entry.raw)
        encoded = self._values.get(key)
        if encoded is None:
            if len(self._values) >= self._max_values:
                self._values.clear()
            encoded = self._values[key] = encoder.encode(entry.value)
        return encoded

    @staticmethod
    def _varbind(name: Oid, value: bytes) -> bytes:
        return encoder.encode(univ.Any(encoder.encode(rfc1902.ObjectName(name)) + value,
                                       tagSet=_VARBIND))


class _Successors:
    """One request's reads: the next visible instance after each start, encoded."""

    def __init__(self, responder: cmdrsp.CommandResponderBase, engine: Any, context_name: Any,
                 varbinds: VarbindEncoder, room: int) -> None:
        self._instrumentation: ViewInstrumentation = \
            responder.snmpContext.get_mib_instrum(context_name)
        ctx = {"snmpEngine": engine, "acFun": responder.verify_access, "cbCtx": responder.cbCtx}
        self._access: ReadAccess = read_access(responder.verify_access, ctx,
                                               self._instrumentation.view_depth)
        self._varbinds = varbinds
        self.room = room  # bytes of varbinds the response may still hold
        self.full = False  # an answer did not fit: the response holds those before it

    def row(self, starts: list[Oid], first_idx: int) -> tuple[list[bytes], list[Oid], bool]:
        """(encoded answers, their names, whether every one is endOfMibView); the varbind
        of starts[i] is first_idx + i in the request.  Stops at the first answer that does not
        fit in `room` (setting `full`): no work is done for answers the response cannot carry."""
        encoded, names, ended = [], [], True
        for i, start in enumerate(starts):
            entry = self._instrumentation.next_visible(start, self._access, first_idx + i)
            answer = self._varbinds.end_of_view(start) if entry is None \
                else self._varbinds.entry(entry)
            self.room -= len(answer)
            if self.room < 0:
                self.full = True
                break
            encoded.append(answer)
            names.append(start if entry is None else entry.oid)
            ended = ended and entry is None
        return encoded, names, ended


class _EncodedResponse(cmdrsp.CommandResponderBase):
    """Sends a response whose varbinds were encoded already."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.varbinds = VarbindEncoder()
        self.room = 0  # the request being handled: bytes its response's varbinds may take

    def process_pdu(self, snmpEngine: Any, messageProcessingModel: Any, securityModel: Any,
                    securityName: Any, securityLevel: Any, contextEngineId: Any,
                    contextName: Any, pduVersion: Any, PDU: Any,
                    maxSizeResponseScopedPDU: Any, stateReference: Any) -> None:
        """Note the most the response may hold (the requester's maximum message size, or the
        engine's, less the message's header), then answer as pysnmp does."""
        self.room = int(maxSizeResponseScopedPDU) - PDU_OVERHEAD
        super().process_pdu(snmpEngine, messageProcessingModel, securityModel, securityName,
                            securityLevel, contextEngineId, contextName, pduVersion, PDU,
                            maxSizeResponseScopedPDU, stateReference)

    def successors(self, engine: Any, context_name: Any) -> _Successors:
        return _Successors(self, engine, context_name, self.varbinds, self.room)

    def send_encoded(self, engine: Any, state_reference: Any, request: Any,
                     varbinds: list[bytes], error_status: int = 0) -> None:
        """Answer `request` with `varbinds` (pysnmp's send_varbinds would rebuild each one as
        a pyasn1 object tree)."""
        response = v2c.apiPDU.get_response(request)
        if error_status:
            v2c.apiPDU.set_error_status(response, error_status)
        response.setComponentByPosition(
            3, univ.Any(b"".join(varbinds), tagSet=_VARBIND_LIST), **_AS_IS)
        self.send_pdu(engine, state_reference, response)
        self.release_state_information(state_reference)


class NextResponder(_EncodedResponse, cmdrsp.NextCommandResponder):
    """GETNEXT: the next instance in the requester's read view after each varbind's name."""

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                    contextName: Any, PDU: Any) -> None:
        names = [tuple(name) for name, _ in v2c.apiPDU.get_varbinds(PDU)]
        read = self.successors(snmpEngine, contextName)
        encoded, _, _ = read.row(names, 0)
        if read.full:  # RFC 3416 4.2.2: an answer that does not fit is tooBig, no varbinds
            self.send_encoded(snmpEngine, stateReference, PDU, [], TOO_BIG)
        else:
            self.send_encoded(snmpEngine, stateReference, PDU, encoded)


class BulkResponder(_EncodedResponse, cmdrsp.BulkCommandResponder):
    """GETBULK that stops repeating once every repeater is at endOfMibView, or once the
    response is full: it holds the answers that fit (RFC 3416 4.2.3)."""

    def handle_management_operation(self, snmpEngine: Any, stateReference: Any,
                                    contextName: Any, PDU: Any) -> None:
        request = [tuple(name) for name, _ in v2c.apiPDU.get_varbinds(PDU)]
        non_repeaters = min(max(int(v2c.apiBulkPDU.get_non_repeaters(PDU)), 0), len(request))
        repeaters = request[non_repeaters:]
        repetitions = max(int(v2c.apiBulkPDU.get_max_repetitions(PDU)), 0)
        if repeaters:
            repetitions = min(repetitions, self.max_varbinds // len(repeaters))
        read = self.successors(snmpEngine, contextName)
        answers, _, _ = read.row(request[:non_repeaters], 0)
        row = repeaters
        for _ in range(repetitions if repeaters and not read.full else 0):
            encoded, row, ended = read.row(row, non_repeaters)
            answers.extend(encoded)
            if ended or read.full:
                break
        self.send_encoded(snmpEngine, stateReference, PDU, answers)
