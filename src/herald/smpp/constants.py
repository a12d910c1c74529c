"""SMPP 3.4 wire constants, each beside the specification section that defines it.

Every value that appears on the wire is an ``IntEnum`` member so that code reads
``CommandStatus.ESME_RTHROTTLED`` instead of ``0x58``. Decoded PDUs keep plain
``int`` fields (a peer may send a value this table does not name); an ``IntEnum``
member compares equal to its ``int``, so ``pdu.esm_class & EsmFeature.UDHI`` and
``resp.command_status == CommandStatus.ESME_ROK`` both work on decoded values.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ESM_FEATURE_MASK",
    "ESM_MODE_MASK",
    "ESM_TYPE_MASK",
    "INTERFACE_VERSION",
    "INTERMEDIATE_NOTIFICATION",
    "RECEIPT_REQUEST_MASK",
    "RESPONSE_BIT",
    "SME_ACK_MASK",
    "CommandId",
    "CommandStatus",
    "DataCoding",
    "DestFlag",
    "EsmFeature",
    "EsmMode",
    "EsmType",
    "MessageState",
    "Npi",
    "ReceiptRequest",
    "SmeAck",
    "Tag",
    "Ton",
]

# SMPP 3.4 §5.2.4: interface_version 0x34 = "SMPP version 3.4"; 0x33 and below
# are earlier versions (a bind carrying them is still answered).
INTERFACE_VERSION = 0x34

# SMPP 3.4 §5.1.2.1: a response's command_id is its request's with bit 31 set.
RESPONSE_BIT = 0x80000000


class CommandId(IntEnum):
    """command_id values (SMPP 3.4 §5.1.2.1, table 5-1)."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103

    @property
    def is_response(self) -> bool:
        return bool(self & RESPONSE_BIT)


