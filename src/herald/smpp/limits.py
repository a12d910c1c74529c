"""Every bound that hostile or broken input can push, named, with its reason.

A peer controls command_length, sm_length, TLV lengths and counts; each of them
is checked against one of these before any work proportional to it is done.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "HEADER_SIZE",
    "MAX_BUFFERED_BYTES",
    "MAX_DESTINATIONS",
    "MAX_PDU_SIZE",
    "MAX_SEQUENCE_NUMBER",
    "MAX_SHORT_MESSAGE",
    "MAX_TLVS_PER_PDU",
    "MAX_TLV_VALUE",
    "MAX_UNSUCCESS",
    "MAX_WINDOW",
]

# SMPP 3.4 §3.2: command_length, command_id, command_status, sequence_number,
# four octets each. A command_length below this cannot even hold its header.
HEADER_SIZE: Final = 16

# SMPP 3.4 §5.3.1: a TLV length is two octets.
MAX_TLV_VALUE: Final = 0xFFFF

# SMPP 3.4 §4.5.1: number_of_dests is at most 254 in submit_multi.
MAX_DESTINATIONS: Final = 254

# SMPP 3.4 §4.5.2: no_unsuccess counts a subset of those destinations.
MAX_UNSUCCESS: Final = 254

# SMPP 3.4 §5.2.22: short_message is 0-254 octets (the sm_length octet could
# say 255; the spec does not allow it). Longer content goes in message_payload.
MAX_SHORT_MESSAGE: Final = 254

# The spec sets no maximum PDU size. The largest legitimate PDU is a
# submit_multi to 254 SME addresses (254 x 24 octets) with a full short_message
# and a 64 KiB message_payload TLV: about 72 000 octets. Anything larger is
# garbage or an attack, and declaring it must not make us buffer it.
MAX_PDU_SIZE: Final = 72 * 1024

# Bytes fed to a decoder and not yet pulled as outcomes: one partial PDU of the
# largest size plus a few socket reads. A shell that exceeds it is feeding
# without draining (it must pull outcomes/events between reads).
MAX_BUFFERED_BYTES: Final = MAX_PDU_SIZE + 4 * 64 * 1024

# SMPP 3.4 defines 44 TLV tags and a real PDU carries a handful. Every TLV
# becomes an object, so a 72 KiB PDU of empty TLVs (18 000 of them) would
# cost far more to decode than its size suggests: cap the count.
MAX_TLVS_PER_PDU: Final = 64

# SMPP 3.4 §5.1.4: sequence_number runs 0x00000001..0x7FFFFFFF, then wraps.
MAX_SEQUENCE_NUMBER: Final = 0x7FFFFFFF

# Largest in-flight window a session accepts. Windows of 1-20 are typical
# (reference/smpp.md); a large window risks duplicates when a connection
# drops, and each slot holds a request in memory.
MAX_WINDOW: Final = 1000
