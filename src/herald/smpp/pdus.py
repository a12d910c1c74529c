"""One frozen dataclass per SMPP 3.4 PDU (SMPP 3.4 §4).

Mandatory fields are declared in wire order with their spec (``_fields``), so
each class reads like its table in the specification; ``_codegen`` turns those
declarations into the class's decoder and encoder. Every PDU also has the header
fields ``sequence_number`` and ``command_status`` and its optional parameters
``tlvs`` (see ``herald.smpp.tlv``). All fields are keyword-only with the spec's
defaults, so ``SubmitSm(source_addr="HERALD", destination_addr="447700900123",
short_message=b"hi")`` is a complete submit_sm.

Requests know their response class: ``request.response(status, **fields)``
builds the matching response with the request's sequence_number, which is how
a session answers anything (including with an error status).

``bytes(pdu)`` encodes (raising ``InvalidField`` for a value over its limit);
``herald.smpp.codec`` decodes. Passwords never appear in ``repr``.
"""

import struct
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, TypeVar

from herald.smpp._codegen import Compiled, compile_pdu
from herald.smpp._fields import U8, CString, ShortMessage, Time
from herald.smpp._multi import (
    DestAddress,
    DestAddresses,
    DistributionList,
    SmeAddress,
    UnsuccessSme,
    UnsuccessSmes,
)
from herald.smpp._wire import HEADER, fast_init
from herald.smpp.constants import INTERFACE_VERSION, CommandId, CommandStatus
from herald.smpp.errors import InvalidField, LocalProtocolError
from herald.smpp.tlv import Tlv, TlvDef

__all__ = [
    "PDU_CLASSES",
    "AlertNotification",
    "BindReceiver",
    "BindReceiverResp",
    "BindRequest",
    "BindResponse",
    "BindTransceiver",
    "BindTransceiverResp",
    "BindTransmitter",
    "BindTransmitterResp",
    "CancelSm",
    "CancelSmResp",
    "DataSm",
    "DataSmResp",
    "DeliverSm",
    "DeliverSmResp",
    "DestAddress",
    "DistributionList",
    "EnquireLink",
    "EnquireLinkResp",
    "GenericNack",
    "Outbind",
    "Pdu",
    "QuerySm",
    "QuerySmResp",
    "ReplaceSm",
    "ReplaceSmResp",
    "Request",
    "Response",
    "SmeAddress",
    "SubmitMulti",
    "SubmitMultiResp",
    "SubmitSm",
    "SubmitSmResp",
    "Unbind",
    "UnbindResp",
    "UnsuccessSme",
]

S = CommandStatus
V = TypeVar("V")
P = TypeVar("P", bound="Pdu")

# reference/smpp.md: the spec says password <= 8 characters (9 with the NUL),
# real providers issue longer ones. Accept (and send) up to this many octets.
LENIENT_PASSWORD_MAX = 65

PDU_CLASSES: dict[int, type["Pdu"]] = {}
_pack_header = HEADER.pack


# --------------------------------------------------------------------------- bases


def _thaw(base: type) -> type:
    """Remove the frozen ``__setattr__``/``__delattr__`` from an abstract base.

    Every concrete PDU class is a frozen dataclass with its own, so instances
    stay immutable; the bases are never instantiated. Without them the
    decoders can fill instances at full speed (see ``_wire.unfrozen_twin``).
    """
    del base.__setattr__, base.__delattr__
    return base




