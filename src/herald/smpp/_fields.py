"""Mandatory-field specifications: the SMPP 3.4 field types as data (private).

A PDU class declares each mandatory field with its spec, the way the spec's
tables read (SMPP 3.4 §4)::

    source_addr: Annotated[str, CString(21, ESME_RINVSRCADR)] = ""

``CString(21)`` is "C-Octet String, Var. max 21": the maximum counts the
terminating NUL, as the specification does. ``status`` is the command_status a
peer gets when it sends a bad value for that field (or our encoder raises with,
in ``InvalidField``).

Each spec knows three things: the Python code that reads it (``decode_lines``),
the code that writes it (``encode_lines``) and a slow, precise check of a value
(``check``). ``_codegen`` strings the code of a PDU's fields into one
straight-line decoder and one encoder per class, so the hot path runs no
per-field generic machinery; ``check`` explains a failed encode, and the tests
read the same specs to generate valid values.

Generated decoders read ``buf`` (exactly one whole PDU, as bytes) from ``pos``
up to ``end == len(buf)`` and raise ``Malformed`` with the field's status.
"""

from __future__ import annotations

from typing import Any

from herald.smpp.constants import CommandStatus
from herald.smpp.errors import InvalidField
from herald.smpp.limits import MAX_SHORT_MESSAGE

__all__ = ["U8", "CString", "Field", "ShortMessage", "Time"]

_RINVCMDLEN = CommandStatus.ESME_RINVCMDLEN


class Field:
    """Base of the mandatory-field specs."""

    status: CommandStatus = _RINVCMDLEN
    default: Any = None
    #: fixed size in octets, or 0 when the field is variable (C-strings, lists)
    size = 0

    def decode_lines(self, name: str, ref: str) -> list[str]:
        """Code binding local ``name`` from ``buf[pos:end]`` and advancing
        ``pos``. ``ref`` is this spec's name in the generated namespace."""
        raise NotImplementedError

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        """(statements, parts): statements validate ``o.<name>`` into locals;
        parts are expressions yielding the field's bytes, in order."""
        raise NotImplementedError

    def check(self, name: str, value: Any) -> None:
        """Raise InvalidField when ``value`` cannot be encoded."""
        raise NotImplementedError


class U8(Field):
    """Integer, 1 octet (SMPP 3.4 §3.1). Any value 0-255 decodes: meaning is the
    application's business (a TON this table does not name is still a TON)."""

    size = 1
    default = 0

    def __init__(self, status: CommandStatus = _RINVCMDLEN) -> None:
        self.status = status

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise InvalidField(name, f"{value!r} is not an integer 0..255", self.status)


class CString(Field):
    """C-Octet String of at most ``max`` octets including the NUL (SMPP 3.4
    §3.1). Text is carried as Latin-1 so any octet survives a round trip.

    ``lenient_max`` raises the limit beyond the specification's where real
    deployments need it (passwords: reference/smpp.md).
    """

    default = ""

    def __init__(self, max: int, status: CommandStatus, *, lenient_max: int | None = None):
        self.spec_max = max
        self.max = max if lenient_max is None else lenient_max
        self.status = status

    def decode_lines(self, name: str, ref: str) -> list[str]:
        # One find() for the terminator (buf is exactly one PDU, so it cannot
        # run into the next); `0 <= i - pos < max` also rejects a missing
        # terminator (find returns -1, and pos >= 16). Empty strings, common
        # (service_type, times), skip the slice and decode.
        return [
            "i = buf.find(0, pos)",
            f"if not 0 <= i - pos < {self.max}:",
            f"    raise Malformed({ref}.status_for(i), {name!r}, {ref}.why(i, pos))",
            f"{name} = buf[pos:i].decode('latin-1') if i != pos else ''",
            "pos = i + 1",
        ]

    def status_for(self, i: int) -> CommandStatus:
        # No terminator at all: the PDU is shorter than its mandatory fields.
        return _RINVCMDLEN if i < 0 else self.status

    def why(self, i: int, pos: int) -> str:
        if i < 0:
            return "no NUL terminator before the end of the PDU"
        return f"{i - pos + 1} octets, the maximum is {self.max}"

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        return (
            [
                f"v_{name} = o.{name}.encode('latin-1')",
                f"if len(v_{name}) >= {self.max} or 0 in v_{name}:",
                f"    {ref}.check({name!r}, o.{name})",
            ],
            [f"v_{name}", "NUL"],
        )

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise InvalidField(name, f"{value!r} is not a str", self.status)
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidField(name, "not Latin-1 text", self.status) from None
        if b"\0" in raw:
            raise InvalidField(name, "NUL inside a C-Octet String", self.status)
        if len(raw) >= self.max:
            raise InvalidField(
                name, f"{len(raw) + 1} octets with its NUL, the maximum is {self.max}", self.status
            )


