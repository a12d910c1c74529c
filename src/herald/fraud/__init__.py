"""SMS-pumping defence (issue 11): a pure engine fed requests, delivery
receipts and verifications with their timestamps, answering every request
allow or block with its reasons and figures; and a causal replay of recorded
traffic through it (``herald fraud replay``, ``herald/fraud_cli.py``).
No I/O and no clock here: the caller passes every time in.
"""

from herald.fraud._addresses import ADDRESS_TYPES, AddressTypes, parse_asn
from herald.fraud._engine import (
    HUMAN_MS,
    LEVELS,
    MODES,
    Block,
    Controls,
    Engine,
    Level,
    Prices,
)
from herald.fraud._events import Action, Decision, Reason, Receipt, Request, Verification
from herald.fraud._replay import parse_ts, replay

__all__ = [
    "ADDRESS_TYPES", "HUMAN_MS", "LEVELS", "MODES", "Action", "AddressTypes", "Block",
    "Controls", "Decision", "Engine", "Level", "Prices", "Reason", "Receipt", "Request",
    "Verification", "parse_asn", "parse_ts", "replay",
]
