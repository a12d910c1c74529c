"""Decoded MAP arguments and results (3GPP TS 29.002), as frozen values.

Only the fields a signaling policy needs are kept; everything else in the
argument stays in the raw ``parameter`` bytes of the TCAP component. One class
per operation argument, named after the ASN.1 type; :data:`OPCODES` lists the
local operation codes whose argument (or result) each class decodes.

The values are ``NamedTuple`` classes made *type-strict* by :func:`value`
(two values are equal only if they have the same class and fields): immutable
and typed like frozen dataclasses, but about 3x cheaper to build, which is most
of the decoder's per-message cost on the guard's hot path.

Digits are strings: IMSIs as their TBCD digits (``"001010123456789"``),
addresses as :class:`AddressString` (nature of address, numbering plan, digits),
LMSIs as 4 raw bytes. Every ``repr`` masks subscriber and node digits
(:mod:`herald.signaling.privacy`).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, NamedTuple

from herald.signaling.map_ops import MapOperation as Op
from herald.signaling.privacy import masked_repr, value

__all__ = [
    "OPCODES",
    "SILENT_SMS_PID",
    "AddressString",
    "AnyTimeInterrogationArg",
    "CancelLocationArg",
    "ForwardSmArg",
    "InsertSubscriberDataArg",
    "MapArgument",
    "MapResult",
    "NatureOfAddress",
    "NumberingPlan",
    "ProvideRoamingNumberArg",
    "ProvideSubscriberInfoArg",
    "ProvideSubscriberLocationArg",
    "ReportSmDeliveryStatusArg",
    "RoutingInfoForSmArg",
    "RoutingInfoForSmRes",
    "SendAuthenticationInfoArg",
    "SendImsiArg",
    "SendRoutingInfoArg",
    "SmRpDa",
    "SmRpDaKind",
    "SmRpOa",
    "SmRpOaKind",
    "SmsTpdu",
    "TpAddress",
    "UpdateLocationArg",
    "UpdateLocationRes",
]

#: TS 23.040 §9.2.3.9: TP-PID 0b01000000 is "Short Message Type 0": the phone
#: acknowledges it without showing or storing it (the "silent SMS" ping).
SILENT_SMS_PID: Final = 0x40


class NatureOfAddress(IntEnum):
    """TS 29.002 §17.7.8 AddressString octet 1, bits 7-5."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL_SIGNIFICANT = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER = 4
    ABBREVIATED = 6


class NumberingPlan(IntEnum):
    """TS 29.002 §17.7.8 AddressString octet 1, bits 4-1."""

    UNKNOWN = 0
    ISDN_E164 = 1
    DATA_X121 = 3
    TELEX_F69 = 4
    LAND_MOBILE_E212 = 6
    NATIONAL = 8
    PRIVATE = 9


@value
class AddressString(NamedTuple):
    """TS 29.002 AddressString / ISDN-AddressString: TON, NPI and TBCD digits.

    Digits are ``0-9`` plus ``* # a b c`` (TBCD, TS 29.002 §17.7.8).
    """

    digits: str
    nature: int = NatureOfAddress.INTERNATIONAL
    numbering_plan: int = NumberingPlan.ISDN_E164

    def __repr__(self) -> str:
        return masked_repr(self, ("digits",))


class SmRpDaKind(IntEnum):
    """SM-RP-DA CHOICE alternatives (context tag numbers, TS 29.002 §7.6.8.1)."""

    IMSI = 0
    LMSI = 1
    ROAMING_NUMBER = 3  # MAP v1/v2 only
    SERVICE_CENTRE = 4
    NONE = 5


class SmRpOaKind(IntEnum):
    """SM-RP-OA CHOICE alternatives (context tag numbers, TS 29.002 §7.6.8.2)."""

    MSISDN = 2
    SERVICE_CENTRE = 4
    NONE = 5


@value
class SmRpDa(NamedTuple):
    """Destination of a forwarded short message: an IMSI (MT), an LMSI (MT,
    after SRI-SM), a service centre (MO) or nothing."""

    kind: SmRpDaKind
    imsi: str | None = None
    lmsi: bytes | None = None
    address: AddressString | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("lmsi",), ("imsi",))


@value
class SmRpOa(NamedTuple):
    """Originator of a forwarded short message: the SMSC (MT) or the MSISDN (MO)."""

    kind: SmRpOaKind
    address: AddressString | None = None


