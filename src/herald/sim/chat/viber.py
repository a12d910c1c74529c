"""A local fake of a Viber business-messaging provider (the shape ``ViberSettings`` describes).

``POST /messages`` (bearer token) takes ``{"sender", "to", "text", "ttl",
"reference"}`` and answers ``{"message_id"}``, or ``{"error": "not_viber_user"}``
for a number marked with :meth:`not_on_viber`. Callbacks are POSTed to
``callback_url`` signed with the scheme of the settings: :meth:`deliver`,
:meth:`expire` (the TTL ran out) and :meth:`seen` send one each; :meth:`inbound`
a user's message to a sender name.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from herald.channels import ViberSettings

__all__ = ["FakeViber"]


@dataclass(frozen=True, slots=True)
class ViberSend:
    message_id: str
    sender: str
    to: str
    text: str
    ttl: int


class FakeViber:
    def __init__(self, settings: ViberSettings, callback_url: str) -> None:
        self.settings = settings
        self.callback_url = callback_url
        self.app = Starlette(routes=[Route(settings.send_path, self._send, methods=["POST"])])
        self.sent: dict[str, ViberSend] = {}
        self._ids = itertools.count(1)
        self._rejects: dict[str, str] = {}
        #: Times each callback is sent (a provider that repeats itself).
        self.duplicates = 1

    def not_on_viber(self, to: str) -> None:
        self.reject(to, "not_viber_user")

    def reject(self, to: str, word: str) -> None:
        """Answer every send to ``to`` with the error ``word`` (``throttled``: HTTP 429)."""
        self._rejects[to] = word

    async def _send(self, request: Request) -> Response:
        s = self.settings
        if request.headers.get("authorization") != f"Bearer {s.token}":
            return _json({s.error_field: "unauthorized"}, 401)
        try:
            document: Any = orjson.loads(await request.body())
            sender, to, text, ttl = (document[k] for k in ("sender", "to", "text", "ttl"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _json({s.error_field: "invalid_request"}, 400)
        if not (isinstance(ttl, int) and 30 <= ttl <= 1_209_600) or not isinstance(text, str):
            return _json({s.error_field: "invalid_request"}, 400)
        if to in self._rejects:
            word = self._rejects[to]
            return _json({s.error_field: word}, 429 if word == "throttled" else 400)
        message_id = f"vb-{next(self._ids):010d}"
        self.sent[message_id] = ViberSend(message_id, str(sender), str(to), text, ttl)
        return _json({s.id_field: message_id}, 200)

    def callback_body(self, message_id: str, status: str, error: str | None = None) -> bytes:
        s = self.settings
        item: dict[str, Any] = {s.callback_id_field: message_id, s.callback_status_field: status,
                                s.callback_time_field: int(time.time())}
        if error is not None:
            item[s.callback_error_field] = error
        return orjson.dumps(item)

    async def callback(self, message_id: str, status: str, error: str | None = None) -> int:
        """POST one signed callback (:attr:`duplicates` times); return the
        receiver's HTTP status (the last)."""
        return await self._post(self.callback_body(message_id, status, error))

    async def _post(self, body: bytes) -> int:
        scheme = self.settings.scheme
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            for _ in range(max(1, self.duplicates)):
                reply = await http.post(self.callback_url, content=body, headers={
                    "Content-Type": "application/json",
                    scheme.header: scheme.sign(self.settings.secret, body)})
        return reply.status_code

    def inbound_body(self, user: str, text: str, sender: str) -> bytes:
        s = self.settings
        return orjson.dumps({s.callback_id_field: f"vb-in-{next(self._ids):010d}",
                             s.callback_status_field: s.inbound_word,
                             s.inbound_user_field: user, s.inbound_sender_field: sender,
                             s.inbound_text_field: text,
                             s.callback_time_field: int(time.time())})

    async def inbound(self, user: str, text: str, sender: str) -> int:
        """POST the signed callback that says ``user`` wrote ``text`` to ``sender``."""
        return await self._post(self.inbound_body(user, text, sender))

    async def expire(self, message_id: str) -> int:
        return await self.callback(message_id, "expired")

    async def deliver(self, message_id: str) -> int:
        return await self.callback(message_id, "delivered")

    async def seen(self, message_id: str) -> int:
        return await self.callback(message_id, "seen")


def _json(document: object, status: int) -> Response:
    return Response(orjson.dumps(document), status, media_type="application/json")
