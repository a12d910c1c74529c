"""What kind of network a client address is on (issue 11: "client IP block and ASN
type"), from tables the operator configures (``[fraud]`` in herald.toml): no
lookup ever leaves the process.

The engine keys a client's address-block cell by this type (``hosting|203.0.113``):
a block of a hosting provider and a residential block that share a /24 on paper
are not one cell. A type comes, in order, from the client's own hint
(``ip_type``), the narrowest configured range holding the address, the type
configured for the client's ``asn`` hint; else none (``?``: fail open, the
cell is kept all the same).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["ADDRESS_TYPES", "MAX_RANGES", "AddressTypes", "parse_asn"]

#: The address types of issue 11's replay input (``ip_type``).
ADDRESS_TYPES: Final = ("mobile", "residential", "vpn", "hosting")
#: Ranges and ASNs a table may hold: a published hosting-provider list is a few
#: tens of thousands of ranges; more is a mistake in the file.
MAX_RANGES: Final = 1_000_000
_MAX_ASN: Final = 4_294_967_295  # RFC 6793: ASNs are 32-bit


def parse_asn(text: str) -> str:
    """``"AS64500"`` (any case) or ``"64500"`` as ``"AS64500"``; ValueError otherwise."""
    digits = text[2:] if text[:2].upper() == "AS" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10 \
            or int(digits) > _MAX_ASN:
        raise ValueError(f"an AS number (AS64500 or 64500), not {text!r}")
    return f"AS{int(digits)}"


class AddressTypes:
    """Address ranges and AS numbers by type; :meth:`type_of` answers for a client.

    ``ranges``: type -> networks (``"203.0.113.0/24"``, ``"2001:db8::/32"``);
    ``asns``: type -> AS numbers. Raises ValueError naming the bad entry (an unknown
    type, a range that is not one, a range or ASN listed under two types).
    """

    def __init__(self, ranges: Mapping[str, Iterable[str]] | None = None,
                 asns: Mapping[str, Iterable[str]] | None = None) -> None:
        #: (version, prefix length) -> {network address as int: type}; longest first.
        self._ranges: dict[tuple[int, int], dict[int, str]] = {}
        self._asns: dict[str, str] = {}
        count = 0
        for kind, networks in (ranges or {}).items():
            _check_type(kind)
            for entry in networks:
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                except (TypeError, ValueError):
                    raise ValueError(f"{kind}: an address or network (203.0.113.0/24),"
                                     f" not {entry!r}") from None
                table = self._ranges.setdefault((net.version, net.prefixlen), {})
                if table.setdefault(int(net.network_address), kind) != kind:
                    raise ValueError(f"{kind}: {net} is listed as"
                                     f" {table[int(net.network_address)]} too")
                count += 1
        for kind, numbers in (asns or {}).items():
            _check_type(kind)
            for entry in numbers:
                asn = parse_asn(str(entry))
                if self._asns.get(asn, kind) != kind:
                    raise ValueError(f"{kind}: {asn} is listed as {self._asns[asn]} too")
                self._asns[asn] = kind
                count += 1
        if count > MAX_RANGES:
            raise ValueError(f"at most {MAX_RANGES:,} ranges and AS numbers")
        self._lengths = sorted(self._ranges, key=lambda k: -k[1])

    def __bool__(self) -> bool:
        return bool(self._ranges or self._asns)

    def __len__(self) -> int:
        return sum(map(len, self._ranges.values())) + len(self._asns)

    def __eq__(self, other: object) -> bool:  # a value in HeraldConfig
        if not isinstance(other, AddressTypes):
            return NotImplemented
        return (self._ranges, self._asns) == (other._ranges, other._asns)

    def __hash__(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        return f"AddressTypes({len(self)} ranges and AS numbers)"

    def type_of(self, ip: str | None, asn: str | None = None) -> str | None:
        """The type of the narrowest range holding ``ip``, else of ``asn``; None: unknown
        (also for an address that does not parse: fail open)."""
        if ip and self._ranges:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
            if address is not None:
                value, bits = int(address), address.max_prefixlen
                for version, length in self._lengths:
                    if version == address.version:
                        kind = self._ranges[version, length].get(
                            value >> (bits - length) << (bits - length))
                        if kind is not None:
                            return kind
        if asn and self._asns:
            try:
                return self._asns.get(parse_asn(asn))
            except ValueError:
                return None
        return None


def _check_type(kind: str) -> None:
    if kind not in ADDRESS_TYPES:
        raise ValueError(f"{kind!r}: a type is one of {', '.join(ADDRESS_TYPES)}")