@value
class TpAddress(NamedTuple):
    """TS 23.040 §9.1.2.5 address (TP-OA / TP-DA): type of number, numbering
    plan, and digits; an alphanumeric sender (TON 5) is decoded from the GSM
    7-bit default alphabet into ``digits``."""

    digits: str
    type_of_number: int = 1
    numbering_plan: int = 1

    def __repr__(self) -> str:
        return masked_repr(self, ("digits",))


@value
class SmsTpdu(NamedTuple):
    """The few TPDU fields a policy reads (TS 23.040 §9.2.2).

    ``mti`` 0 is SMS-DELIVER (network to phone; ``address`` is TP-OA), 1 is
    SMS-SUBMIT (phone to network; ``address`` is TP-DA).
    """

    mti: int
    address: TpAddress
    pid: int
    dcs: int

    @property
    def is_silent(self) -> bool:
        """True for a Short Message Type 0 (TP-PID 0x40), shown to nobody."""
        return self.pid == SILENT_SMS_PID


# --------------------------------------------------------------------- arguments


@value
class RoutingInfoForSmArg(NamedTuple):
    """sendRoutingInfoForSM (45): which MSC/SGSN serves ``msisdn``, and its IMSI.

    ``delivery_not_intended`` (0 onlyIMSI-requested, 1 onlyMCC-MNC-requested)
    marks a lookup that will not be followed by an MT-ForwardSM.
    """


    msisdn: AddressString
    sm_rp_pri: bool
    service_centre: AddressString
    delivery_not_intended: int | None = None
    imsi: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class ForwardSmArg(NamedTuple):
    """mt-ForwardSM (44), and forwardSM / mo-ForwardSM (46): one short message.

    ``tpdu`` is the decoded sm-RP-UI when it is an SMS-DELIVER or SMS-SUBMIT the
    codec understands, else None (the raw bytes are in ``user_data``).
    """


    da: SmRpDa
    oa: SmRpOa
    user_data: bytes
    tpdu: SmsTpdu | None = None
    more_messages: bool = False

    def __repr__(self) -> str:
        # user_data holds the TPDU: originator digits and the message text.
        return masked_repr(self, ("user_data",))


@value
class ProvideSubscriberInfoArg(NamedTuple):
    """provideSubscriberInfo (70): HLR asks a VLR for a subscriber's location
    and state; from anywhere but the home HLR it is a tracking query."""


    imsi: str
    lmsi: bytes | None = None
    location_requested: bool = False
    state_requested: bool = False

    def __repr__(self) -> str:
        return masked_repr(self, ("lmsi",), ("imsi",))


@value
class AnyTimeInterrogationArg(NamedTuple):
    """anyTimeInterrogation (71): a gsmSCF asks the HLR for location/state of a
    subscriber named by exactly one of ``imsi`` / ``msisdn``."""


    gsm_scf: AddressString
    imsi: str | None = None
    msisdn: AddressString | None = None
    location_requested: bool = False
    state_requested: bool = False

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class SendRoutingInfoArg(NamedTuple):
    """sendRoutingInfo (22): routing for a call to ``msisdn``."""


    msisdn: AddressString
    interrogation_type: int | None = None
    gmsc: AddressString | None = None


@value
class UpdateLocationArg(NamedTuple):
    """updateLocation (2): a VLR tells the HLR the subscriber is now served by
    ``msc_number`` / ``vlr_number``."""


    imsi: str
    msc_number: AddressString
    vlr_number: AddressString
    lmsi: bytes | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("lmsi",), ("imsi",))


@value
class InsertSubscriberDataArg(NamedTuple):
    """insertSubscriberData (7): the HLR pushes a profile to the serving VLR/SGSN.
    Both fields are optional in the ASN.1 (a follow-up ISD may carry neither)."""


    imsi: str | None = None
    msisdn: AddressString | None = None

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class CancelLocationArg(NamedTuple):
    """cancelLocation (3). ``version3`` records the [3]-tagged v3 encoding
    (v1/v2 carry the bare Identity CHOICE)."""


    imsi: str
    lmsi: bytes | None = None
    cancellation_type: int | None = None
    version3: bool = True

    def __repr__(self) -> str:
        return masked_repr(self, ("lmsi",), ("imsi",))


