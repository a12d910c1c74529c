"""MAP operations and their default interconnect category.

Operation codes and application contexts are those of 3GPP TS 29.002 (operation
codes in §17.5, application contexts in §17.3.2); the categories follow the
public descriptions of GSMA FS.11 collected in
``shared/reference/map-operations.md``. A policy may override any of them.

The table is keyed on ``(opcode, ac_id, ac_version)``, never on the opcode
alone: opcode 46 is mo-ForwardSM under AC 21 (shortMsgMO-Relay) but the MT
forwardSM under AC 25 v1/v2 (shortMsgMT-Relay). An invoke whose application
context is unknown (a TC-CONTINUE whose dialogue began outside the capture) is
classified by :data:`OPCODE_FALLBACK`, the *most restrictive* category any
context gives that opcode, so a missing context never makes an operation more
acceptable.
"""

from __future__ import annotations

from enum import Enum

from herald.signaling.map_ops import MapOperation as Op

__all__ = [
    "CATEGORY_TABLE",
    "LOOKUP_OPCODES",
    "OPCODE_FALLBACK",
    "OPERATION_NAMES",
    "Category",
    "Op",
    "category_of",
    "opcode_for_name",
    "operation_name",
]


class Category(Enum):
    """Interconnect category (GSMA FS.11 as publicly described)."""

    CAT1 = "cat1"  # never from the interconnect
    CAT2 = "cat2"  # only from the home network of the subscriber it is about
    CAT3 = "cat3"  # about our outbound roamers: only if plausibly there
    SMS = "sms"  # SMS interworking: guarded by consistency, rates, lookups
    NONE = "none"  # not an operation (results, aborts)

    __hash__ = object.__hash__

    @property
    def rank(self) -> int:
        """Restrictiveness: CAT1 highest, NONE lowest."""
        return _RANK[self.value]


_RANK = {"none": 0, "sms": 1, "cat3": 2, "cat2": 3, "cat1": 4}


OPERATION_NAMES: dict[int, str] = {
    2: "updateLocation",
    3: "cancelLocation",
    4: "provideRoamingNumber",
    5: "noteSubscriberDataModified",
    6: "resumeCallHandling",
    7: "insertSubscriberData",
    8: "deleteSubscriberData",
    9: "sendParameters",
    10: "registerSS",
    11: "eraseSS",
    12: "activateSS",
    13: "deactivateSS",
    14: "interrogateSS",
    15: "authenticationFailureReport",
    16: "notifySS",
    17: "registerPassword",
    18: "getPassword",
    19: "processUnstructuredSS-Data",
    20: "releaseResources",
    21: "mt-ForwardSM-VGCS",
    22: "sendRoutingInfo",
    23: "updateGprsLocation",
    24: "sendRoutingInfoForGprs",
    25: "failureReport",
    26: "noteMsPresentForGprs",
    28: "performHandover",
    29: "sendEndSignal",
    30: "performSubsequentHandover",
    31: "provideSIWFSNumber",
    32: "sIWFSSignallingModify",
    33: "processAccessSignalling",
    34: "forwardAccessSignalling",
    35: "noteInternalHandover",
    37: "reset",
    38: "forwardCheckSS-Indication",
    39: "prepareGroupCall",
    40: "sendGroupCallEndSignal",
    41: "processGroupCallSignalling",
    42: "forwardGroupCallSignalling",
    43: "checkIMEI",
    44: "mt-ForwardSM",
    45: "sendRoutingInfoForSM",
    46: "forwardSM",
    47: "reportSM-DeliveryStatus",
    50: "activateTraceMode",
    51: "deactivateTraceMode",
    52: "traceSubscriberActivity",
    55: "sendIdentification",
    56: "sendAuthenticationInfo",
    57: "restoreData",
    58: "sendIMSI",
    59: "processUnstructuredSS-Request",
    60: "unstructuredSS-Request",
    61: "unstructuredSS-Notify",
    62: "anyTimeSubscriptionInterrogation",
    64: "alertServiceCentre",
    65: "anyTimeModification",
    66: "readyForSM",
    67: "purgeMS",
    68: "prepareHandover",
    69: "prepareSubsequentHandover",
    70: "provideSubscriberInfo",
    71: "anyTimeInterrogation",
    72: "ss-InvocationNotification",
    76: "registerCC-Entry",
    77: "eraseCC-Entry",
    78: "secureTransportClass1",
    79: "secureTransportClass2",
    80: "secureTransportClass3",
    81: "secureTransportClass4",
    83: "provideSubscriberLocation",
    84: "sendGroupCallInfo",
    85: "sendRoutingInfoForLCS",
    86: "subscriberLocationReport",
}
_NAME_TO_OPCODE = {name.lower(): code for code, name in OPERATION_NAMES.items()}

# Operations that ask the network about one subscriber number: the subject of
# the repeated-lookup, range-sweep and per-subscriber rate rules.
LOOKUP_OPCODES: frozenset[int] = frozenset({22, 45, 58, 70, 71, 83, 85})

_C1, _C2, _C3, _SMS = Category.CAT1, Category.CAT2, Category.CAT3, Category.SMS

