"""Annotated byte vectors for tests.

``wire('''...''')`` reads hex octets and double-quoted ASCII strings, in order;
``#`` starts a comment (outside quotes) that names the field::

    00000011 80000001 00000000 00000002   # header
    "abc" 00                              # system_id
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r'"([^"]*)"|([0-9A-Fa-f]+)|(#.*$)|(\S)', re.MULTILINE)


def wire(text: str) -> bytes:
    out = bytearray()
    for quoted, hexa, _comment, junk in _TOKEN.findall(text):
        if junk:
            raise ValueError(f"not hex, text or comment: {junk!r}")
        if quoted:
            out += quoted.encode("latin-1")
        elif hexa:
            out += bytes.fromhex(hexa)
    return bytes(out)
