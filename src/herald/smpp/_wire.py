"""Small wire-level helpers shared by the codec modules (private)."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from herald.smpp.constants import CommandStatus

__all__ = ["HEADER", "TL", "Malformed", "builder"]

T = TypeVar("T")

# SMPP 3.4 §3.2: the header is four big-endian unsigned 32-bit integers.
HEADER = struct.Struct(">IIII")
# SMPP 3.4 §5.3.1: a TLV starts with a 16-bit tag and a 16-bit length.
TL = struct.Struct(">HH")


class Malformed(Exception):
    """Raised inside decoders: the body is bad; ``status`` answers it.

    Internal only: the codec turns it into an ``UnparsedPdu`` outcome (or a
    ``PduDecodeError`` for one-shot decoding). It is cheap to raise because
    the message is assembled only when someone reads it.
    """

    def __init__(self, status: CommandStatus, field: str, detail: str) -> None:
        super().__init__(status, field, detail)
        self.status = status
        self.field = field
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def builder(cls: type[T], names: Sequence[str]) -> Callable[..., T]:
    """A positional constructor for the frozen, slotted ``cls`` that skips
    ``__init__``: decoders call it with values they have already checked, and a
    frozen dataclass's ``__init__`` costs one ``object.__setattr__`` per field
    (about half the time of decoding a small PDU)."""
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def build({', '.join(names)}):", "    o = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(o, {name})")
    lines.append("    return o")
    exec("\n".join(lines), namespace)  # from field names only, never from input
    build: Callable[..., T] = namespace["build"]
    return build
