"""herald.smpp: the SMPP 3.4 codec, delivery receipts and session state machine.

Pure code (no sockets, no asyncio, no clock): bytes and ``now`` come in as
arguments, PDUs, events and bytes go out. Modules:

* ``constants``: wire constants as IntEnums (command ids, statuses, TLV tags,
  TON/NPI, esm_class and registered_delivery bits, message_state, data_coding).
* ``pdus``: one frozen dataclass per PDU; ``bytes(pdu)`` encodes.
* ``tlv``: optional parameters, every standard one named and typed.
* ``codec``: ``PduDecoder`` (streaming, explicit outcomes) and ``decode``.
* ``limits``: every bound hostile input can push, with its reason.
* ``errors``: the exception hierarchy; each error carries its command_status.
* ``receipts``: delivery receipt text and TLVs; ``message_id``: id policies.
* ``states``: the session state table; ``session``: the sans-I/O session
  (its docstring documents the API for shells); ``events``: what it reports.
"""

from herald.smpp.codec import (
    NEED_DATA,
    BrokenFraming,
    NeedData,
    Outcome,
    PduDecoder,
    UnparsedPdu,
    decode,
    encode,
)
from herald.smpp.constants import CommandId, CommandStatus, MessageState, Tag
from herald.smpp.errors import (
    FramingError,
    InvalidField,
    InvalidTlvValue,
    LocalProtocolError,
    PduDecodeError,
    RemoteProtocolError,
    SmppError,
)
from herald.smpp.events import *  # noqa: F403 - events are the session's vocabulary
from herald.smpp.events import __all__ as _events_all
from herald.smpp.pdus import *  # noqa: F403 - the PDU classes are the package's vocabulary
from herald.smpp.pdus import __all__ as _pdus_all
from herald.smpp.session import Session, SessionConfig
from herald.smpp.states import Role, State
from herald.smpp.tlv import Tlv

__all__ = [
    "NEED_DATA",
    "BrokenFraming",
    "CommandId",
    "CommandStatus",
    "FramingError",
    "InvalidField",
    "InvalidTlvValue",
    "LocalProtocolError",
    "MessageState",
    "NeedData",
    "Outcome",
    "PduDecodeError",
    "PduDecoder",
    "RemoteProtocolError",
    "Role",
    "Session",
    "SessionConfig",
    "SmppError",
    "State",
    "Tag",
    "Tlv",
    "UnparsedPdu",
    "decode",
    "encode",
    *_events_all,
    *_pdus_all,
]
