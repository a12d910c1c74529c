"""The address of the client of an HTTP request, as the pumping defence sees it
(docs/fraud.md, "Live"): the peer's, or, when the peer is one of the reverse
proxies ``[http] trusted_proxies`` names, the one its ``X-Forwarded-For`` gives.

X-Forwarded-For is a list each proxy appends its peer to, so only its right end
is written by proxies herald trusts: it is read from the right, past the trusted
proxies, and the first address that is not one is the client. A header from a
peer that is not trusted is ignored (anyone can write one); an entry that is not
an address stops the walk at the last trusted hop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["MAX_FORWARDED_HOPS", "client_address"]

#: Entries of X-Forwarded-For read at most (a long header is someone's doing).
MAX_FORWARDED_HOPS: Final = 16
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _trusted(address: _Address, proxies: Sequence[_Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _parse(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(scope: Mapping[str, Any], proxies: Sequence[_Network]) -> str | None:
    """The client's address of an ASGI request ``scope`` (``None``: unknown)."""
    client = scope.get("client")
    peer = _parse(client[0]) if client else None
    if peer is None:
        return None
    if not proxies or not _trusted(peer, proxies):
        return str(peer)
    forwarded = [value.decode("latin-1") for key, value in scope.get("headers", ())
                 if key == b"x-forwarded-for"]
    hops = ",".join(forwarded).split(",")[-MAX_FORWARDED_HOPS:] if forwarded else []
    found = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        found = address
        if not _trusted(address, proxies):
            break
    return str(found)