class Time(CString):
    """An absolute or relative time (SMPP 3.4 §7.1.1): a C-Octet String that is
    either empty or exactly 16 characters ``YYMMDDhhmmsstnnp``."""

    def __init__(self, status: CommandStatus) -> None:
        super().__init__(17, status)

    def decode_lines(self, name: str, ref: str) -> list[str]:
        return [
            "i = buf.find(0, pos)",
            "if i - pos not in (0, 16):",
            f"    raise Malformed({ref}.status_for(i), {name!r}, {ref}.why(i, pos))",
            f"{name} = buf[pos:i].decode('latin-1') if i != pos else ''",
            "pos = i + 1",
        ]

    def why(self, i: int, pos: int) -> str:
        if i < 0:
            return "no NUL terminator before the end of the PDU"
        return f"{i - pos} characters, a time has 0 or 16"

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        return (
            [
                f"v_{name} = o.{name}.encode('latin-1')",
                f"if len(v_{name}) not in (0, 16) or 0 in v_{name}:",
                f"    {ref}.check({name!r}, o.{name})",
            ],
            [f"v_{name}", "NUL"],
        )

    def check(self, name: str, value: Any) -> None:
        super().check(name, value)
        if len(value) not in (0, 16):
            raise InvalidField(name, f"{len(value)} characters, a time has 0 or 16", self.status)


class ShortMessage(Field):
    """sm_length (Integer, 1) then short_message (Octet String, 0-254 octets;
    SMPP 3.4 §5.2.21-22). sm_length is the peer's claim: it is checked against
    both the limit and what the PDU actually holds."""

    default = b""
    status = CommandStatus.ESME_RINVMSGLEN

    def decode_lines(self, name: str, ref: str) -> list[str]:
        return [
            "if pos >= end:",
            "    raise Malformed(RINVCMDLEN, 'sm_length', 'the PDU ends before it')",
            "n = buf[pos]",
            "pos += 1",
            f"if n > {MAX_SHORT_MESSAGE} or pos + n > end:",
            f"    raise Malformed({ref}.status, 'sm_length', {ref}.why(n, end - pos))",
            f"{name} = buf[pos:pos + n]",
            "pos += n",
        ]

    def why(self, n: int, left: int) -> str:
        if n > MAX_SHORT_MESSAGE:
            return f"{n}, the maximum is {MAX_SHORT_MESSAGE}"
        return f"{n} but only {left} octets remain in the PDU"

    def encode_lines(self, name: str, ref: str) -> tuple[list[str], list[str]]:
        return (
            [
                f"v_{name} = o.{name}",
                f"if len(v_{name}) > {MAX_SHORT_MESSAGE}:",
                f"    {ref}.check({name!r}, o.{name})",
            ],
            [f"BYTE[len(v_{name})]", f"v_{name}"],
        )

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, bytes | bytearray):
            raise InvalidField(name, f"{type(value).__name__} is not bytes", self.status)
        if len(value) > MAX_SHORT_MESSAGE:
            raise InvalidField(
                name,
                f"{len(value)} octets, the maximum is {MAX_SHORT_MESSAGE} "
                "(longer content goes in the message_payload TLV)",
                self.status,
            )
