"""Console sessions: a signed cookie naming an admin key, and its CSRF token (pure).

An operator signs in with an admin key (``herald admin keys create``); the
console then holds a cookie ``<key id>.<expiry>.<nonce>.<mac>``: the MAC
(HMAC-SHA256 under the console key, derived from ``<data-dir>/master.key``)
makes it unforgeable, and it carries no secret (the key id is not one). The
key's record is read again on every request (:meth:`herald.admin.AdminKeys.principal`),
so revoking the key ends its sessions at once; the key's scope gives the role
(read-only or admin).

Every change is a POST that must carry the session's CSRF token (a hidden
form field, or the ``X-CSRF-Token`` header htmx sends): HMAC of the session's
nonce, which another site cannot read. The cookie is also ``SameSite=Strict``
and ``HttpOnly`` (``Secure`` over TLS), so it is neither sent by another
site's form nor readable by script.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = ["COOKIE", "SESSION_TTL", "Session", "SessionCodec", "console_key"]

COOKIE: Final = "herald_console"
#: Seconds a console session lasts (a working day); then sign in again.
SESSION_TTL: Final = 8 * 3600
#: Signed-out sessions remembered until they expire (more: the oldest are forgotten,
#: and such a cookie stays valid until its expiry; the browser has dropped it).
MAX_ENDED: Final = 10_000
_COOKIE_RE: Final = re.compile(r"([a-z0-9]{12})\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([0-9a-f]{64})")


def console_key(master_key: bytes) -> bytes:
    """The console's signing key, derived from the data directory's master key."""
    return hmac.new(master_key, b"herald console sessions v1", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in console session: the admin key it was opened with, until when."""

    key_id: str
    expires: int
    nonce: str
    csrf: str


class SessionCodec:
    """Makes and checks session cookies and CSRF tokens under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the console key must have at least 32 octets")
        self._key = key
        self._ended: dict[str, int] = {}  # nonce -> expiry, of signed-out sessions

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _session(self, key_id: str, expires: int, nonce: str) -> Session:
        return Session(key_id, expires, nonce, self._mac("csrf:" + nonce))

    def open(self, key_id: str, now: float) -> tuple[Session, str]:
        """A new session for ``key_id`` and its cookie value."""
        nonce = secrets.token_urlsafe(16)  # 22 characters
        expires = int(now) + SESSION_TTL
        body = f"{key_id}.{expires}.{nonce}"
        return self._session(key_id, expires, nonce), f"{body}.{self._mac(body)}"

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session of a cookie; ``None`` if absent, malformed, forged, expired
        or signed out."""
        match = _COOKIE_RE.fullmatch(cookie or "")
        if match is None:
            return None
        key_id, expires, nonce, mac = match[1], int(match[2]), match[3], match[4]
        if not hmac.compare_digest(mac, self._mac(f"{key_id}.{expires}.{nonce}")):
            return None
        if expires <= now or nonce in self._ended:
            return None
        return self._session(key_id, expires, nonce)

    def close(self, session: Session, now: float) -> None:
        """Sign ``session`` out: its cookie is refused from now on (in this process)."""
        if len(self._ended) >= MAX_ENDED:
            self._ended = {n: e for n, e in self._ended.items() if e > now}
            while len(self._ended) >= MAX_ENDED:
                self._ended.pop(next(iter(self._ended)))
        self._ended[session.nonce] = session.expires

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(session.csrf, presented)