@_thaw
@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Base of every PDU: the header fields and the optional parameters."""

    command_id: ClassVar[CommandId]
    _codec: ClassVar[Compiled]

    sequence_number: int = 0
    command_status: int = 0
    tlvs: tuple[Tlv, ...] = ()

    def __bytes__(self) -> bytes:
        try:
            body = self._codec.encode(self)
        except (ValueError, TypeError, AttributeError, OverflowError, struct.error) as exc:
            raise self._codec.explain(self, exc) from exc
        try:
            header = _pack_header(
                16 + len(body), self.command_id, self.command_status, self.sequence_number
            )
        except struct.error as exc:
            raise InvalidField("header", str(exc), S.ESME_RSYSERR) from None
        return header + body

    def tlv(self, definition: TlvDef[V]) -> V | None:
        """The typed value of a standard TLV (``pdu.tlv(MESSAGE_STATE)``), or
        None when absent. Raises InvalidTlvValue if its value breaks the spec."""
        return definition.get(self.tlvs)

    def with_header(self: P, sequence_number: int, command_status: int | None = None) -> P:
        """A copy with another sequence_number (and command_status)."""
        status = self.command_status if command_status is None else command_status
        copy: P = self._codec.rebuild(self, sequence_number, status)
        return copy


@_thaw
@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Pdu):
    """A response PDU (command_id with bit 31 set)."""


@_thaw
@dataclass(frozen=True, slots=True, kw_only=True)
class Request(Pdu):
    """A request PDU. ``response_class`` is None for outbind and
    alert_notification, which SMPP 3.4 does not answer."""

    response_class: ClassVar[type[Response] | None]

    def response(self, status: int = S.ESME_ROK) -> Response:
        """The response to this request with ``status`` and an empty body."""
        cls = self.response_class
        if cls is None:
            raise LocalProtocolError(f"{type(self).__name__} has no response (SMPP 3.4 §4)")
        return cls(sequence_number=self.sequence_number, command_status=status)


def _register(cls: type[P]) -> type[P]:
    cls.__init__ = fast_init(cls)  # type: ignore[method-assign]
    cls._codec = compile_pdu(cls)
    PDU_CLASSES[cls.command_id] = cls
    return cls


# ------------------------------------------------------------ field vocabulary
# The same field has the same spec in every PDU (SMPP 3.4 §5.2).

SystemId = Annotated[str, CString(16, S.ESME_RINVSYSID)]
Password = Annotated[str, CString(9, S.ESME_RINVPASWD, lenient_max=LENIENT_PASSWORD_MAX)]
SystemType = Annotated[str, CString(13, S.ESME_RINVSYSTYP)]
ServiceType = Annotated[str, CString(6, S.ESME_RINVSERTYP)]
MessageId = Annotated[str, CString(65, S.ESME_RINVMSGID)]
SourceTon = Annotated[int, U8(S.ESME_RINVSRCTON)]
SourceNpi = Annotated[int, U8(S.ESME_RINVSRCNPI)]
SourceAddr = Annotated[str, CString(21, S.ESME_RINVSRCADR)]
DestTon = Annotated[int, U8(S.ESME_RINVDSTTON)]
DestNpi = Annotated[int, U8(S.ESME_RINVDSTNPI)]
DestinationAddr = Annotated[str, CString(21, S.ESME_RINVDSTADR)]
EsmClassField = Annotated[int, U8(S.ESME_RINVESMCLASS)]
Octet = Annotated[int, U8()]
PriorityFlag = Annotated[int, U8(S.ESME_RINVPRTFLG)]
ScheduleTime = Annotated[str, Time(S.ESME_RINVSCHED)]
ValidityPeriod = Annotated[str, Time(S.ESME_RINVEXPIRY)]
RegisteredDeliveryField = Annotated[int, U8(S.ESME_RINVREGDLVFLG)]
ReplaceIfPresent = Annotated[int, U8(S.ESME_RINVREPFLAG)]
DefaultMsgId = Annotated[int, U8(S.ESME_RINVDFTMSGID)]
ShortMessageField = Annotated[bytes, ShortMessage()]


# --------------------------------------------------------------- session management


@_thaw
@dataclass(frozen=True, slots=True, kw_only=True)
class BindResponse(Response):
    """bind_transmitter_resp / bind_receiver_resp / bind_transceiver_resp
    (SMPP 3.4 §4.1.2, §4.1.4, §4.1.6). The sc_interface_version TLV tells the
    SMSC's version."""

    system_id: SystemId = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(BindResponse):
    command_id = CommandId.BIND_TRANSMITTER_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(BindResponse):
    command_id = CommandId.BIND_RECEIVER_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(BindResponse):
    command_id = CommandId.BIND_TRANSCEIVER_RESP


