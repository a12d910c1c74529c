"""Channel chains through the API (docs/channels.md, "Chains").

- ``POST /v1/messages`` with ``channels``: :meth:`ChainRoutes.send` (the
  message route hands such a body here; a plain SMS never comes here).
  Every leg is checked before anything is stored: a WhatsApp leg's sender is
  one of the account's phone number ids, its content one of ``template`` or
  ``text``, and free-form ``text`` goes only to a recipient whose 24-hour
  window is open (422 naming ``channels[i].text`` otherwise, with no provider
  call). An SMS leg is the top-level ``from``/``text`` (or its own) through
  the checks and the price of a plain send; it is stored and charged only if
  the chain comes to it.
- ``GET /v1/messages/{id}`` of a chain: :meth:`ChainRoutes.view`.
- ``POST /v1/channels/whatsapp/webhook`` and ``/v1/channels/viber/webhook``:
  the providers' status (and inbound) webhooks; the signature is checked
  over the raw body before anything is read (400/401 and no change otherwise).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from herald.billing import Unpriced, rate
from herald.channels import (
    AuthTemplateContent,
    Content,
    MalformedWebhook,
    ProviderSignatureError,
    TemplateContent,
    TextContent,
    chain_view,
    refuse_outside_window,
)
from herald.chat import ChatService, content_json
from herald.intake import IntakeError, check_callback_url, next_quota_day
from herald.store import (
    MAX_CHAIN_LEGS,
    Account,
    ChangeOutcome,
    ChatChain,
    ChatLeg,
    IdempotencyMismatch,
    IdempotencyRecord,
    InsufficientFunds,
    MessageFilter,
    NewChain,
    NewChatLeg,
    Priority,
    QuotaExceeded,
    Status,
    StatusEvents,
    StoreError,
)

from ._auth import Gate
from ._context import ApiContext
from ._messages import JSON_MEDIA_TYPE, MessageRoutes
from ._problems import (
    ApiProblem,
    FieldError,
    insufficient_funds,
    intake_field_errors,
    rate_limited,
    store_problem,
    unpriced,
)

__all__ = ["MAX_WEBHOOK_OCTETS", "MAX_WITHIN", "ChainRoutes"]

log = logging.getLogger("herald.api")

#: Seconds a leg may be given to reach its success (a week: a chain's SMS
#: validity is at most that long anyway).
MAX_WITHIN: Final = 7 * 86400.0
#: Viber TTL bounds (Viber: 30 s .. 14 days).
MIN_TTL, MAX_TTL = 30, 14 * 86400
_CHANNELS: Final = ("whatsapp", "viber", "sms")
_LEG_FIELDS: Final = frozenset({"channel", "from", "text", "template", "success", "within", "ttl"})
_TEMPLATE_FIELDS: Final = frozenset({"name", "language", "parameters", "code"})
_NUMBER = re.compile(r"\+?[1-9][0-9]{5,14}")
_IDEMPOTENCY_COMPRESSION: Final = 1
#: Characters of a subscription challenge echoed back (Meta's are short numbers).
MAX_CHALLENGE: Final = 256
#: Octets of a provider webhook read: Meta batches up to 1,000 updates (~2 MiB;
#: herald.channels reads at most that much of a body anyway).
MAX_WEBHOOK_OCTETS: Final = 2 * 1024 * 1024


def _invalid(errors: list[FieldError]) -> ApiProblem:
    return ApiProblem(422, "invalid-request", "the message was refused; see errors", errors)


class ChainRoutes:
    """The chain handlers, bound to the API context and the message routes."""

    def __init__(self, ctx: ApiContext, gate: Gate, messages: MessageRoutes) -> None:
        self._ctx = ctx
        self._gate = gate
        self._messages = messages

    # -- POST /v1/messages with "channels" -----------------------------------------

    async def send(self, now: float, account: Account, payload: dict[str, Any], key: str | None,
                   digest: bytes) -> Response:
        chat = self._ctx.chat
        legs = payload.get("channels")
        if chat is None:
            raise _invalid([FieldError(("channels",), "not_configured",
                                       "this herald has no chat channels ([channels.*] in"
                                       " herald.toml); send without channels")])
        if not isinstance(legs, list) or not 1 <= len(legs) <= MAX_CHAIN_LEGS:
            raise _invalid([FieldError(("channels",), "wrong_type",
                                       f"must be a list of 1..{MAX_CHAIN_LEGS} legs")])
        if payload.get("test") is True:
            raise _invalid([FieldError(("test",), "not_supported",
                                       "a chain cannot be a test message")])
        await self._gate.charge_messages(account, 1, now)
        try:
            chain, sms = await self._chain(chat, now, account, payload, legs)
        except ApiProblem:
            self._gate.refund_messages(account, 1, now)
            raise
        await self._screen_first_sms(now, account, chain)
        view = chain_view(_preview(chain))
        content = orjson.dumps(view)
        record = None
        if key is not None:
            record = IdempotencyRecord(account.id, key, digest, 202,
                                       zlib.compress(content, _IDEMPOTENCY_COMPRESSION), now,
                                       now + self._ctx.limits.idempotency_ttl)
        try:
            earlier = await self._ctx.store.accept_chain(
                chain, idempotency=record, quota=self._gate.controls.quota(account.id, now))
        except QuotaExceeded as exc:
            self._gate.refund_messages(account, 1, now)
            raise rate_limited(
                "daily-quota-exceeded",
                f"the account's daily quota of {exc.limit} is used up ({exc.used} used today,"
                f" {exc.wanted} asked); it renews at 00:00 UTC", next_quota_day(now),
            ) from None
        except InsufficientFunds:  # the first leg is an SMS the balance does not cover
            self._gate.refund_messages(account, 1, now)
            raise insufficient_funds(_price(chain)) from None
        except IdempotencyMismatch:
            self._gate.refund_messages(account, 1, now)
            raise ApiProblem(422, "idempotency-mismatch", "this Idempotency-Key was used in the"
                             " last 24 hours for a different request") from None
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        if earlier is not None:
            self._gate.refund_messages(account, 1, now)
            return Response(zlib.decompress(earlier.response), earlier.status_code,
                            {"Idempotent-Replayed": "true"}, media_type=JSON_MEDIA_TYPE)
        chat.wake()
        if sms is not None and chain.legs[0].channel == "sms":
            self._ctx.on_accepted([sms])
        log.info("chain %s: accepted, %d legs", chain.id, len(chain.legs))
        return Response(content, 202, {"Location": f"/v1/messages/{chain.id}"},
                        media_type=JSON_MEDIA_TYPE)

    async def _screen_first_sms(self, now: float, account: Account, chain: NewChain) -> None:
        """An OTP SMS as the first leg is screened by the pumping defence as a
        plain OTP send is (the account's ``otp_messages``): a block is the same
        403, nothing stored or charged. (A fallback SMS leg is not screened yet:
        docs/channels.md, "Not yet".)"""
        first = chain.legs[0].sms
        if first is None or first.priority is not Priority.OTP:
            return
        prices = self._ctx.prices(account.id)
        rating = None
        if prices is not None:
            with contextlib.suppress(Unpriced):  # priced already when the leg was made
                rating = rate(prices, first.to, first.segments, self._ctx.destinations())
        await self._messages.screen(account, first, rating, now)  # refunds the rate on a block

    async def _chain(self, chat: ChatService, now: float, account: Account,
                     payload: dict[str, Any], legs: list[Any]) -> tuple[NewChain, Any]:
        errors: list[FieldError] = []
        to = payload.get("to")
        if not isinstance(to, str) or _NUMBER.fullmatch(to) is None:
            raise _invalid([FieldError(("to",), "invalid_number",
                                       "must be an E.164 number: '+' and 6..15 digits")])
        digits = to.removeprefix("+")
        try:
            callback_url = check_callback_url(payload.get("callback_url"))
        except IntakeError as exc:
            raise _invalid(intake_field_errors(exc, ())) from None
        reference = payload.get("reference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 64):
            errors.append(FieldError(("reference",), "invalid", "a string of at most 64"))
        metadata = payload.get("metadata")
        new_legs: list[NewChatLeg] = []
        sms_message = None
        for n, leg in enumerate(legs):
            at: tuple[str | int, ...] = ("channels", n)
            if not isinstance(leg, dict) or leg.get("channel") not in _CHANNELS:
                errors.append(FieldError((*at, "channel"), "invalid",
                                         f"each leg is an object with channel one of {_CHANNELS}"))
                continue
            unknown = set(leg) - _LEG_FIELDS
            if unknown:
                errors.append(FieldError((*at, sorted(unknown)[0]), "unknown_field",
                                         f"a leg takes {sorted(_LEG_FIELDS)}"))
                continue
            success, within = self._success(leg, at, errors)
            if leg["channel"] == "sms":
                made = self._sms_leg(now, account, payload, leg, at, errors)
                if made is not None:
                    sms_message = sms_message or made.sms
                    new_legs.append(replace(made, within=within))
                continue
            made = await self._chat_leg(chat, now, account, digits, leg, at, errors)
            if made is not None:
                new_legs.append(replace(made, success=success, within=within))
        if errors:
            raise _invalid(errors)
        chain = NewChain(self._ctx.ids.new_id(now), account.id, digits, tuple(new_legs), now,
                         reference, callback_url,
                         None if metadata is None else orjson.dumps(metadata).decode())
        return chain, sms_message

    @staticmethod
    def _success(leg: Mapping[str, Any], at: tuple[str | int, ...],
                 errors: list[FieldError]) -> tuple[str, float | None]:
        success = leg.get("success", "delivered")
        if success not in ("delivered", "read") or (success == "read"
                                                    and leg["channel"] == "sms"):
            errors.append(FieldError((*at, "success"), "invalid",
                                     "delivered or read (an SMS has no read)"))
        within = leg.get("within")
        if within is not None and (type(within) not in (int, float)
                                   or not 0 < within <= MAX_WITHIN):
            errors.append(FieldError((*at, "within"), "invalid",
                                     f"seconds, more than 0 and at most {MAX_WITHIN:.0f}"))
            within = None
        return str(success), None if within is None else float(within)

    def _sms_leg(self, now: float, account: Account, payload: Mapping[str, Any],
                 leg: Mapping[str, Any], at: tuple[str | int, ...],
                 errors: list[FieldError]) -> NewChatLeg | None:
        """The SMS leg: the top-level SMS fields (a leg's own ``from``/``text``
        over them) through the checks and the price of a plain send. The chain
        notifies the customer: the message itself posts no webhook."""
        item = {k: v for k, v in payload.items()
                if k not in ("channels", "callback_url", "callback_events")}
        for name in ("from", "text"):
            if name in leg:
                item[name] = leg[name]
        item["callback_events"] = "none"
        messages = self._messages
        rules = self._ctx.destinations()
        outcome = messages._prepare(item, (), now, Counter(), rules, account.id)
        if isinstance(outcome, list):
            errors.extend(FieldError((*at, *e.path) if e.path and e.path[0] in leg else e.path,
                                     e.code, e.detail) for e in outcome)
            return None
        _, prepared = outcome
        message = prepared.message(self._ctx.ids.new_id(now), account.id, now,
                                   default_priority=messages.priority_for(account, prepared, now))
        message = replace(message, callback_events=StatusEvents.NONE, callback_url=None)
        prices = self._ctx.prices(account.id)
        rating = None
        if prices is not None:
            try:
                rating = rate(prices, message.to, message.segments, rules)
            except Unpriced:
                errors.append(unpriced(at))
                return None
        return NewChatLeg("sms", message.sender, sms=message,
                          charge=None if rating is None else rating.charge())

    async def _chat_leg(self, chat: ChatService, now: float, account: Account, to: str,
                        leg: Mapping[str, Any], at: tuple[str | int, ...],
                        errors: list[FieldError]) -> NewChatLeg | None:
        channel = leg["channel"]
        if channel not in chat.adapters:
            errors.append(FieldError((*at, "channel"), "not_configured",
                                     f"this herald has no {channel} channel"))
            return None
        owned = [s for s, name in chat.settings.senders(channel).items() if name == account.name]
        sender = leg.get("from", owned[0] if owned else None)
        if sender is None or sender not in owned:
            errors.append(FieldError((*at, "from"), "unknown_sender",
                                     f"not a {channel} sender of this account ([channels."
                                     f"{channel}] senders in herald.toml)"))
            return None
        content = self._content(channel, leg, at, errors)
        if content is None:
            return None
        if isinstance(content, TemplateContent | AuthTemplateContent):
            try:  # one herald manages (/v1/templates) goes only when the account's and approved
                known = await self._ctx.store.get_chat_template(content.name, content.language)
            except StoreError as exc:
                raise store_problem(exc) from None
            if known is not None and (known.account_id != account.id
                                      or known.status != "approved"):
                status = known.status if known.account_id == account.id else "another account's"
                errors.append(FieldError((*at, "template"), "template_not_approved",
                                         f"template {content.name} ({content.language}) is"
                                         f" {status}, not approved (GET /v1/templates)"))
                return None
        if channel == "whatsapp":
            try:
                opened = await self._ctx.store.chat_window_opened(account.id, channel, sender, to)
            except StoreError as exc:
                raise store_problem(exc) from None
            refusal = refuse_outside_window(content, opened, now)
            if refusal is not None:  # refused here: no request is spent on a certain 131047
                errors.append(FieldError((*at, "text"), "window_closed", refusal.detail))
                return None
        ttl = leg.get("ttl")
        if ttl is not None and (type(ttl) is not int or not MIN_TTL <= ttl <= MAX_TTL):
            errors.append(FieldError((*at, "ttl"), "invalid",
                                     f"whole seconds, {MIN_TTL}..{MAX_TTL}"))
            return None
        return NewChatLeg(channel, str(sender), content_json(content), ttl=ttl)

    @staticmethod
    def _content(channel: str, leg: Mapping[str, Any], at: tuple[str | int, ...],
                 errors: list[FieldError]) -> Content | None:
        text, template = leg.get("text"), leg.get("template")
        if (text is None) == (template is None):
            errors.append(FieldError(at, "invalid", "a leg carries text or a template"))
            return None
        try:
            if text is not None:
                if not isinstance(text, str):
                    raise ValueError("must be a string")
                return TextContent(text)
            if channel != "whatsapp":
                errors.append(FieldError((*at, "template"), "not_supported",
                                         f"{channel} takes text only"))
                return None
            if not isinstance(template, dict) or set(template) - _TEMPLATE_FIELDS:
                raise ValueError(f"an object of {sorted(_TEMPLATE_FIELDS)}")
            name, language = template.get("name"), template.get("language")
            if not isinstance(name, str) or not isinstance(language, str):
                raise ValueError("name and language are strings")
            if "code" in template:
                code = template["code"]
                if not isinstance(code, str):
                    raise ValueError("code is a string")
                return AuthTemplateContent(name, language, code)
            params = template.get("parameters", [])
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                raise ValueError("parameters is a list of strings")
            return TemplateContent(name, language, tuple(params))
        except ValueError as exc:
            errors.append(FieldError((*at, "text" if text is not None else "template"),
                                     "invalid", str(exc)))
            return None

    # -- GET /v1/messages/{id} of a chain --------------------------------------------

    async def view(self, chain_id: str, account_id: int) -> dict[str, Any] | None:
        """The chain's view, or None when the account has no such chain."""
        chat = self._ctx.chat
        chain = None if chat is None else await chat.chain(chain_id, account_id)
        return None if chain is None else chain_view(chain)

    async def listing(self, query: MessageFilter, cursor: str | None) -> dict[str, Any]:
        """``GET /v1/messages?type=chain``: one page of the account's chains."""
        chains, next_cursor = await self._ctx.store.list_chains(
            replace(query, to=None if query.to is None else query.to.removeprefix("+")), cursor)
        return {"messages": [chain_view(c) for c in chains], "next_cursor": next_cursor}

    # -- DELETE /v1/messages/{id} of a chain -------------------------------------------

    async def cancel(self, chain_id: str, account_id: int) -> Response:
        """Cancel a chain, with the answers of an SMS cancel (docs/api.md): 200 and
        the chain once it is ``cancelled`` (nothing of it went out, or what went
        out ended without success); 409 ``cancel-too-late`` when a leg has gone
        out (it is not recalled; no leg starts after it, and the chain ends
        ``delivered`` by it or ``cancelled``, one webhook either way) or the
        chain is final; 409 ``cancel-in-progress`` while dispatch holds its SMS."""
        chat = self._ctx.chat
        try:
            found = None if chat is None else await chat.cancel(chain_id, account_id)
        except StoreError as exc:
            raise store_problem(exc) from None
        if found is None:
            raise ApiProblem(404, "not-found", "no such message")
        chain, sms = found
        view = chain_view(chain)
        if chain.status is Status.CANCELLED:
            return Response(orjson.dumps(view), 200, media_type=JSON_MEDIA_TYPE)
        extra = {"message_status": view["status"]}
        if sms is ChangeOutcome.IN_PROGRESS:
            raise ApiProblem(409, "cancel-in-progress", "the chain's SMS leg is being submitted"
                             " upstream and can no longer be cancelled, unless dispatch gives"
                             " it back: try again in a few seconds; no leg starts after it",
                             extra=extra)
        if chain.status.final:
            went = f"it is {view['status']} already"
        else:
            leg = max(n for n, g in enumerate(chain.legs) if g.state is not None)
            went = (f"leg {leg} ({chain.legs[leg].channel}) has gone out and is not recalled;"
                    " no leg starts after it: the chain ends delivered by it, or cancelled")
        raise ApiProblem(409, "cancel-too-late", f"the chain cannot be cancelled: {went}",
                         extra=extra)

    async def cancel_by_reference(self, account_id: int, reference: str,
                                  limit: int) -> list[str]:
        """Cancel up to ``limit`` of the account's chains sent with ``reference``
        (``DELETE /v1/messages?reference=``) as ``DELETE /v1/messages/{id}``
        cancels one; returns the ids of those that ended ``cancelled``. A chain
        whose current leg has gone out is not listed: that leg is not recalled,
        and no leg starts after it. Raises :class:`StoreError`."""
        chat = self._ctx.chat
        if chat is None:
            return []
        ended: list[str] = []
        for chain_id in await self._ctx.store.chains_to_cancel(account_id, reference,
                                                                limit=limit):
            found = await chat.cancel(chain_id, account_id)
            if found is not None and found[0].status is Status.CANCELLED:
                ended.append(chain_id)
        return ended

    # -- provider webhooks -------------------------------------------------------------

    async def whatsapp_webhook(self, request: Request) -> Response:
        return await self._webhook(request, "whatsapp")

    async def whatsapp_subscribe(self, request: Request) -> Response:
        """Meta's webhook subscription handshake: echo ``hub.challenge`` when
        ``hub.verify_token`` is the configured one (403 otherwise)."""
        chat = self._ctx.chat
        token = None if chat is None else chat.settings.whatsapp_verify_token
        if token is None:
            raise ApiProblem(404, "not-found", "no [channels.whatsapp] verify_token is set")
        q = request.query_params
        given = q.get("hub.verify_token", "")
        if q.get("hub.mode") != "subscribe" or not hmac.compare_digest(
                given.encode(), token.encode()):
            raise ApiProblem(403, "forbidden", "not the configured verify token")
        return Response(q.get("hub.challenge", "")[:MAX_CHALLENGE], 200,
                        media_type="text/plain")

    async def viber_webhook(self, request: Request) -> Response:
        return await self._webhook(request, "viber")

    async def _webhook(self, request: Request, channel: str) -> Response:
        chat = self._ctx.chat
        if chat is None or channel not in chat.adapters:
            raise ApiProblem(404, "not-found", f"this herald has no {channel} channel")
        body = await _bounded_body(request)
        try:
            if channel == "whatsapp":
                await chat.whatsapp_webhook(body, request.headers)
            else:
                await chat.viber_webhook(body, request.headers)
        except ProviderSignatureError as exc:
            log.warning("%s webhook: signature refused (%s)", channel, exc)
            raise ApiProblem(exc.http_status, "bad-signature", exc.reason) from None
        except MalformedWebhook as exc:
            raise ApiProblem(400, "malformed-webhook", str(exc)) from None
        except StoreError as exc:  # the provider sends it again
            raise store_problem(exc) from None
        return Response(b"", 200)


async def _bounded_body(request: Request) -> bytes:
    """The raw body (signed as it came), refused past :data:`MAX_WEBHOOK_OCTETS`
    before more is read: an unsigned flood costs no memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_WEBHOOK_OCTETS:
        raise ApiProblem(413, "payload-too-large",
                         f"a provider webhook is at most {MAX_WEBHOOK_OCTETS} octets")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_OCTETS:
            raise ApiProblem(413, "payload-too-large",
                             f"a provider webhook is at most {MAX_WEBHOOK_OCTETS} octets")
        chunks.append(chunk)
    return b"".join(chunks)


def _preview(chain: NewChain) -> ChatChain:
    """The view of a chain just accepted (before it is read back)."""
    first = chain.legs[0]
    price = None if first.charge is None else first.charge.amount
    legs = tuple(ChatLeg(n, leg.channel, leg.sender, leg.success, leg.within,
                         "pending" if n == 0 else None, None,
                         leg.sms.id if n == 0 and leg.sms is not None else None, None, None,
                         price if n == 0 else None,
                         "sms" if n == 0 and price is not None else None,
                         chain.created_at if n == 0 else None,
                         chain.created_at if n == 0 else None)
                 for n, leg in enumerate(chain.legs))
    return ChatChain(chain.id, chain.account_id, chain.to, Status.QUEUED, None, 0,
                     chain.created_at, None, chain.reference, chain.callback_url,
                     chain.metadata, legs, {})


def _price(chain: NewChain) -> Decimal:
    charge = chain.legs[0].charge
    return Decimal(0 if charge is None else charge.amount) / 1_000_000
