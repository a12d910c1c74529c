"""A local fake of the WhatsApp Cloud API, for tests and the demo (loopback only).

What it does, as the Cloud API does (docs/channels.md, "The fakes"):

- ``POST /{version}/{phone-number-id}/messages`` with ``Authorization: Bearer
  <token>``: every body is checked against the send schema (``_schema``, from
  Meta's OpenAPI description); a body that does not fit is answered 400 with
  Graph API error 100 and the place it broke. A valid one gets a ``wamid.`` id.
- Template management, each request checked against the description as sends
  are (``_template_schema``; 400, error 100 when it does not fit):
  ``POST``/``GET``/``DELETE /{version}/{waba-id}/message_templates`` (create,
  list, delete by name) and ``POST /{version}/{template-id}`` (edit: the
  template is reviewed again, ``PENDING``).
- Free-form text to a recipient whose 24-hour window is not open: error 131047.
- More than ``rate`` sends a second from one phone number id: error 130429.
- For each accepted message it draws the truth (read, delivered or failed,
  seeded) and queues the status webhooks that tell it (``sent``, ``delivered``,
  ``read``; or ``sent``, ``failed`` with error 131026), with the pricing a
  template carries. :meth:`flush` POSTs them to ``webhook_url``, signed with
  ``X-Hub-Signature-256`` under the app secret, in bodies of ``batch`` statuses.

Misbehaviour on command: :attr:`chaos` (each status sent ``duplicates`` times,
the order reversed, ``delivered`` dropped where ``read`` follows), :meth:`reject`
(answer sends to a number with a chosen error code), :meth:`throttle` (answer
the next *n* sends with 130429 whatever the rate), :attr:`read_delay` (``read``
statuses held back: late reads). ``herald sim --whatsapp`` sets each from the
command line (``cli``).
"""

from __future__ import annotations

import itertools
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from herald.channels import WHATSAPP_SCHEME, WHATSAPP_THROTTLED, WHATSAPP_WINDOW_CLOSED
from herald.sim.bucket import TokenBucket
from herald.sim.chat._schema import SchemaViolation, check_send_request, validate
from herald.sim.chat._template_schema import (
    DELETE_QUERY,
    EDIT_SCHEMA,
    LIST_QUERY,
    TEMPLATE_SCHEMA,
    check_query,
)

__all__ = ["TRUTHS", "Chaos", "FakeWhatsApp", "FakeWhatsAppConfig"]

#: The statuses each truth is told by, in the order they happen.
TRUTHS: Final[Mapping[str, tuple[str, ...]]] = {
    "read": ("sent", "delivered", "read"),
    "delivered": ("sent", "delivered"),
    "failed": ("sent", "failed"),
}
#: Cloud API: "Message undeliverable" (the failure the fake's ``failed`` truth reports).
UNDELIVERABLE: Final = 131026
#: Sends (and answers) remembered for inspection: the CLI runs for long.
MAX_RECORDED: Final = 100_000
#: Statuses queued for the next flush; beyond this they are dropped (counted in
#: ``statuses_dropped``), as when no webhook address is set and nothing is flushed.
MAX_PENDING: Final = 300_000
_TITLES: Final = {100: "Invalid parameter", 190: "Access token has expired",
                  WHATSAPP_WINDOW_CLOSED: "Re-engagement message",
                  WHATSAPP_THROTTLED: "Rate limit hit", UNDELIVERABLE: "Message undeliverable",
                  132001: "Template name does not exist in the translation"}


@dataclass(frozen=True, slots=True)
class Chaos:
    duplicates: int = 1  # each status is sent this many times
    reverse: bool = False  # a flush sends its statuses newest first
    drop_delivered: bool = False  # ``delivered`` is not sent where ``read`` follows


