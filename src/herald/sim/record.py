"""The submit record: one line per message the simulator received.

``herald sim --record FILE`` (``SimConfig.record``) appends a line for every
submit_sm, data_sm and submit_multi destination, whatever the answer, so a
test can count what reached the upstream and find duplicates (the crash-safety
test does). The file is UTF-8 text, one header line starting with ``#``, then
tab-separated fields:

====================  ==========================================================
time                  when it arrived, seconds since the epoch (6 decimals)
system_id             the bind's system_id
command               submit_sm, data_sm or submit_multi
destination           destination_addr
data_coding           decimal
esm_class             decimal
content               ``sha256:<32 hex>`` of the body (default) or ``hex:<body>``
                      (``--record-content hex``); the body is short_message, or
                      message_payload when short_message is empty
message_id            the id answered ("" when refused or swallowed)
status                the command_status answered, decimal; ``-`` if none (swallowed)
====================  ==========================================================

Text fields are percent-escaped where they hold ``%``, tabs, line breaks or
anything outside printable ASCII, so every record is one line.

Writes are buffered: the simulator flushes every ``FLUSH_INTERVAL`` seconds and
on stop, so a reader that runs while the simulator is up sees records at most
that old, and a killed simulator loses at most that much. :func:`read_records`
reads a file back (``strict=False`` skips a torn last line).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Final, NamedTuple
from urllib.parse import quote, unquote

from herald.sim.errors import RecordFormatError

__all__ = [
    "FLUSH_INTERVAL",
    "HEADER",
    "RecordContent",
    "RecordWriter",
    "SubmitRecord",
    "content_of",
    "format_record",
    "parse_record",
    "read_records",
]

#: Seconds between flushes of the record file.
FLUSH_INTERVAL: Final = 0.5
#: The write buffer; also flushed whenever it fills.
BUFFER_SIZE: Final = 1 << 16
FIELDS: Final = ("time", "system_id", "command", "destination", "data_coding", "esm_class",
                 "content", "message_id", "status")
HEADER: Final = "# herald sim record v1\t" + "\t".join(FIELDS) + "\n"
#: sha256 hex digits kept: 128 bits, collision-free for any test's volume.
HASH_HEX: Final = 32
_NO_STATUS: Final = "-"
# Kept as is by the escaping: printable ASCII but for "%" (the escape itself).
_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%")


class RecordContent(StrEnum):
    """How a record shows the message body."""

    HASH = "hash"  # sha256:<32 hex>: enough to find duplicates, keeps no text
    HEX = "hex"  # hex:<the body>


class SubmitRecord(NamedTuple):
    """One received submit (one destination of a submit_multi)."""

    time: float
    system_id: str
    command: str
    destination: str
    data_coding: int
    esm_class: int
    content: str
    message_id: str
    status: int | None  # None: not answered (swallowed)


def content_of(body: bytes, mode: RecordContent) -> str:
    """The ``content`` field for a body."""
    if mode is RecordContent.HEX:
        return "hex:" + body.hex()
    return "sha256:" + hashlib.sha256(body).hexdigest()[:HASH_HEX]


def _escape(text: str) -> str:
    if text.isascii() and text.isprintable() and "%" not in text and " " not in text:
        return text  # the common case: a number, an id, a system_id
    return quote(text, safe=_SAFE)


def format_record(record: SubmitRecord) -> str:
    """The record as one line (with its newline)."""
    status = _NO_STATUS if record.status is None else str(record.status)
    return (f"{record.time:.6f}\t{_escape(record.system_id)}\t{record.command}\t"
            f"{_escape(record.destination)}\t{record.data_coding}\t{record.esm_class}\t"
            f"{record.content}\t{_escape(record.message_id)}\t{status}\n")


def parse_record(line: str, number: int = 0) -> SubmitRecord:
    """Read one line (without or with its newline). Raises RecordFormatError."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != len(FIELDS):
        raise RecordFormatError(number, f"{len(parts)} fields, expected {len(FIELDS)}")
    at, system_id, command, destination, coding, esm, content, message_id, status = parts
    try:
        return SubmitRecord(
            time=float(at),
            system_id=unquote(system_id),
            command=command,
            destination=unquote(destination),
            data_coding=int(coding),
            esm_class=int(esm),
            content=content,
            message_id=unquote(message_id),
            status=None if status == _NO_STATUS else int(status),
        )
    except ValueError as exc:
        raise RecordFormatError(number, str(exc)) from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", newline="\n") as f:
        yield from enumerate(f, start=1)


def read_records(path: Path, *, strict: bool = True) -> list[SubmitRecord]:
    """Every record in a file, in order. Header lines are skipped. With
    ``strict=False`` a last line without its newline (the writer was killed
    mid-line) is skipped instead of raising RecordFormatError."""
    records: list[SubmitRecord] = []
    for number, line in _lines(path):
        if line.startswith("#"):
            continue
        if not line.endswith("\n") and not strict:
            break  # a torn last line
        records.append(parse_record(line, number))
    return records


class RecordWriter:
    """Appends records to a file through a buffer. ``flush()`` pushes the
    buffer to the OS; ``close()`` flushes and closes. OSError from the file
    propagates (the simulator logs it and stops recording)."""

    def __init__(self, path: Path, content: RecordContent = RecordContent.HASH) -> None:
        self.path = path
        self.content = content
        self.written = 0
        self._file: io.TextIOWrapper | None = path.open(
            "a", encoding="utf-8", newline="\n", buffering=BUFFER_SIZE)
        if self._file.tell() == 0:
            self._file.write(HEADER)

    def write(self, record: SubmitRecord) -> None:
        if self._file is not None:
            self._file.write(format_record(record))
            self.written += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            finally:
                self._file.close()
                self._file = None
