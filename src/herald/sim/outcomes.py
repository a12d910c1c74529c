"""Receipt outcomes, the outcome mix, and the deliver_sm PDUs the simulator sends.

A receipt is a deliver_sm with esm_class 0x04 (SMPP 3.4 §5.2.12), the
Appendix B text in short_message::

    id:3fa0c1d sub:001 dlvrd:001 submit date:2501311200 done date:2501311200
    stat:DELIVRD err:000 text:Hello

and three TLVs: receipted_message_id (§5.3.2.12), message_state (§5.3.2.35)
and network_error_code (§5.3.2.31). Dates are UTC, 10 digits (YYMMDDhhmm);
``text:`` holds the first 20 characters of the message (Appendix B), with
anything outside printable ASCII shown as ``?``. The receipt comes from the
handset (source_addr = the message's destination) to the message's sender.

An MO echo is a deliver_sm with esm_class 0 (or 0x40 when the body has a UDH)
carrying the submitted body back, from the destination to the source.

Pure code: no I/O, no clock; times are arguments (seconds since the epoch).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Final, NamedTuple

from herald.smpp.constants import EsmType, MessageState
from herald.smpp.limits import MAX_SHORT_MESSAGE
from herald.smpp.pdus import DeliverSm
from herald.smpp.receipts import stat_from_state
from herald.smpp.tlv import (
    MESSAGE_PAYLOAD,
    MESSAGE_STATE,
    NETWORK_ERROR_CODE,
    RECEIPTED_MESSAGE_ID,
    NetworkErrorCode,
    Tlv,
)
from herald.text import BASIC_TABLE, UDHI, SmscDefault, TextError, read_message

__all__ = [
    "SNIPPET_CHARS",
    "Accepted",
    "Outcome",
    "OutcomeMix",
    "mo_pdu",
    "receipt_pdu",
    "receipt_text",
    "snippet",
]

#: SMPP 3.4 Appendix B: the receipt's text: field holds the first 20 characters.
SNIPPET_CHARS: Final = 20
#: SMPP 3.4 §5.3.2.31: network_type 3 = GSM.
GSM_NETWORK: Final = 3

_S = MessageState


class Outcome(Enum):
    """A receipt's final status. ``error`` is a GSM MAP error code (3GPP TS
    29.002 §17.6.6) the receipt carries in ``err:`` and network_error_code."""

    DELIVERED = ("delivered", _S.DELIVERED, 0)
    UNDELIVERED = ("undelivered", _S.UNDELIVERABLE, 1)  # unknownSubscriber
    EXPIRED = ("expired", _S.EXPIRED, 6)  # absentSubscriberSM until validity ran out
    REJECTED = ("rejected", _S.REJECTED, 13)  # callBarred
    DELETED = ("deleted", _S.DELETED, 0)

    def __init__(self, label: str, state: MessageState, error: int) -> None:
        self.label = label
        self.state = state
        self.error = error
        self.stat = stat_from_state(state)
        # the TLVs every receipt of this outcome shares, built once
        self.tlvs = (MESSAGE_STATE(int(state)),
                     NETWORK_ERROR_CODE(NetworkErrorCode(GSM_NETWORK, error)))

    @classmethod
    def from_label(cls, label: str) -> Outcome:
        """The outcome named ``label`` (``delivered``, ...); KeyError otherwise."""
        for outcome in cls:
            if outcome.label == label:
                return outcome
        raise KeyError(label)


@dataclass(frozen=True, slots=True)
class OutcomeMix:
    """Outcomes with their weights (any positive numbers; they are normalised).
    ``pick(u)`` maps a uniform ``u`` in [0, 1) to an outcome, so the caller's
    seeded random source makes the choice reproducible."""

    weights: tuple[tuple[Outcome, float], ...] = ((Outcome.DELIVERED, 1.0),)
    _cumulative: tuple[tuple[float, Outcome], ...] = ()

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("an outcome mix needs at least one outcome")
        seen: set[Outcome] = set()
        for outcome, weight in self.weights:
            if outcome in seen:
                raise ValueError(f"{outcome.label} is given twice")
            seen.add(outcome)
            if not weight >= 0 or weight == float("inf"):  # also rejects NaN
                raise ValueError(f"{outcome.label}: weight {weight} is not a finite number >= 0")
        total = sum(weight for _, weight in self.weights)
        if total <= 0:
            raise ValueError("the weights add up to 0")
        cumulative = []
        running = 0.0
        for outcome, weight in self.weights:
            if weight > 0:
                running += weight / total
                cumulative.append((running, outcome))
        # the last threshold is exactly 1 so rounding never leaves a gap
        cumulative[-1] = (1.0, cumulative[-1][1])
        object.__setattr__(self, "_cumulative", tuple(cumulative))

    @classmethod
    def of(cls, pairs: Iterable[tuple[Outcome, float]]) -> OutcomeMix:
        return cls(tuple(pairs))

    def share(self, outcome: Outcome) -> float:
        """The fraction of messages that get ``outcome``."""
        total = sum(weight for _, weight in self.weights)
        return sum(weight for o, weight in self.weights if o is outcome) / total

    def pick(self, u: float) -> Outcome:
        """The outcome for ``u`` in [0, 1)."""
        for threshold, outcome in self._cumulative:
            if u < threshold:
                return outcome
        return self._cumulative[-1][1]

    def __str__(self) -> str:
        return ",".join(f"{o.label}={w:g}" for o, w in self.weights)


class Accepted(NamedTuple):
    """What the simulator keeps of an accepted message until its receipt (and
    MO echo) is sent. ``body`` is kept only for an MO echo."""

    system_id: str
    message_id: str  # as answered in submit_sm_resp
    receipt_id: str  # as the receipt quotes it (ids.py)
    source_ton: int
    source_npi: int
    source_addr: str
    dest_ton: int
    dest_npi: int
    dest_addr: str
    submitted: float  # epoch seconds
    snippet: str
    data_coding: int = 0
    udhi: bool = False
    body: bytes = b""


@functools.lru_cache(maxsize=256)
def _minute(epoch_minute: int) -> str:
    return datetime.fromtimestamp(epoch_minute * 60, UTC).strftime("%y%m%d%H%M")


def receipt_text(receipt_id: str, outcome_state: MessageState, stat: str, error: int,
                 submitted: float, done: float, text: str) -> str:
    """The SMPP 3.4 Appendix B receipt text (10-digit UTC dates)."""
    dlvrd = "001" if outcome_state is _S.DELIVERED else "000"
    return (f"id:{receipt_id} sub:001 dlvrd:{dlvrd} submit date:{_minute(int(submitted // 60))}"
            f" done date:{_minute(int(done // 60))} stat:{stat} err:{error:03d} text:{text}")


def receipt_pdu(message: Accepted, outcome: Outcome, done: float, *,
                state: MessageState | None = None) -> DeliverSm:
    """The receipt deliver_sm for ``message``. ``state`` overrides the outcome's
    message_state (an ENROUTE receipt after the final one, say)."""
    state = outcome.state if state is None else state
    if state is outcome.state:
        stat, error, state_tlvs = outcome.stat, outcome.error, outcome.tlvs
    else:
        stat, error = stat_from_state(state), 0
        state_tlvs = (MESSAGE_STATE(int(state)),
                      NETWORK_ERROR_CODE(NetworkErrorCode(GSM_NETWORK, 0)))
    text = receipt_text(message.receipt_id, state, stat, error, message.submitted, done,
                        message.snippet)
    return DeliverSm(
        source_addr_ton=message.dest_ton, source_addr_npi=message.dest_npi,
        source_addr=message.dest_addr,
        dest_addr_ton=message.source_ton, dest_addr_npi=message.source_npi,
        destination_addr=message.source_addr,
        esm_class=EsmType.DELIVERY_RECEIPT,
        short_message=text.encode("ascii"),
        tlvs=(RECEIPTED_MESSAGE_ID(message.receipt_id), *state_tlvs),
    )


def mo_pdu(message: Accepted) -> DeliverSm:
    """The MO echo: the body back from the destination to the source."""
    body = message.body
    long = len(body) > MAX_SHORT_MESSAGE
    tlvs: tuple[Tlv, ...] = (MESSAGE_PAYLOAD(body),) if long else ()
    return DeliverSm(
        source_addr_ton=message.dest_ton, source_addr_npi=message.dest_npi,
        source_addr=message.dest_addr,
        dest_addr_ton=message.source_ton, dest_addr_npi=message.source_npi,
        destination_addr=message.source_addr,
        esm_class=UDHI if message.udhi else 0,
        data_coding=message.data_coding,
        short_message=b"" if long else body,
        tlvs=tlvs,
    )


# Byte -> printable ASCII (or "?"), for the snippet's fast paths: one table for
# the 8-bit ASCII-compatible codings, one for unpacked GSM 03.38 septets.
_QUESTION = 0x3F
_ASCII_VIEW: Final = bytes(b if 0x20 <= b < 0x7F else _QUESTION for b in range(256))
_GSM_VIEW: Final = bytes(
    [ord(c) if 0x20 <= ord(c) < 0x7F else _QUESTION for c in BASIC_TABLE]
    + [_QUESTION] * (256 - len(BASIC_TABLE))
)
_GSM_ESCAPE: Final = 0x1B
# SMPP 3.4 §5.2.19: 1 = IA5 (ASCII), 3 = Latin-1; 0 is read as GSM 03.38 here.
_ASCII_CODINGS: Final = frozenset({1, 3})


def snippet(body: bytes, data_coding: int, esm_class: int) -> str:
    """The first 20 characters of a message as printable ASCII (anything else
    becomes ``?``), for the receipt's ``text:`` field. Never raises: a body
    that cannot be decoded gives ""."""
    if not esm_class & UDHI:
        head = body[:SNIPPET_CHARS]
        if data_coding in _ASCII_CODINGS:
            return head.translate(_ASCII_VIEW).decode("ascii")
        if data_coding == 0 and _GSM_ESCAPE not in head:
            return head.translate(_GSM_VIEW).decode("ascii")
    try:
        text = read_message(body, esm_class=esm_class, data_coding=data_coding,
                            smsc_default=SmscDefault.GSM7, strict=False).text
    except TextError:
        return ""
    if text is None:  # binary data
        return ""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:SNIPPET_CHARS])
