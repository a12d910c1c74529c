"""Compile a PDU class's field specs into one decoder and one encoder (private).

Theory of operation: the PDU classes in ``pdus`` declare their mandatory fields
as ``Annotated[type, spec]`` in wire order. For each class this module asks
every spec for its lines of code and strings them into two straight-line
functions, the way ``dataclasses`` writes ``__init__``:

* ``decode(buf, seq, status) -> pdu`` reads the body of one whole PDU
  (``buf[16:]``), then its TLVs, and builds the instance without running
  ``__init__``. A bad field raises ``Malformed`` with that field's status.
* ``encode(o) -> bytes`` returns the body. It does cheap checks inline and
  calls a spec's ``check`` (slow, precise; raises ``InvalidField``) when one
  fails; a value of the wrong type or range surfaces as ValueError/TypeError,
  which ``explain`` turns into the ``InvalidField`` naming the field.

``source_of(cls)`` returns the generated code, to read or to debug it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from herald.smpp._fields import U8, Field
from herald.smpp._wire import Malformed, builder, construction
from herald.smpp.constants import CommandStatus
from herald.smpp.errors import InvalidField
from herald.smpp.tlv import pull_tlvs, push_tlvs

__all__ = ["HEADER_FIELDS", "Compiled", "compile_pdu", "field_specs", "source_of"]

#: fields every PDU has, set from the header (and the trailing TLV stream)
HEADER_FIELDS = ("sequence_number", "command_status", "tlvs")

_BYTE = tuple(bytes((i,)) for i in range(256))
_SOURCES: dict[type, str] = {}


@dataclasses.dataclass(frozen=True)
class Compiled:
    decode: Callable[[bytes, int, int], Any]
    #: the body's octets; raises ValueError/TypeError/... on a bad value, which
    #: ``explain`` turns into the InvalidField naming the field
    encode: Callable[[Any], bytes]
    explain: Callable[[Any, Exception], InvalidField]
    build: Callable[..., Any]
    #: rebuild(o, sequence_number, command_status): a copy with a new header
    rebuild: Callable[[Any, int, int], Any]


def field_specs(cls: type) -> list[tuple[str, Field]]:
    """The (name, spec) of ``cls``'s mandatory body fields, in wire order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in HEADER_FIELDS:
            continue
        meta = [m for m in getattr(hints[f.name], "__metadata__", ()) if isinstance(m, Field)]
        if len(meta) != 1:
            raise TypeError(f"{cls.__name__}.{f.name} needs exactly one field spec")
        specs.append((f.name, meta[0]))
    return specs


def _decoder_lines(specs: list[tuple[str, Field]]) -> list[str]:
    lines: list[str] = []
    run: list[str] = []  # consecutive 1-octet integers: one bounds check for all

    def flush() -> None:
        if not run:
            return
        lines.append(f"if pos + {len(run)} > end:")
        lines.append(f"    raise Malformed(RINVCMDLEN, {run[0]!r}, 'the PDU ends inside it')")
        for k, name in enumerate(run):
            lines.append(f"{name} = buf[pos + {k}]" if k else f"{name} = buf[pos]")
        lines.append(f"pos += {len(run)}")
        run.clear()

    for name, spec in specs:
        if isinstance(spec, U8):
            run.append(name)
            continue
        flush()
        lines.extend(spec.decode_lines(name, f"spec_{name}"))
    flush()
    return lines


def _encoder_lines(specs: list[tuple[str, Field]]) -> tuple[list[str], list[str]]:
    statements: list[str] = []
    parts: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            parts.append(f"bytes(({', '.join(f'o.{n}' for n in run)},))")
            run.clear()

    for name, spec in specs:
        if isinstance(spec, U8):
            run.append(name)
            continue
        flush()
        more, expr = spec.encode_lines(name, f"spec_{name}")
        statements.extend(more)
        parts.extend(expr)
    flush()
    return statements, parts


def compile_pdu(cls: type) -> Compiled:
    """Generate ``cls``'s decoder, encoder and fast constructor."""
    specs = field_specs(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    build: Callable[..., Any] = builder(cls, names)
    namespace: dict[str, Any] = {
        "Malformed": Malformed,
        "RINVCMDLEN": CommandStatus.ESME_RINVCMDLEN,
        "pull_tlvs": pull_tlvs,
        "push_tlvs": push_tlvs,
        "build": build,
        "NUL": b"\0",
        "BYTE": _BYTE,
    }
    for name, spec in specs:
        namespace[f"spec_{name}"] = spec

    body = _decoder_lines(specs)
    dec = ["def decode(buf, seq, status):", "    end = len(buf)", "    pos = 16"]
    dec += [f"    {line}" for line in body]
    dec.append("    tlvs = pull_tlvs(buf, pos, end) if pos < end else ()")
    # Build the instance inline (no call to `build`): this is the hot path.
    values = ["seq" if n == "sequence_number" else "status" if n == "command_status" else n
              for n in names]
    dec += [f"    {line}" for line in construction(cls, names, values, namespace)]
    dec.append("    return o")

    copy = ", ".join("seq" if n == "sequence_number" else "status" if n == "command_status"
                     else f"o.{n}" for n in names)
    reb = ["def rebuild(o, seq, status):", f"    return build({copy})"]

    statements, parts = _encoder_lines(specs)
    enc = ["def encode(o):"]
    enc += [f"    {line}" for line in statements]
    parts.append("push_tlvs(o.tlvs) if o.tlvs else b''")
    enc.append(f"    return b''.join(({', '.join(parts)},))")

    source = "\n\n\n".join("\n".join(f) for f in (dec, enc, reb)) + "\n"
    # The source is built from field names and specs only, never from input.
    exec(compile(source, f"<smpp codec for {cls.__name__}>", "exec"), namespace)
    _SOURCES[cls] = source
    def explain(o: Any, exc: Exception) -> InvalidField:
        """The encoder met a bad value: find and name it."""
        try:
            for name, spec in specs:
                spec.check(name, getattr(o, name))
        except InvalidField as found:
            return found
        return InvalidField(cls.__name__, str(exc), CommandStatus.ESME_RSYSERR)

    return Compiled(namespace["decode"], namespace["encode"], explain, build,
                    namespace["rebuild"])


def source_of(cls: type) -> str:
    """The generated decoder and encoder of a PDU class, as Python source."""
    return _SOURCES[cls]