@value
class ProvideRoamingNumberArg(NamedTuple):
    """provideRoamingNumber (4): the HLR asks the serving VLR for an MSRN."""


    imsi: str
    msc_number: AddressString
    msisdn: AddressString | None = None

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class SendAuthenticationInfoArg(NamedTuple):
    """sendAuthenticationInfo (56). v2 carries the bare IMSI (``version3``
    False, ``requested_vectors`` None); v3 a SEQUENCE."""


    imsi: str
    requested_vectors: int | None = None
    version3: bool = True

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class SendImsiArg(NamedTuple):
    """sendIMSI (58): the argument is the bare ISDN-AddressString."""


    msisdn: AddressString


@value
class ProvideSubscriberLocationArg(NamedTuple):
    """provideSubscriberLocation (83): a GMLC (``mlc_number``) asks for a
    location estimate of the subscriber named by ``msisdn`` and/or ``imsi``."""


    location_estimate_type: int
    mlc_number: AddressString
    msisdn: AddressString | None = None
    imsi: str | None = None

    def __repr__(self) -> str:
        return masked_repr(self, (), ("imsi",))


@value
class ReportSmDeliveryStatusArg(NamedTuple):
    """reportSM-DeliveryStatus (47): an SMSC tells the HLR how a delivery to
    ``msisdn`` went (TS 29.002 §12.3). ``outcome`` is SM-DeliveryOutcome:
    0 memoryCapacityExceeded, 1 absentSubscriber, 2 successfulTransfer."""

    msisdn: AddressString
    service_centre: AddressString
    outcome: int


# ----------------------------------------------------------------------- results


@value
class RoutingInfoForSmRes(NamedTuple):
    """Result of sendRoutingInfoForSM: the IMSI and the serving node to which
    the MT-ForwardSM must go (``network_node``), plus an optional LMSI."""


    imsi: str
    network_node: AddressString
    lmsi: bytes | None = None

    def __repr__(self) -> str:
        return masked_repr(self, ("lmsi",), ("imsi",))


@value
class UpdateLocationRes(NamedTuple):
    """Result of updateLocation: the HLR's own number."""


    hlr_number: AddressString


MapArgument = (
    RoutingInfoForSmArg
    | ForwardSmArg
    | ProvideSubscriberInfoArg
    | AnyTimeInterrogationArg
    | SendRoutingInfoArg
    | UpdateLocationArg
    | InsertSubscriberDataArg
    | CancelLocationArg
    | ProvideRoamingNumberArg
    | SendAuthenticationInfoArg
    | SendImsiArg
    | ProvideSubscriberLocationArg
    | ReportSmDeliveryStatusArg
)

MapResult = RoutingInfoForSmRes | UpdateLocationRes


#: The local operation codes whose argument (or result) each class decodes.
OPCODES: Final[dict[type, tuple[int, ...]]] = {
    RoutingInfoForSmArg: (Op.SEND_ROUTING_INFO_FOR_SM,),
    ForwardSmArg: (Op.MT_FORWARD_SM, Op.MO_FORWARD_SM),
    ProvideSubscriberInfoArg: (Op.PROVIDE_SUBSCRIBER_INFO,),
    AnyTimeInterrogationArg: (Op.ANY_TIME_INTERROGATION,),
    SendRoutingInfoArg: (Op.SEND_ROUTING_INFO,),
    UpdateLocationArg: (Op.UPDATE_LOCATION,),
    InsertSubscriberDataArg: (Op.INSERT_SUBSCRIBER_DATA,),
    CancelLocationArg: (Op.CANCEL_LOCATION,),
    ProvideRoamingNumberArg: (Op.PROVIDE_ROAMING_NUMBER,),
    SendAuthenticationInfoArg: (Op.SEND_AUTHENTICATION_INFO,),
    SendImsiArg: (Op.SEND_IMSI,),
    ProvideSubscriberLocationArg: (Op.PROVIDE_SUBSCRIBER_LOCATION,),
    ReportSmDeliveryStatusArg: (Op.REPORT_SM_DELIVERY_STATUS,),
    RoutingInfoForSmRes: (Op.SEND_ROUTING_INFO_FOR_SM,),
    UpdateLocationRes: (Op.UPDATE_LOCATION,),
}