@_thaw
@dataclass(frozen=True, slots=True, kw_only=True)
class BindRequest(Request):
    """bind_transmitter / bind_receiver / bind_transceiver (SMPP 3.4 §4.1.1,
    §4.1.3, §4.1.5)."""

    response_class: ClassVar[type[BindResponse]]

    system_id: SystemId = ""
    password: Password = field(default="", repr=False)
    system_type: SystemType = ""
    interface_version: Octet = INTERFACE_VERSION
    addr_ton: Octet = 0
    addr_npi: Octet = 0
    address_range: Annotated[str, CString(41, S.ESME_RBINDFAIL)] = ""

    def response(
        self, status: int = S.ESME_ROK, *, system_id: str = "", tlvs: tuple[Tlv, ...] = ()
    ) -> BindResponse:
        return self.response_class(
            sequence_number=self.sequence_number, command_status=status,
            system_id=system_id, tlvs=tlvs,
        )


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(BindRequest):
    command_id = CommandId.BIND_TRANSMITTER
    response_class = BindTransmitterResp


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(BindRequest):
    command_id = CommandId.BIND_RECEIVER
    response_class = BindReceiverResp


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(BindRequest):
    command_id = CommandId.BIND_TRANSCEIVER
    response_class = BindTransceiverResp


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Request):
    """outbind (SMPP 3.4 §4.1.7): an SMSC asks an ESME to bind_receiver. It has
    no response."""

    command_id = CommandId.OUTBIND
    response_class = None

    system_id: SystemId = ""
    password: Password = field(default="", repr=False)


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Response):
    """unbind_resp (SMPP 3.4 §4.2.2)."""

    command_id = CommandId.UNBIND_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Request):
    """unbind (SMPP 3.4 §4.2.1)."""

    command_id = CommandId.UNBIND
    response_class = UnbindResp


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Response):
    """generic_nack (SMPP 3.4 §4.3.1): the answer to a PDU that could not be
    identified (unknown command_id, bad command_length). Its sequence_number
    may not refer to anything (reference/smpp.md)."""

    command_id = CommandId.GENERIC_NACK


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Response):
    """enquire_link_resp (SMPP 3.4 §4.11.2)."""

    command_id = CommandId.ENQUIRE_LINK_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Request):
    """enquire_link (SMPP 3.4 §4.11.1): a keep-alive, no body."""

    command_id = CommandId.ENQUIRE_LINK
    response_class = EnquireLinkResp


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Request):
    """alert_notification (SMPP 3.4 §4.12.1): an SMSC tells an ESME that a
    mobile became available (ms_availability_status TLV). No response."""

    command_id = CommandId.ALERT_NOTIFICATION
    response_class = None

    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: Annotated[str, CString(65, S.ESME_RINVSRCADR)] = ""
    esme_addr_ton: DestTon = 0
    esme_addr_npi: DestNpi = 0
    esme_addr: Annotated[str, CString(65, S.ESME_RINVDSTADR)] = ""


