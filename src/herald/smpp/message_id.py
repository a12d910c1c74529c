"""Message-id normalisation, so a receipt can be matched to its submit_sm_resp.

The id an SMSC returns in submit_sm_resp and the id it quotes in the receipt
often differ in form (reference/smpp.md): hex in one and decimal in the other,
leading zeros dropped or added (zero-padded to 10 digits), upper vs lower case,
hyphens stripped. Which of these a connector does is a per-connector setting,
an :class:`IdPolicy`.

Usage: store the upstream id raw, and with it ``submit_id_keys(id, policy)``;
on a receipt, look up ``receipt_id_keys(id, policy)``. The two match when they
share a key (``ids_match``). Keys are plain strings; numeric readings are
decimal without leading zeros, so "0000000255", "255" and hex "ff" (read as
hex) all give "255".
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

__all__ = ["IdPolicy", "ids_match", "normalize_message_id", "receipt_id_keys", "submit_id_keys"]

# SMPP 3.4 §5.2.23: message_id is at most 65 octets. Longer input is not read
# as a number (int() on long digit strings is quadratic).
_MAX_ID: Final = 65
_HEX: Final = re.compile(r"[0-9a-f]+")
_DEC: Final = re.compile(r"[0-9]+")


class IdPolicy(StrEnum):
    """How a connector's receipt ids relate to its submit_sm_resp ids."""

    AS_IS = "as_is"  # identical strings
    CASE_INSENSITIVE = "case_insensitive"  # identical but for case
    NORMALIZED = "normalized"  # ignoring case, hyphens, spaces and leading zeros
    HEX_TO_DEC = "hex_to_dec"  # submit_sm_resp id is hex, the receipt's is decimal
    DEC_TO_HEX = "dec_to_hex"  # submit_sm_resp id is decimal, the receipt's is hex
    ANY = "any"  # any of the readings above: a last resort, may over-match


def normalize_message_id(message_id: str) -> str:
    """Lower-cased, without hyphens or surrounding spaces, without leading
    zeros ("0" stays "0")."""
    text = message_id.strip().lower().replace("-", "")
    stripped = text.lstrip("0")
    return stripped or ("0" if text else "")


def _number(text: str, pattern: re.Pattern[str], base: int) -> str | None:
    if len(text) > _MAX_ID or not pattern.fullmatch(text):
        return None
    return str(int(text, base))


def _keys(message_id: str, policy: IdPolicy, base: int) -> tuple[str, ...]:
    if policy is IdPolicy.AS_IS:
        return (message_id,)
    if policy is IdPolicy.CASE_INSENSITIVE:
        return (message_id.lower(),)
    norm = normalize_message_id(message_id)
    if policy is IdPolicy.NORMALIZED:
        return (norm,)
    if policy is IdPolicy.ANY:
        readings = [norm, _number(norm, _DEC, 10), _number(norm, _HEX, 16)]
        return tuple(dict.fromkeys(r for r in readings if r is not None))
    pattern = _HEX if base == 16 else _DEC
    return (_number(norm, pattern, base) or norm,)


def submit_id_keys(message_id: str, policy: IdPolicy) -> tuple[str, ...]:
    """The keys to store for a submit_sm_resp message_id."""
    return _keys(message_id, policy, 16 if policy is IdPolicy.HEX_TO_DEC else 10)


def receipt_id_keys(message_id: str, policy: IdPolicy) -> tuple[str, ...]:
    """The keys to look up for a receipt's message id."""
    return _keys(message_id, policy, 16 if policy is IdPolicy.DEC_TO_HEX else 10)


def ids_match(submit_id: str, receipt_id: str, policy: IdPolicy) -> bool:
    """Whether a receipt's id refers to a submit_sm_resp's id under ``policy``."""
    return not set(submit_id_keys(submit_id, policy)).isdisjoint(
        receipt_id_keys(receipt_id, policy)
    )
