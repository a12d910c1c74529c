"""Message ids the simulator hands out, in the forms real SMSCs use.

Each accepted message gets a number ``n``; the id in submit_sm_resp is ``n`` in
the configured :class:`IdStyle`, and the id the receipt quotes (text ``id:`` and
the receipted_message_id TLV) is ``n`` in the configured :class:`ReceiptIdForm`.
Pairing them differently exercises each of herald's receipt-id policies
(``herald.smpp.message_id.IdPolicy``)::

    style    receipt   example (resp / receipt)              policy that matches
    hex      same      3fa0c1d / 3fa0c1d                      as_is
    hex      decimal   3fa0c1d / 66718749                     hex_to_dec
    decimal  hex       66718749 / 3fa0c1d                     dec_to_hex
    decimal  padded    66718749 / 0066718749                  normalized
    hex      upper     3fa0c1d / 3FA0C1D                      case_insensitive
    uuid     hex       9b2e...-...-... / 9b2e... (no hyphens)  normalized

Pure code: no I/O, no clock. The random source is passed in (seeded by the
simulator), so a run with the same seed hands out the same ids.
"""

from __future__ import annotations

import random
import uuid
from enum import StrEnum
from typing import Final

__all__ = ["FIRST_ID_RANGE", "IdGenerator", "IdStyle", "ReceiptIdForm"]

#: The first number is drawn from this range: 7-8 hex digits, mostly with
#: letters in them (so hex and decimal readings of an id differ visibly), and
#: 8-10 decimal digits (so zero-padding to 10 usually shows).
FIRST_ID_RANGE: Final = (1 << 24, 1 << 30)
#: SMPP 3.4 §5.2.23: message_id is at most 65 octets; padded ids are 10 digits
#: (reference/smpp.md: "zero-padded to 10 digits").
PADDED_WIDTH: Final = 10


class IdStyle(StrEnum):
    """The form of the id in submit_sm_resp / data_sm_resp / submit_multi_resp."""

    HEX = "hex"  # lower-case hexadecimal
    DECIMAL = "decimal"
    UUID = "uuid"  # RFC 9562 version 4 text form, from the seeded random source


class ReceiptIdForm(StrEnum):
    """The form of the id quoted in the receipt, relative to the same number."""

    SAME = "same"  # exactly the response's id
    DECIMAL = "decimal"  # the number in decimal
    HEX = "hex"  # the number in lower-case hex (a uuid without hyphens)
    PADDED = "padded"  # decimal, zero-padded to 10 digits
    UPPER = "upper"  # the response's id upper-cased


class IdGenerator:
    """Hands out (response id, receipt id) pairs; see the module docstring."""

    __slots__ = ("_next", "_rng", "_same", "_style", "receipt_form", "style")

    def __init__(self, style: IdStyle, receipt_form: ReceiptIdForm, rng: random.Random) -> None:
        self.style = style
        self.receipt_form = receipt_form
        self._rng = rng
        self._next = rng.randrange(*FIRST_ID_RANGE)
        self._style = style
        self._same = receipt_form is ReceiptIdForm.SAME

    def next(self) -> tuple[str, str]:
        """The next (response id, receipt id)."""
        if self._style is IdStyle.UUID:
            # version 4: random bits with the version and variant fields set
            n = uuid.UUID(int=self._rng.getrandbits(128), version=4).int
        else:
            n = self._next
            self._next = n + 1
        response = self._format(n)
        if self._same:
            return response, response
        return response, self._receipt(n, response)

    def _format(self, n: int) -> str:
        if self._style is IdStyle.HEX:
            return format(n, "x")
        if self._style is IdStyle.DECIMAL:
            return str(n)
        return str(uuid.UUID(int=n))

    def _receipt(self, n: int, response: str) -> str:
        form = self.receipt_form
        if form is ReceiptIdForm.DECIMAL:
            return str(n)
        if form is ReceiptIdForm.HEX:
            return format(n, "x")
        if form is ReceiptIdForm.PADDED:
            return f"{n:0{PADDED_WIDTH}d}"
        if form is ReceiptIdForm.UPPER:
            return response.upper()
        return response