# ------------------------------------------------------------------ messages


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(Response):
    """submit_sm_resp (SMPP 3.4 §4.4.2). An SMSC may leave the body out when
    command_status is not 0; the decoder then gives message_id ""."""

    command_id = CommandId.SUBMIT_SM_RESP

    message_id: MessageId = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(Request):
    """submit_sm (SMPP 3.4 §4.4.1). short_message holds at most 254 octets;
    longer content goes in the message_payload TLV with an empty short_message."""

    command_id = CommandId.SUBMIT_SM
    response_class = SubmitSmResp

    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr = ""
    esm_class: EsmClassField = 0
    protocol_id: Octet = 0
    priority_flag: PriorityFlag = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    replace_if_present_flag: ReplaceIfPresent = 0
    data_coding: Octet = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: ShortMessageField = b""

    def response(
        self, status: int = S.ESME_ROK, *, message_id: str = "", tlvs: tuple[Tlv, ...] = ()
    ) -> SubmitSmResp:
        return SubmitSmResp(sequence_number=self.sequence_number, command_status=status,
                            message_id=message_id, tlvs=tlvs)


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMultiResp(Response):
    """submit_multi_resp (SMPP 3.4 §4.5.2): the destinations that failed."""

    command_id = CommandId.SUBMIT_MULTI_RESP

    message_id: MessageId = ""
    unsuccess_smes: Annotated[tuple[UnsuccessSme, ...], UnsuccessSmes()] = ()


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMulti(Request):
    """submit_multi (SMPP 3.4 §4.5.1): one message to up to 254 destinations."""

    command_id = CommandId.SUBMIT_MULTI
    response_class = SubmitMultiResp

    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addresses: Annotated[tuple[DestAddress, ...], DestAddresses()] = ()
    esm_class: EsmClassField = 0
    protocol_id: Octet = 0
    priority_flag: PriorityFlag = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    replace_if_present_flag: ReplaceIfPresent = 0
    data_coding: Octet = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: ShortMessageField = b""

    def response(
        self, status: int = S.ESME_ROK, *, message_id: str = "",
        unsuccess_smes: tuple[UnsuccessSme, ...] = (), tlvs: tuple[Tlv, ...] = (),
    ) -> SubmitMultiResp:
        return SubmitMultiResp(sequence_number=self.sequence_number, command_status=status,
                               message_id=message_id, unsuccess_smes=unsuccess_smes, tlvs=tlvs)


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(Response):
    """deliver_sm_resp (SMPP 3.4 §4.6.2): message_id is unused (NULL). An empty
    body, which many ESMEs send, decodes as message_id ""."""

    command_id = CommandId.DELIVER_SM_RESP

    message_id: MessageId = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(Request):
    """deliver_sm (SMPP 3.4 §4.6.1): a mobile-originated message, or a delivery
    receipt when ``esm_class & ESM_TYPE_MASK == EsmType.DELIVERY_RECEIPT``.
    schedule_delivery_time, validity_period, replace_if_present_flag and
    sm_default_msg_id are unused (left empty/0) in deliver_sm."""

    command_id = CommandId.DELIVER_SM
    response_class = DeliverSmResp

    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr = ""
    esm_class: EsmClassField = 0
    protocol_id: Octet = 0
    priority_flag: PriorityFlag = 0
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    replace_if_present_flag: ReplaceIfPresent = 0
    data_coding: Octet = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: ShortMessageField = b""

    def response(
        self, status: int = S.ESME_ROK, *, tlvs: tuple[Tlv, ...] = ()
    ) -> DeliverSmResp:
        return DeliverSmResp(sequence_number=self.sequence_number, command_status=status,
                             tlvs=tlvs)


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(Response):
    """data_sm_resp (SMPP 3.4 §4.7.2)."""

    command_id = CommandId.DATA_SM_RESP

    message_id: MessageId = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Request):
    """data_sm (SMPP 3.4 §4.7.1): the content travels only in message_payload.
    Addresses may be up to 65 octets here."""

    command_id = CommandId.DATA_SM
    response_class = DataSmResp

    service_type: ServiceType = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: Annotated[str, CString(65, S.ESME_RINVSRCADR)] = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: Annotated[str, CString(65, S.ESME_RINVDSTADR)] = ""
    esm_class: EsmClassField = 0
    registered_delivery: RegisteredDeliveryField = 0
    data_coding: Octet = 0

    def response(
        self, status: int = S.ESME_ROK, *, message_id: str = "", tlvs: tuple[Tlv, ...] = ()
    ) -> DataSmResp:
        return DataSmResp(sequence_number=self.sequence_number, command_status=status,
                          message_id=message_id, tlvs=tlvs)


# ------------------------------------------------------------- ancillary operations


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Response):
    """query_sm_resp (SMPP 3.4 §4.8.2)."""

    command_id = CommandId.QUERY_SM_RESP

    message_id: MessageId = ""
    final_date: Annotated[str, Time(S.ESME_RQUERYFAIL)] = ""
    message_state: Octet = 0
    error_code: Octet = 0


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Request):
    """query_sm (SMPP 3.4 §4.8.1)."""

    command_id = CommandId.QUERY_SM
    response_class = QuerySmResp

    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""

    def response(
        self, status: int = S.ESME_ROK, *, final_date: str = "", message_state: int = 0,
        error_code: int = 0, tlvs: tuple[Tlv, ...] = (),
    ) -> QuerySmResp:
        return QuerySmResp(sequence_number=self.sequence_number, command_status=status,
                           message_id=self.message_id, final_date=final_date,
                           message_state=message_state, error_code=error_code, tlvs=tlvs)


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSmResp(Response):
    """cancel_sm_resp (SMPP 3.4 §4.9.2)."""

    command_id = CommandId.CANCEL_SM_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSm(Request):
    """cancel_sm (SMPP 3.4 §4.9.1)."""

    command_id = CommandId.CANCEL_SM
    response_class = CancelSmResp

    service_type: ServiceType = ""
    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: DestTon = 0
    dest_addr_npi: DestNpi = 0
    destination_addr: DestinationAddr = ""


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSmResp(Response):
    """replace_sm_resp (SMPP 3.4 §4.10.2)."""

    command_id = CommandId.REPLACE_SM_RESP


@_register
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSm(Request):
    """replace_sm (SMPP 3.4 §4.10.1)."""

    command_id = CommandId.REPLACE_SM
    response_class = ReplaceSmResp

    message_id: MessageId = ""
    source_addr_ton: SourceTon = 0
    source_addr_npi: SourceNpi = 0
    source_addr: SourceAddr = ""
    schedule_delivery_time: ScheduleTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: RegisteredDeliveryField = 0
    sm_default_msg_id: DefaultMsgId = 0
    short_message: ShortMessageField = b""