# (opcodes, AC id, AC versions, category): the rows of map-operations.md.
_ROWS: tuple[tuple[tuple[int, ...], int, tuple[int, ...], Category], ...] = (
    ((2,), 1, (1, 2, 3), _C3),
    ((3,), 2, (1, 2, 3), _C2),
    ((4,), 3, (1, 2, 3), _C2),
    ((5,), 22, (3,), _C1),
    ((6,), 6, (3, 4), _C1),
    ((7,), 16, (1, 2, 3), _C2),
    ((7,), 1, (1, 2, 3), _C2),  # ISD inside a networkLocUp dialogue
    ((7,), 32, (3,), _C2),  # ISD inside a gprsLocationUpdate dialogue
    ((8,), 16, (1, 2, 3), _C2),
    ((9,), 14, (1,), _C1),
    ((9,), 1, (1,), _C1),
    ((10, 11, 12, 13, 14, 17), 18, (1, 2), _C3),
    ((15,), 39, (3,), _C3),
    ((18,), 18, (1, 2), _C2),
    ((19,), 18, (1,), _C3),
    ((20,), 44, (3,), _C1),
    ((21,), 41, (3,), _C1),
    ((22,), 5, (1, 2, 3), _C1),
    ((23,), 32, (3,), _C3),
    ((24,), 33, (3, 4), _C1),
    ((25,), 34, (3,), _C1),
    ((26,), 35, (3,), _C1),
    ((28, 29, 30, 31, 32, 33, 34, 35), 11, (1, 2, 3), _C1),
    ((37,), 10, (1, 2, 3), _C2),
    ((39, 40, 41, 42), 31, (3,), _C1),
    ((43,), 13, (1, 2, 3), _C1),
    ((44,), 25, (3,), _SMS),
    ((45,), 20, (1, 2, 3), _SMS),
    ((46,), 21, (1, 2, 3), _C3),  # mo-ForwardSM
    ((46,), 25, (1, 2), _SMS),  # forwardSM in shortMsgMT-Relay v1/v2: an MT delivery
    ((47,), 20, (1, 2, 3), _SMS),
    ((50, 51, 52), 17, (1, 2, 3), _C1),
    ((55,), 15, (2, 3), _C1),
    ((56,), 14, (2, 3), _C3),
    ((57,), 1, (2, 3), _C3),
    ((58,), 26, (2,), _C1),
    ((59,), 19, (2,), _C3),
    ((60, 61), 19, (2,), _C2),
    ((62,), 43, (3,), _C1),
    ((64,), 23, (2,), _SMS),
    ((65,), 43, (3,), _C1),
    ((66,), 24, (2, 3), _C3),
    ((67,), 27, (2, 3), _C3),
    ((68, 69), 11, (2, 3), _C1),
    ((70,), 28, (3,), _C2),
    ((71,), 29, (3,), _C1),
    ((72,), 36, (3,), _C1),
    ((76, 77), 8, (3,), _C1),
    ((83,), 38, (3,), _C1),
    ((84,), 45, (3,), _C1),
    ((85,), 37, (3,), _C1),
    ((86,), 38, (3,), _C1),
)

# Operations with no application context of their own (a dash in the reference).
_CONTEXTLESS: dict[int, Category] = {
    16: _C1,
    38: _C2,
    78: _C1,
    79: _C1,
    80: _C1,
    81: _C1,
    **{code: _C1 for code in range(109, 127)},
}

CATEGORY_TABLE: dict[tuple[int, int, int], Category] = {
    (code, ac_id, version): category
    for codes, ac_id, versions, category in _ROWS
    for code in codes
    for version in versions
}


def _fallback() -> dict[int, Category]:
    worst: dict[int, Category] = dict(_CONTEXTLESS)
    for (code, _ac, _v), category in CATEGORY_TABLE.items():
        if code not in worst or category.rank > worst[code].rank:
            worst[code] = category
    return worst


OPCODE_FALLBACK: dict[int, Category] = _fallback()


def category_of(
    opcode: int,
    ac: tuple[int, int] | None,
    table: dict[tuple[int, int, int], Category] = CATEGORY_TABLE,
    fallback: dict[int, Category] = OPCODE_FALLBACK,
    unknown: Category = Category.CAT1,
) -> Category:
    """The category of ``opcode`` invoked under MAP application context ``ac``.

    A pair the table does not list (an operation invoked under a context that
    does not carry it) is ``unknown`` (Category 1 by default): at the border,
    an operation smuggled into the wrong context is an attack signature.
    """
    if ac is not None:
        found = table.get((opcode, ac[0], ac[1]))
        return unknown if found is None else found
    found = fallback.get(opcode)
    return unknown if found is None else found


def operation_name(opcode: int | None) -> str:
    if opcode is None:
        return ""
    return OPERATION_NAMES.get(opcode, f"opcode-{opcode}")


def opcode_for_name(name: str) -> int | None:
    """Accept an operation's name (case-insensitive) or its decimal code."""
    text = name.strip()
    if text.isdigit():
        return int(text)
    return _NAME_TO_OPCODE.get(text.lower())
