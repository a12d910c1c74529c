"""Checking that a provider's webhook came from the provider (pure: no I/O, no clock).

Both schemes are an HMAC-SHA256 (RFC 2104) of the *raw* request body, checked
before the body is parsed, so a forged or altered request never changes state:

- **WhatsApp Cloud API**: ``X-Hub-Signature-256: sha256=<64 hex digits>``,
  keyed with the Meta app's secret.
- **A Viber business-messaging provider**: each provider names its own header,
  prefix and digest encoding; :class:`HmacScheme` carries them. The default is
  the one Viber's own platform uses for its callbacks
  (``X-Viber-Content-Signature``: lower-case hex, no prefix).

Comparison is constant-time (:func:`hmac.compare_digest`) over the decoded
digest, so the time a refusal takes says nothing about how much was right.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "MAX_PROVIDER_SIGNATURE_LENGTH",
    "VIBER_DEFAULT_SCHEME",
    "WHATSAPP_SCHEME",
    "HmacScheme",
    "ProviderSignatureError",
    "header_value",
]

#: A signature header longer than this is refused unread: a SHA-256 digest is
#: 64 hex or 44 base64 characters; a hostile sender could send megabytes.
MAX_PROVIDER_SIGNATURE_LENGTH: Final = 256
_DIGEST_SIZE: Final = hashlib.sha256().digest_size


class ProviderSignatureError(Exception):
    """The webhook is not the provider's: answer ``http_status``, change nothing."""

    def __init__(self, reason: str, http_status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class HmacScheme:
    """An HMAC-SHA256 body signature in one header: ``<prefix><digest>``."""

    header: str
    prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"

    def __post_init__(self) -> None:
        if not self.header or not self.header.isascii() or ":" in self.header:
            raise ValueError(f"not a header name: {self.header!r}")
        if self.encoding not in ("hex", "base64"):
            raise ValueError(f"encoding must be hex or base64, not {self.encoding!r}")

    def sign(self, secret: str, body: bytes) -> str:
        """The header value for ``body`` (what a provider, or a fake of one, sends)."""
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return self.prefix + text

    def verify(self, secret: str, value: str | None, body: bytes) -> None:
        """Return if ``value`` signs ``body`` under ``secret``; else raise
        :class:`ProviderSignatureError` (400: missing or malformed, 401: mismatch)."""
        if not value:
            raise ProviderSignatureError(f"no {self.header} header", 400)
        if len(value) > MAX_PROVIDER_SIGNATURE_LENGTH:
            raise ProviderSignatureError(f"{self.header} is too long", 400)
        if not value.startswith(self.prefix):
            raise ProviderSignatureError(f"{self.header} does not start with {self.prefix!r}", 400)
        given = self._decode(value[len(self.prefix):])
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise ProviderSignatureError("the signature does not match the body under this secret")

    def _decode(self, text: str) -> bytes:
        try:
            raw = (bytes.fromhex(text) if self.encoding == "hex"
                   else base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != _DIGEST_SIZE:
            raise ProviderSignatureError(
                f"{self.header} is not a SHA-256 digest in {self.encoding}", 400)
        return raw


#: Meta's webhooks (Cloud API): ``X-Hub-Signature-256: sha256=<hex>``, keyed with the app secret.
WHATSAPP_SCHEME: Final = HmacScheme("X-Hub-Signature-256", prefix="sha256=")
#: Viber's own callbacks sign with this header; a provider's differ (configured).
VIBER_DEFAULT_SCHEME: Final = HmacScheme("X-Viber-Content-Signature")


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in ``headers``, case-insensitively (HTTP field
    names are, RFC 9110 §5.1); None when absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
