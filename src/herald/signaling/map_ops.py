"""MAP operation codes and application contexts (3GPP TS 29.002 §17).

Operation codes are TCAP *local* operation codes (TS 29.002 §17.5). Application
contexts are OIDs ``{itu-t(0) identified-organization(4) etsi(0)
mobileDomain(0) gsm-Network(1) ac-Id(0) <id> <version>}`` (§17.3.3); the table in
``shared/reference/map-operations.md`` writes them ``id.vN``.

Policy keys on (operation, application context), never the operation alone:
opcode 46 is mo-ForwardSM under AC 21 (shortMsgMO-Relay) but the MT
forwardSM under AC 25 v1/v2 (shortMsgMT-Relay). :func:`is_mt_forward_sm` says
which.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

__all__ = [
    "MAP_AC_PREFIX",
    "MapAc",
    "MapOperation",
    "ac_oid",
    "is_mt_forward_sm",
    "map_ac",
]

#: {0 4 0 0 1 0}: the arc under which every MAP application context sits.
MAP_AC_PREFIX: Final[tuple[int, ...]] = (0, 4, 0, 0, 1, 0)


class MapOperation(IntEnum):
    """TS 29.002 §17.5 local operation codes."""

    UPDATE_LOCATION = 2
    CANCEL_LOCATION = 3
    PROVIDE_ROAMING_NUMBER = 4
    NOTE_SUBSCRIBER_DATA_MODIFIED = 5
    RESUME_CALL_HANDLING = 6
    INSERT_SUBSCRIBER_DATA = 7
    DELETE_SUBSCRIBER_DATA = 8
    SEND_PARAMETERS = 9
    REGISTER_SS = 10
    ERASE_SS = 11
    ACTIVATE_SS = 12
    DEACTIVATE_SS = 13
    INTERROGATE_SS = 14
    AUTHENTICATION_FAILURE_REPORT = 15
    NOTIFY_SS = 16
    REGISTER_PASSWORD = 17
    GET_PASSWORD = 18
    PROCESS_UNSTRUCTURED_SS_DATA = 19
    RELEASE_RESOURCES = 20
    MT_FORWARD_SM_VGCS = 21
    SEND_ROUTING_INFO = 22
    UPDATE_GPRS_LOCATION = 23
    SEND_ROUTING_INFO_FOR_GPRS = 24
    FAILURE_REPORT = 25
    NOTE_MS_PRESENT_FOR_GPRS = 26
    PERFORM_HANDOVER = 28
    SEND_END_SIGNAL = 29
    PERFORM_SUBSEQUENT_HANDOVER = 30
    PROVIDE_SIWFS_NUMBER = 31
    SIWFS_SIGNALLING_MODIFY = 32
    PROCESS_ACCESS_SIGNALLING = 33
    FORWARD_ACCESS_SIGNALLING = 34
    NOTE_INTERNAL_HANDOVER = 35
    RESET = 37
    FORWARD_CHECK_SS_INDICATION = 38
    PREPARE_GROUP_CALL = 39
    SEND_GROUP_CALL_END_SIGNAL = 40
    PROCESS_GROUP_CALL_SIGNALLING = 41
    FORWARD_GROUP_CALL_SIGNALLING = 42
    CHECK_IMEI = 43
    MT_FORWARD_SM = 44
    SEND_ROUTING_INFO_FOR_SM = 45
    #: mo-ForwardSM in v3; forwardSM (MO *and* MT) in v1/v2: see is_mt_forward_sm.
    MO_FORWARD_SM = 46
    REPORT_SM_DELIVERY_STATUS = 47
    NOTE_SUBSCRIBER_PRESENT = 48
    ALERT_SERVICE_CENTRE_WITHOUT_RESULT = 49
    ACTIVATE_TRACE_MODE = 50
    DEACTIVATE_TRACE_MODE = 51
    TRACE_SUBSCRIBER_ACTIVITY = 52
    BEGIN_SUBSCRIBER_ACTIVITY = 54
    SEND_IDENTIFICATION = 55
    SEND_AUTHENTICATION_INFO = 56
    RESTORE_DATA = 57
    SEND_IMSI = 58
    PROCESS_UNSTRUCTURED_SS_REQUEST = 59
    UNSTRUCTURED_SS_REQUEST = 60
    UNSTRUCTURED_SS_NOTIFY = 61
    ANY_TIME_SUBSCRIPTION_INTERROGATION = 62
    INFORM_SERVICE_CENTRE = 63
    ALERT_SERVICE_CENTRE = 64
    ANY_TIME_MODIFICATION = 65
    READY_FOR_SM = 66
    PURGE_MS = 67
    PREPARE_HANDOVER = 68
    PREPARE_SUBSEQUENT_HANDOVER = 69
    PROVIDE_SUBSCRIBER_INFO = 70
    ANY_TIME_INTERROGATION = 71
    SS_INVOCATION_NOTIFICATION = 72
    SET_REPORTING_STATE = 73
    STATUS_REPORT = 74
    REMOTE_USER_FREE = 75
    REGISTER_CC_ENTRY = 76
    ERASE_CC_ENTRY = 77
    SECURE_TRANSPORT_CLASS_1 = 78
    SECURE_TRANSPORT_CLASS_2 = 79
    SECURE_TRANSPORT_CLASS_3 = 80
    SECURE_TRANSPORT_CLASS_4 = 81
    PROVIDE_SUBSCRIBER_LOCATION = 83
    SEND_GROUP_CALL_INFO = 84
    SEND_ROUTING_INFO_FOR_LCS = 85
    SUBSCRIBER_LOCATION_REPORT = 86
    IST_ALERT = 87
    IST_COMMAND = 88
    NOTE_MM_EVENT = 89


class MapAc(IntEnum):
    """TS 29.002 §17.3.3 application-context ids (the 7th OID arc)."""

    NETWORK_LOC_UP = 1
    LOCATION_CANCELLATION = 2
    ROAMING_NUMBER_ENQUIRY = 3
    IST_ALERTING = 4
    LOCATION_INFO_RETRIEVAL = 5
    CALL_CONTROL_TRANSFER = 6
    REPORTING = 7
    CALL_COMPLETION = 8
    SERVICE_TERMINATION = 9
    RESET = 10
    HANDOVER_CONTROL = 11
    EQUIPMENT_MNGT = 13
    INFO_RETRIEVAL = 14
    INTER_VLR_INFO_RETRIEVAL = 15
    SUBSCRIBER_DATA_MNGT = 16
    TRACING = 17
    NETWORK_FUNCTIONAL_SS = 18
    NETWORK_UNSTRUCTURED_SS = 19
    SHORT_MSG_GATEWAY = 20
    SHORT_MSG_MO_RELAY = 21
    SUBSCRIBER_DATA_MODIFICATION_NOTIFICATION = 22
    SHORT_MSG_ALERT = 23
    MWD_MNGT = 24
    SHORT_MSG_MT_RELAY = 25
    IMSI_RETRIEVAL = 26
    MS_PURGING = 27
    SUBSCRIBER_INFO_ENQUIRY = 28
    ANY_TIME_INFO_ENQUIRY = 29
    GROUP_CALL_CONTROL = 31
    GPRS_LOCATION_UPDATE = 32
    GPRS_LOCATION_INFO_RETRIEVAL = 33
    FAILURE_REPORT = 34
    GPRS_NOTIFY = 35
    SS_INVOCATION_NOTIFICATION = 36
    LOCATION_SVC_GATEWAY = 37
    LOCATION_SVC_ENQUIRY = 38
    AUTHENTICATION_FAILURE_REPORT = 39
    SHORT_MSG_MT_RELAY_VGCS = 41
    MM_EVENT_REPORTING = 42
    ANY_TIME_INFO_HANDLING = 43
    RESOURCE_MANAGEMENT = 44
    GROUP_CALL_INFO_RETRIEVAL = 45
    VCSG_LOCATION_UPDATE = 46
    VCSG_LOCATION_CANCELLATION = 47


#: Largest AC version number TS 29.002 defines (callControlTransfer and
#: gprsLocationInfoRetrieval reach v4); anything above is not a MAP AC.
MAX_AC_VERSION: Final = 4


def ac_oid(ac: int, version: int) -> tuple[int, ...]:
    """The OID of MAP application context ``ac`` version ``version``."""
    return (*MAP_AC_PREFIX, int(ac), version)


def map_ac(oid: tuple[int, ...] | None) -> tuple[int, int] | None:
    """``(ac id, version)`` if ``oid`` is a MAP application context, else None.

    The id is returned as a :class:`MapAc` member when TS 29.002 names it, as a
    plain int otherwise (a policy may still key on it).
    """
    if oid is None or len(oid) != 8 or oid[:6] != MAP_AC_PREFIX:
        return None
    ac, version = oid[6], oid[7]
    if not 1 <= version <= MAX_AC_VERSION:
        return None
    try:
        return MapAc(ac), version
    except ValueError:
        return ac, version


def is_mt_forward_sm(opcode: int | None, oid: tuple[int, ...] | None) -> bool:
    """True when the operation delivers a short message *to* a mobile.

    mt-ForwardSM (44) always; opcode 46 only under shortMsgMT-Relay (AC 25)
    v1/v2, where it is the MT forwardSM (TS 29.002 §12.9, §17.6.5).
    """
    if opcode == MapOperation.MT_FORWARD_SM:
        return True
    if opcode != MapOperation.MO_FORWARD_SM:
        return False
    ac = map_ac(oid)
    return ac is not None and ac[0] == MapAc.SHORT_MSG_MT_RELAY and ac[1] <= 2