@dataclass(frozen=True, slots=True)
class FakeWhatsAppConfig:
    token: str = field(repr=False)
    app_secret: str = field(repr=False)
    webhook_url: str | None = None
    rate: float = 80.0  # sends a second per phone number id (the Cloud API's default)
    burst: float = 8.0
    outcomes: Mapping[str, float] = field(
        default_factory=lambda: {"read": 0.6, "delivered": 0.3, "failed": 0.1})
    batch: int = 50  # statuses per webhook body
    seed: int | None = None

    def __post_init__(self) -> None:
        if set(self.outcomes) - set(TRUTHS) or not self.outcomes:
            raise ValueError(f"outcomes are some of {sorted(TRUTHS)}")
        if self.batch < 1:
            raise ValueError("batch must be at least 1")


@dataclass(frozen=True, slots=True)
class SentRecord:
    wamid: str
    phone_number_id: str
    to: str
    kind: str
    body: Mapping[str, Any]
    truth: str


class FakeWhatsApp:
    """The fake (module docstring). ``app`` is its ASGI app; serve it with
    ``herald.sim.chat.serve_app``."""

    def __init__(self, config: FakeWhatsAppConfig) -> None:
        self.config = config
        #: Where :meth:`flush` POSTs (a test sets it once its receiver listens).
        self.webhook_url = config.webhook_url
        self.statuses_dropped = 0
        self.chaos = Chaos()
        self.app = Starlette(routes=[
            Route("/{version}/{phone_number_id}/messages", self._send, methods=["POST"]),
            Route("/{version}/{waba_id}/message_templates", self._create_template,
                  methods=["POST"]),
            Route("/{version}/{waba_id}/message_templates", self._list_templates,
                  methods=["GET"]),
            Route("/{version}/{waba_id}/message_templates", self._delete_templates,
                  methods=["DELETE"]),
            Route("/{version}/{template_id}", self._edit_template, methods=["POST"])])
        #: Templates submitted for review, by (name, language): the Graph API's fields.
        self.templates: dict[tuple[str, str], dict[str, Any]] = {}
        #: Approve templates at once (the demo's choice); else they stay PENDING until
        #: :meth:`review`.
        self.auto_approve = False
        #: Refuse sends of templates that are not approved here (error 132001);
        #: off by default: tests send templates they never submitted.
        self.check_templates = False
        self.edits = 0  # templates edited (each is reviewed again)
        self.sent: dict[str, SentRecord] = {}
        self.answers: list[tuple[int, bytes]] = []  # (status, body) of every send, in order
        self.schema_failures: list[str] = []
        self.throttled = 0
        #: Every recipient's 24-hour window is open (the demo's choice): free-form text passes.
        self.all_windows_open = False
        self._rng = random.Random(config.seed)
        self._ids = itertools.count(1)
        self._windows: set[str] = set()
        self._rejects: dict[str, int] = {}
        self._forced_throttles = 0
        self._buckets: dict[str, TokenBucket] = {}
        self._pending: list[dict[str, Any]] = []
        #: Seconds a ``read`` status is held back after the others of its message
        #: (a late read: after a chain's "read within" ran out); 0: sent with them.
        self.read_delay = 0.0
        self._late: list[tuple[float, dict[str, Any]]] = []  # (due, status), in due order

    # -- commands --------------------------------------------------------------------

    def open_window(self, to: str) -> None:
        """``to`` wrote to the business: free-form text to it is allowed (24-hour window)."""
        self._windows.add(to)

    def reject(self, to: str, code: int) -> None:
        """Answer every send to ``to`` with Graph API error ``code``."""
        self._rejects[to] = code

    def throttle(self, count: int) -> None:
        """Answer the next ``count`` sends with 130429, whatever the rate."""
        self._forced_throttles = count

    def truth(self, wamid: str) -> str:
        return self.sent[wamid].truth

    def review(self, name: str, language: str, status: str, reason: str | None = None) -> None:
        """Meta's review of a submitted template: ``APPROVED``, ``REJECTED``, ``PAUSED``..."""
        template = self.templates[(name, language)]
        template["status"] = status
        template["rejected_reason"] = reason or "NONE"

    def template_update_body(self, name: str, language: str) -> bytes:
        t = self.templates[(name, language)]
        return orjson.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": "0", "time": int(time.time()), "changes": [
                {"field": "message_template_status_update", "value": {
                    "event": t["status"], "message_template_id": int(t["id"]),
                    "message_template_name": name, "message_template_language": language,
                    "reason": t["rejected_reason"]}}]}]})

    async def template_update(self, name: str, language: str) -> int:
        """POST the signed webhook telling the template's review status; the HTTP status."""
        if self.webhook_url is None:
            raise RuntimeError("no webhook_url configured")
        body = self.template_update_body(name, language)
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            reply = await http.post(self.webhook_url, content=body, headers={
                "Content-Type": "application/json",
                WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(self.config.app_secret, body)})
        return reply.status_code

    # -- templates -------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.config.token}"

    async def _checked_body(self, request: Request,
                            schema: Mapping[str, Any]) -> dict[str, Any] | Response:
        """The request's JSON body if it fits ``schema``; else the Graph API's 400."""
        try:
            document = orjson.loads(await request.body())
            validate(document, schema)
        except orjson.JSONDecodeError:
            self.schema_failures.append("$: not JSON")
            return self._error(100, details="the body is not JSON")
        except SchemaViolation as exc:
            self.schema_failures.append(str(exc))
            return self._error(100, details=str(exc))
        assert isinstance(document, dict)  # the schemas are of objects
        return document

    def _checked_query(self, request: Request,
                       schema: Mapping[str, Any]) -> dict[str, str] | Response:
        try:
            return check_query(request.query_params.multi_items(), schema)
        except SchemaViolation as exc:
            self.schema_failures.append(str(exc))
            return self._error(100, details=str(exc))

    async def _create_template(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190, 401)
        document = await self._checked_body(request, TEMPLATE_SCHEMA)
        if isinstance(document, Response):
            return document
        name, language = document["name"], document["language"]
        if (name, language) in self.templates:
            return self._error(100, details="a template with this name and language exists")
        template = {"id": str(10**14 + next(self._ids)), "name": name,
                    "language": language, "category": document["category"],
                    "status": "APPROVED" if self.auto_approve else "PENDING",
                    "rejected_reason": "NONE", "components": document["components"]}
        self.templates[(name, language)] = template
        return _ok({k: template[k] for k in ("id", "status", "category")})

    async def _list_templates(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(190, 401)
        query = self._checked_query(request, LIST_QUERY)
        if isinstance(query, Response):
            return query
        data = [{k: t[k] for k in ("id", "name", "language", "category", "status",
                                   "rejected_reason")} for t in self.templates.values()
                if query.get("name", t["name"]) == t["name"]]
        return _ok({"data": data, "paging": {"cursors": {}}})

    async def _edit_template(self, request: Request) -> Response:
        """New content for a template: Meta reviews it again (``PENDING``)."""
        if not self._authorised(request):
            return self._error(190, 401)
        document = await self._checked_body(request, EDIT_SCHEMA)
        if isinstance(document, Response):
            return document
        if not document:
            self.schema_failures.append("$: an edit that changes nothing")
            return self._error(100, details="$: an edit that changes nothing")
        found = [t for t in self.templates.values()
                 if t["id"] == request.path_params["template_id"]]
        if not found:
            return self._error(100, details="Unsupported post request. Object with ID"
                               " does not exist")
        template = found[0]
        if any(document.get(k, template[k]) != template[k] for k in ("name", "language")):
            return self._error(100, details="a template's name and language cannot change")
        template.update(components=document.get("components", template["components"]),
                        category=document.get("category", template["category"]),
                        status="APPROVED" if self.auto_approve else "PENDING",
                        rejected_reason="NONE")
        self.edits += 1
        # The description's example answers success alone; clients (pywa) read the
        # template's id, name and category too, as Meta gives them.
        return _ok({"success": True, **{k: template[k] for k in ("id", "name", "category")}})

    async def _delete_templates(self, request: Request) -> Response:
        """Delete by name: every language of it, or the one ``hsm_id`` names."""
        if not self._authorised(request):
            return self._error(190, 401)
        query = self._checked_query(request, DELETE_QUERY)
        if isinstance(query, Response):
            return query
        doomed = [key for key, t in self.templates.items() if t["name"] == query["name"]
                  and query.get("hsm_id", t["id"]) == t["id"]]
        if not doomed:
            return self._error(100, details="Message template not found")
        for key in doomed:
            del self.templates[key]
        return _ok({"success": True})

    # -- the endpoint ----------------------------------------------------------------

    def _error(self, code: int, http_status: int = 400, details: str = "") -> Response:
        body = orjson.dumps({"error": {
            "message": f"(#{code}) {_TITLES.get(code, 'Error')}", "type": "OAuthException",
            "code": code, "error_data": {"messaging_product": "whatsapp",
                                         "details": details or _TITLES.get(code, "")},
            "fbtrace_id": secrets.token_urlsafe(12)}})
        self._answered(http_status, body)
        return Response(body, http_status, media_type="application/json")

    async def _send(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.config.token}":
            return self._error(190, 401)
        phone_number_id = request.path_params["phone_number_id"]
        if not phone_number_id.isdigit():
            return self._error(100, details="the phone number id is not a number")
        try:
            document = orjson.loads(await request.body())
            kind = check_send_request(document)
        except orjson.JSONDecodeError:
            self.schema_failures.append("$: not JSON")
            return self._error(100, details="the body is not JSON")
        except SchemaViolation as exc:
            self.schema_failures.append(str(exc))
            return self._error(100, details=str(exc))
        bucket = self._buckets.get(phone_number_id)
        if bucket is None:
            bucket = self._buckets[phone_number_id] = TokenBucket(
                self.config.rate, self.config.burst, time.monotonic())
        if self._forced_throttles > 0 or not bucket.take(time.monotonic()):
            self._forced_throttles = max(0, self._forced_throttles - 1)
            self.throttled += 1
            return self._error(WHATSAPP_THROTTLED)
        to = document["to"]
        if to in self._rejects:
            return self._error(self._rejects[to])
        if kind == "template" and self.check_templates:
            wanted = (document["template"]["name"], document["template"]["language"]["code"])
            if self.templates.get(wanted, {}).get("status") != "APPROVED":
                return self._error(132001)
        if kind == "text" and not self.all_windows_open and to not in self._windows:
            return self._error(WHATSAPP_WINDOW_CLOSED, details="Message failed to send because"
                               " more than 24 hours have passed since the customer last replied")
        return self._accept(phone_number_id, to, kind, document)

    def _accept(self, phone_number_id: str, to: str, kind: str,
                document: Mapping[str, Any]) -> Response:
        wamid = f"wamid.HERALDFAKE{next(self._ids):012d}{secrets.token_hex(4).upper()}"
        words, weights = zip(*self.config.outcomes.items(), strict=True)
        truth = self._rng.choices(words, weights)[0]
        if len(self.sent) < MAX_RECORDED:
            self.sent[wamid] = SentRecord(wamid, phone_number_id, to, kind, document, truth)
        pricing = ({"billable": True, "pricing_model": "PMP",
                    "category": "authentication" if _is_auth(document) else "utility"}
                   if kind == "template"
                   else {"billable": False, "pricing_model": "PMP", "category": "service"})
        for word in TRUTHS[truth]:
            status: dict[str, Any] = {"id": wamid, "status": word, "recipient_id": to,
                                      "timestamp": str(int(time.time())), "pricing": pricing}
            if word == "failed":
                status["errors"] = [{"code": UNDELIVERABLE, "title": _TITLES[UNDELIVERABLE]}]
            if len(self._pending) + len(self._late) >= MAX_PENDING:
                self.statuses_dropped += 1
            elif word == "read" and self.read_delay > 0:
                self._late.append((time.monotonic() + self.read_delay, status))
            else:
                self._pending.append(status)
        body = orjson.dumps({"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": to}],
                             "messages": [{"id": wamid, "message_status": "accepted"}]})
        self._answered(200, body)
        return Response(body, 200, media_type="application/json")

    def _answered(self, status: int, body: bytes) -> None:
        if len(self.answers) < MAX_RECORDED:
            self.answers.append((status, body))

    # -- status webhooks -------------------------------------------------------------

    def _chaotic(self, statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chaos = self.chaos
        if chaos.drop_delivered:  # a read held back (read_delay) follows too
            read = {s["id"] for s in [*statuses, *(late for _, late in self._late)]
                    if s["status"] == "read"}
            statuses = [s for s in statuses if not (s["status"] == "delivered" and s["id"] in read)]
        statuses = [s for s in statuses for _ in range(chaos.duplicates)]
        return statuses[::-1] if chaos.reverse else statuses

    def webhook_body(self, statuses: list[dict[str, Any]], phone_number_id: str = "0") -> bytes:
        return orjson.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": "0", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "0", "phone_number_id": phone_number_id},
                "statuses": statuses}}]}]})

    def inbound_body(self, user: str, text: str, phone_number_id: str) -> bytes:
        """A webhook telling that ``user`` wrote ``text`` to ``phone_number_id``."""
        message = {"from": user, "id": f"wamid.HERALDIN{next(self._ids):012d}",
                   "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
        return orjson.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": "0", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "0", "phone_number_id": phone_number_id},
                "contacts": [{"profile": {"name": "Test User"}, "wa_id": user}],
                "messages": [message]}}]}]})

    async def inbound(self, user: str, text: str, phone_number_id: str) -> int:
        """``user`` writes to the business: its window opens here, and the signed
        webhook saying so is POSTed to :attr:`webhook_url`; returns the HTTP status."""
        if self.webhook_url is None:
            raise RuntimeError("no webhook_url configured")
        self.open_window(user)
        body = self.inbound_body(user, text, phone_number_id)
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            reply = await http.post(self.webhook_url, content=body, headers={
                "Content-Type": "application/json",
                WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(self.config.app_secret, body)})
        return reply.status_code

    async def flush(self, http: httpx.AsyncClient | None = None) -> list[int]:
        """POST every queued status to :attr:`webhook_url` (signed, with :attr:`chaos`);
        return the HTTP status of each POST. Statuses a POST failed to deliver are lost,
        as a real provider's would be after its retries."""
        url = self.webhook_url
        if url is None:
            raise RuntimeError("no webhook_url configured")
        now = time.monotonic()
        due = 0
        while due < len(self._late) and self._late[due][0] <= now:
            due += 1
        late, self._late = [status for _, status in self._late[:due]], self._late[due:]
        statuses, self._pending = self._chaotic(self._pending + late), []
        answers = []
        client = http or httpx.AsyncClient(trust_env=False, timeout=10.0)
        try:
            for start in range(0, len(statuses), self.config.batch):
                body = self.webhook_body(statuses[start:start + self.config.batch])
                signature = WHATSAPP_SCHEME.sign(self.config.app_secret, body)
                reply = await client.post(url, content=body, headers={
                    "Content-Type": "application/json", WHATSAPP_SCHEME.header: signature})
                answers.append(reply.status_code)
        finally:
            if http is None:
                await client.aclose()
        return answers


def _ok(document: object) -> Response:
    return Response(orjson.dumps(document), 200, media_type="application/json")


def _is_auth(document: Mapping[str, Any]) -> bool:
    components = document.get("template", {}).get("components", [])
    return any(c.get("sub_type") in ("url", "copy_code") for c in components)