class CommandStatus(IntEnum):
    """command_status values, the error codes of SMPP 3.4 §5.1.3 (table 5-2)."""

    ESME_ROK = 0x00000000  # no error
    ESME_RINVMSGLEN = 0x00000001  # message length is invalid
    ESME_RINVCMDLEN = 0x00000002  # command length is invalid
    ESME_RINVCMDID = 0x00000003  # invalid command id
    ESME_RINVBNDSTS = 0x00000004  # incorrect bind status for given command
    ESME_RALYBND = 0x00000005  # ESME already in bound state
    ESME_RINVPRTFLG = 0x00000006  # invalid priority flag
    ESME_RINVREGDLVFLG = 0x00000007  # invalid registered delivery flag
    ESME_RSYSERR = 0x00000008  # system error
    ESME_RINVSRCADR = 0x0000000A  # invalid source address
    ESME_RINVDSTADR = 0x0000000B  # invalid destination address
    ESME_RINVMSGID = 0x0000000C  # message id is invalid
    ESME_RBINDFAIL = 0x0000000D  # bind failed
    ESME_RINVPASWD = 0x0000000E  # invalid password
    ESME_RINVSYSID = 0x0000000F  # invalid system id
    ESME_RCANCELFAIL = 0x00000011  # cancel_sm failed
    ESME_RREPLACEFAIL = 0x00000013  # replace_sm failed
    ESME_RMSGQFUL = 0x00000014  # message queue full
    ESME_RINVSERTYP = 0x00000015  # invalid service type
    ESME_RINVNUMDESTS = 0x00000033  # invalid number of destinations
    ESME_RINVDLNAME = 0x00000034  # invalid distribution list name
    ESME_RINVDESTFLAG = 0x00000040  # destination flag is invalid (submit_multi)
    ESME_RINVSUBREP = 0x00000042  # invalid submit-with-replace request
    ESME_RINVESMCLASS = 0x00000043  # invalid esm_class field data
    ESME_RCNTSUBDL = 0x00000044  # cannot submit to distribution list
    ESME_RSUBMITFAIL = 0x00000045  # submit_sm or submit_multi failed
    ESME_RINVSRCTON = 0x00000048  # invalid source address TON
    ESME_RINVSRCNPI = 0x00000049  # invalid source address NPI
    ESME_RINVDSTTON = 0x00000050  # invalid destination address TON
    ESME_RINVDSTNPI = 0x00000051  # invalid destination address NPI
    ESME_RINVSYSTYP = 0x00000053  # invalid system_type field
    ESME_RINVREPFLAG = 0x00000054  # invalid replace_if_present flag
    ESME_RINVNUMMSGS = 0x00000055  # invalid number of messages
    ESME_RTHROTTLED = 0x00000058  # throttling error (ESME exceeded allowed rate)
    ESME_RINVSCHED = 0x00000061  # invalid scheduled delivery time
    ESME_RINVEXPIRY = 0x00000062  # invalid validity period (expiry time)
    ESME_RINVDFTMSGID = 0x00000063  # predefined message invalid or not found
    ESME_RX_T_APPN = 0x00000064  # ESME receiver temporary app error
    ESME_RX_P_APPN = 0x00000065  # ESME receiver permanent app error
    ESME_RX_R_APPN = 0x00000066  # ESME receiver reject message error
    ESME_RQUERYFAIL = 0x00000067  # query_sm request failed
    ESME_RINVOPTPARSTREAM = 0x000000C0  # error in the optional part of the PDU body
    ESME_ROPTPARNOTALLWD = 0x000000C1  # optional parameter not allowed
    ESME_RINVPARLEN = 0x000000C2  # invalid parameter length
    ESME_RMISSINGOPTPARAM = 0x000000C3  # expected optional parameter missing
    ESME_RINVOPTPARAMVAL = 0x000000C4  # invalid optional parameter value
    ESME_RDELIVERYFAILURE = 0x000000FE  # delivery failure (data_sm_resp)
    ESME_RUNKNOWNERR = 0x000000FF  # unknown error
    # 0x00000400-0x000004FF are reserved for SMSC vendor-specific errors;
    # they arrive as plain ints.

    @property
    def is_transient(self) -> bool:
        """The peer asks us to slow down and retry later (reference/smpp.md:
        RTHROTTLED and RMSGQFUL must not block a connector for minutes)."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})


class Tag(IntEnum):
    """Optional parameter (TLV) tags, SMPP 3.4 §5.3.2 (table 5-6).

    0x1400-0x3FFF is the SMSC vendor-specific range: such TLVs are kept raw and
    re-encoded unchanged.
    """

    DEST_ADDR_SUBUNIT = 0x0005  # §5.3.2.1
    DEST_NETWORK_TYPE = 0x0006  # §5.3.2.3
    DEST_BEARER_TYPE = 0x0007  # §5.3.2.5
    DEST_TELEMATICS_ID = 0x0008  # §5.3.2.7
    SOURCE_ADDR_SUBUNIT = 0x000D  # §5.3.2.2
    SOURCE_NETWORK_TYPE = 0x000E  # §5.3.2.4
    SOURCE_BEARER_TYPE = 0x000F  # §5.3.2.6
    SOURCE_TELEMATICS_ID = 0x0010  # §5.3.2.8
    QOS_TIME_TO_LIVE = 0x0017  # §5.3.2.9
    PAYLOAD_TYPE = 0x0019  # §5.3.2.10
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D  # §5.3.2.11
    RECEIPTED_MESSAGE_ID = 0x001E  # §5.3.2.12
    MS_MSG_WAIT_FACILITIES = 0x0030  # §5.3.2.13
    PRIVACY_INDICATOR = 0x0201  # §5.3.2.14
    SOURCE_SUBADDRESS = 0x0202  # §5.3.2.15
    DEST_SUBADDRESS = 0x0203  # §5.3.2.16
    USER_MESSAGE_REFERENCE = 0x0204  # §5.3.2.17
    USER_RESPONSE_CODE = 0x0205  # §5.3.2.18
    SOURCE_PORT = 0x020A  # §5.3.2.20
    DESTINATION_PORT = 0x020B  # §5.3.2.21
    SAR_MSG_REF_NUM = 0x020C  # §5.3.2.22
    LANGUAGE_INDICATOR = 0x020D  # §5.3.2.19
    SAR_TOTAL_SEGMENTS = 0x020E  # §5.3.2.23
    SAR_SEGMENT_SEQNUM = 0x020F  # §5.3.2.24
    SC_INTERFACE_VERSION = 0x0210  # §5.3.2.25
    CALLBACK_NUM_PRES_IND = 0x0302  # §5.3.2.37
    CALLBACK_NUM_ATAG = 0x0303  # §5.3.2.38
    NUMBER_OF_MESSAGES = 0x0304  # §5.3.2.39
    CALLBACK_NUM = 0x0381  # §5.3.2.36
    DPF_RESULT = 0x0420  # §5.3.2.28
    SET_DPF = 0x0421  # §5.3.2.29
    MS_AVAILABILITY_STATUS = 0x0422  # §5.3.2.30
    NETWORK_ERROR_CODE = 0x0423  # §5.3.2.31
    MESSAGE_PAYLOAD = 0x0424  # §5.3.2.32
    DELIVERY_FAILURE_REASON = 0x0425  # §5.3.2.33
    MORE_MESSAGES_TO_SEND = 0x0426  # §5.3.2.34
    MESSAGE_STATE = 0x0427  # §5.3.2.35
    USSD_SERVICE_OP = 0x0501  # §5.3.2.44
    DISPLAY_TIME = 0x1201  # §5.3.2.26
    SMS_SIGNAL = 0x1203  # §5.3.2.40
    MS_VALIDITY = 0x1204  # §5.3.2.27
    ALERT_ON_MESSAGE_DELIVERY = 0x130C  # §5.3.2.41
    ITS_REPLY_TYPE = 0x1380  # §5.3.2.42
    ITS_SESSION_INFO = 0x1383  # §5.3.2.43


class Ton(IntEnum):
    """Type of Number (SMPP 3.4 §5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering Plan Indicator (SMPP 3.4 §5.2.6)."""

    UNKNOWN = 0
    ISDN = 1  # E.163 / E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    LAND_MOBILE = 6  # E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14  # IP
    WAP_CLIENT_ID = 18


# SMPP 3.4 §5.2.12: esm_class combines three parts, each under its mask.
ESM_MODE_MASK = 0x03  # bits 1-0: messaging mode (ESME -> SMSC)
ESM_TYPE_MASK = 0x3C  # bits 5-2: message type
ESM_FEATURE_MASK = 0xC0  # bits 7-6: GSM network specific features


class EsmMode(IntEnum):
    """esm_class bits 1-0, the messaging mode (SMPP 3.4 §5.2.12)."""

    DEFAULT = 0x00  # SMSC default mode (usually store and forward)
    DATAGRAM = 0x01
    FORWARD = 0x02  # transaction mode
    STORE_AND_FORWARD = 0x03


class EsmType(IntEnum):
    """esm_class bits 5-2, the message type (SMPP 3.4 §5.2.12)."""

    DEFAULT = 0x00
    DELIVERY_RECEIPT = 0x04  # SMSC delivery receipt (SMSC -> ESME)
    DELIVERY_ACK = 0x08  # SME delivery acknowledgement
    MANUAL_ACK = 0x10  # SME manual/user acknowledgement
    CONVERSATION_ABORT = 0x18  # Korean CDMA
    INTERMEDIATE_NOTIFICATION = 0x20


class EsmFeature(IntEnum):
    """esm_class bits 7-6, GSM network specific features (SMPP 3.4 §5.2.12)."""

    NONE = 0x00
    UDHI = 0x40  # short_message starts with a user data header (reference: 0x40)
    REPLY_PATH = 0x80
    UDHI_AND_REPLY_PATH = 0xC0


# SMPP 3.4 §5.2.17: registered_delivery combines three parts.
RECEIPT_REQUEST_MASK = 0x03  # bits 1-0: SMSC delivery receipt
SME_ACK_MASK = 0x0C  # bits 3-2: SME originated acknowledgement
INTERMEDIATE_NOTIFICATION = 0x10  # bit 4: intermediate notification requested


class ReceiptRequest(IntEnum):
    """registered_delivery bits 1-0: which SMSC delivery receipt is wanted."""

    NONE = 0x00
    ALWAYS = 0x01  # on success or failure
    ON_FAILURE = 0x02


class SmeAck(IntEnum):
    """registered_delivery bits 3-2: SME originated acknowledgement requested."""

    NONE = 0x00
    DELIVERY = 0x04
    MANUAL = 0x08
    BOTH = 0x0C


class MessageState(IntEnum):
    """message_state (SMPP 3.4 §5.2.28), in query_sm_resp and the receipt TLV."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8

    @property
    def is_final(self) -> bool:
        """A final state never goes back (reference/smpp.md: receipts arrive
        out of order, ENROUTE after DELIVRD)."""
        return self not in (MessageState.ENROUTE, MessageState.ACCEPTED, MessageState.UNKNOWN)


class DataCoding(IntEnum):
    """data_coding (SMPP 3.4 §5.2.19). 0 is "SMSC default": upstreams disagree
    whether it means GSM 03.38 or Latin-1 (a per-connector setting, see
    herald.text)."""

    SMSC_DEFAULT = 0x00
    IA5 = 0x01  # CCITT T.50 / ASCII
    OCTET_UNSPECIFIED = 0x02  # 8-bit binary
    LATIN_1 = 0x03  # ISO-8859-1
    OCTET_UNSPECIFIED_2 = 0x04  # 8-bit binary
    JIS = 0x05  # X 0208-1990
    CYRILLIC = 0x06  # ISO-8859-5
    LATIN_HEBREW = 0x07  # ISO-8859-8
    UCS2 = 0x08  # ISO/IEC-10646, in practice UTF-16BE without BOM
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A  # music codes
    EXTENDED_KANJI_JIS = 0x0D  # X 0212-1990
    KS_C_5601 = 0x0E


class DestFlag(IntEnum):
    """dest_flag in a submit_multi dest_address (SMPP 3.4 §4.5.1.1)."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2
