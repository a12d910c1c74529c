"""The Verify API: ``/v1/verifications`` and ``POST /v1/messages/{id}/converted``.

Theory of operation
-------------------
A verification sends a code herald makes (:mod:`herald.verify`) as an SMS
that goes through the same acceptance as ``POST /v1/messages``: the field and
destination checks, the account's controls and opt-outs, its price and balance
(:class:`MessageRoutes` ``_prepare``, ``price_single``, ``commit``), with
priority ``otp`` and tag ``verify``. The code is never answered, logged or
stored: the store keeps ``HMAC(code key, salt | code)`` only.

The order of the writes keeps the per-number limit exact and loses nothing:
the send is first taken from the number's hourly allowance together with the
verification (one store write that counts and records), then the message is
accepted (charged); when the accept is refused (402, 429, 503...) the send
is taken back (``undo_verification_send``), so a refused SMS neither counts
nor leaves a verification behind. A resend replaces the code and expiry of
the same verification in the same way (the earlier code stops working).

A check hashes the code presented with the verification's salt and compares
in constant time (:func:`hmac.compare_digest`), then counts the check in one
store write that also re-reads the verification: if a resend changed the code
in between, the check is hashed again against the new one.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from herald.channels import AuthTemplateContent
from herald.chat import content_json
from herald.fraud import ADDRESS_TYPES, parse_asn
from herald.ids import is_valid_id
from herald.rating import Rating
from herald.store import (
    MAX_CLIENT_HINT_LENGTH,
    VERIFY_TAG,
    Account,
    ChatLeg,
    Conflict,
    FraudDecision,
    IdempotencyRecord,
    NewChain,
    NewChatLeg,
    NewMessage,
    NotFound,
    SendLimitExceeded,
    StatusEvents,
    StoreError,
    Verification,
    VerificationStatus,
)
from herald.verify import (
    MAX_CODE_LENGTH,
    MIN_CODE_LENGTH,
    TEMPLATES,
    USE_CASES,
    code_hash,
    code_matches,
    control_characters,
    new_code,
    new_salt,
    render,
)

from ._auth import Gate
from ._blocked import blocked, decision_view
from ._client import client_address
from ._context import ApiContext
from ._messages import MessageRoutes, _idempotency_key, read_json
from ._problems import ApiProblem, FieldError, rate_limited, store_problem
from ._render import price_view, rfc3339

__all__ = ["VerifyRoutes"]

log = logging.getLogger("herald.api")

#: A verification request is a few hundred octets; this leaves room for hints.
MAX_VERIFY_BODY_OCTETS: Final = 16 * 1024
#: The app name shown in the SMS.
MAX_APP_LENGTH: Final = 32
#: Message ids in one POST /v1/conversions.
MAX_CONVERSIONS: Final = 1_000
#: Decisions a verification's GET shows (one per SMS: sends_per_hour bounds them).
MAX_DECISIONS_SHOWN: Final = 100
#: Seconds the per-number send limit looks back.
SEND_WINDOW: Final = 3600.0
_HINTS: Final = ("ip", "ip_type", "asn", "device_id", "platform", "user_id")
_FIELDS: Final = frozenset({"to", "channel", "code_length", "locale", "use_case", "app",
                            "template", "within", *_HINTS})  # fmt: skip
#: Seconds a WhatsApp code has to be delivered before the SMS goes (default, most).
DEFAULT_WHATSAPP_WITHIN: Final = 30.0
MAX_WHATSAPP_WITHIN: Final = 600.0


def _json(value: object, status: int = 200, headers: Mapping[str, str] | None = None
          ) -> Response:  # fmt: skip
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def _invalid(detail: str, errors: list[FieldError]) -> ApiProblem:
    return ApiProblem(422, "invalid-request", detail, errors)


def _not_found() -> ApiProblem:
    return ApiProblem(404, "not-found", "no such verification")


class _Request:
    """A checked ``POST /v1/verifications`` body."""

    def __init__(self, payload: object, account: Account, locales: tuple[str, ...]) -> None:
        errors: list[FieldError] = []
        if not isinstance(payload, dict):
            raise _invalid("the body must be a JSON object",
                           [FieldError((), "wrong_type", "must be a JSON object")])  # fmt: skip
        errors += [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
                   for k in payload if k not in _FIELDS]  # fmt: skip

        def text(name: str, default: str | None, max_length: int) -> str:
            value = payload.get(name, default)
            if value is None:
                errors.append(FieldError((name,), "required", "Field required"))
            elif not isinstance(value, str):
                errors.append(FieldError((name,), "wrong_type", "must be a string"))
            elif not 0 < len(value) <= max_length:
                errors.append(FieldError((name,), "invalid_length",
                                         f"1 to {max_length} characters"))  # fmt: skip
            elif control_characters(value):
                errors.append(FieldError((name,), "invalid_characters",
                                         "must not hold control characters"))  # fmt: skip
            else:
                return value
            return ""

        def one_of(name: str, default: str, choices: tuple[str, ...]) -> str:
            value = payload.get(name, default)
            if value not in choices:
                errors.append(FieldError((name,), "invalid_choice",
                                         "one of " + ", ".join(choices)))  # fmt: skip
                return default
            return str(value)

        self.to = text("to", None, 32)
        self.channel = one_of("channel", "sms", ("sms", "whatsapp"))
        # WhatsApp: an authentication template carries the code; SMS if it is not
        # delivered within ``within`` seconds (docs/verify.md, "WhatsApp").
        template = payload.get("template")
        self.template: tuple[str, str] | None = None
        if self.channel == "whatsapp":
            if not (isinstance(template, dict) and set(template) <= {"name", "language"}
                    and all(isinstance(template.get(k), str) and template.get(k)
                            for k in ("name", "language"))):
                errors.append(FieldError(("template",), "required", "channel whatsapp takes"
                                         " an authentication template: {\"name\", \"language\"}"))
            else:
                self.template = (template["name"], template["language"])
        elif template is not None:
            errors.append(FieldError(("template",), "not_supported", "for channel whatsapp"))
        within = payload.get("within", DEFAULT_WHATSAPP_WITHIN)
        if type(within) not in (int, float) or not 0 < within <= MAX_WHATSAPP_WITHIN:
            errors.append(FieldError(("within",), "out_of_range",
                                     f"seconds, more than 0 and at most {MAX_WHATSAPP_WITHIN:g}"))
            within = DEFAULT_WHATSAPP_WITHIN
        self.within = float(within)
        self.locale = one_of("locale", "en", locales)
        self.use_case = one_of("use_case", "other", USE_CASES)
        self.app = text("app", account.name[:MAX_APP_LENGTH], MAX_APP_LENGTH)
        length = payload.get("code_length", 6)
        if type(length) is not int or not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
            errors.append(FieldError(("code_length",), "out_of_range",
                                     f"an integer {MIN_CODE_LENGTH} to {MAX_CODE_LENGTH}"))
            length = 6
        self.code_length: int = length
        self.client: dict[str, str] = {}
        for name in _HINTS:
            if payload.get(name) is None:
                continue
            value = text(name, None, MAX_CLIENT_HINT_LENGTH)
            if value and name == "ip":
                try:
                    value = str(ipaddress.ip_address(value))
                except ValueError:
                    errors.append(FieldError((name,), "invalid", "an IPv4 or IPv6 address"))
                    continue
            elif value and name == "ip_type" and value not in ADDRESS_TYPES:
                errors.append(FieldError((name,), "invalid_choice",
                                         "one of " + ", ".join(ADDRESS_TYPES)))  # fmt: skip
                continue
            elif value and name == "asn":
                try:
                    value = parse_asn(value)
                except ValueError:
                    errors.append(FieldError((name,), "invalid",
                                             "an AS number: AS64500 or 64500"))  # fmt: skip
                    continue
            if value:
                self.client[name] = value
        if errors:
            raise _invalid("the verification was refused; see errors", errors)


def _locales(templates: Mapping[str, str]) -> tuple[str, ...]:
    """The locales a verification may name: the built-in ones and the account's."""
    return tuple(sorted({*TEMPLATES, *templates} - {"default"}))


def _template(templates: Mapping[str, str], locale: str) -> str | None:
    """The account's text for ``locale``, else its ``default``; ``None``: the built-in."""
    return templates.get(locale, templates.get("default"))


def _view(v: Verification, now: float, max_checks: int,
          rating: Rating | None = None) -> dict[str, Any]:  # fmt: skip
    view: dict[str, Any] = {
        "id": v.id, "status": v.status_at(now).label, "to": "+" + v.to, "channel": "sms",
        "use_case": v.use_case, "locale": v.locale, "app": v.app,
        "code_length": v.code_length, "created_at": rfc3339(v.created_at),
        "expires_at": rfc3339(v.expires_at), "sends": v.sends, "checks": v.checks,
        "remaining_checks": max(0, max_checks - v.checks),
    }  # fmt: skip
    if rating is not None:
        view["price"] = price_view(rating)
    return view


class VerifyRoutes:
    """The handlers, bound to one :class:`ApiContext` and the message routes."""

    def __init__(self, ctx: ApiContext, gate: Gate, messages: MessageRoutes) -> None:
        self._ctx = ctx
        self._gate = gate
        self._messages = messages

    async def _message(self, account: Account, to: str, text: str, now: float
                 ) -> tuple[NewMessage, Rating | None]:  # fmt: skip
        """The SMS carrying the code, through the checks of ``POST /v1/messages``
        (its refusals name ``to``); the message budget is taken here."""
        ctx = self._ctx
        settings = ctx.verify
        sender = settings.autofill(account.name).sender or settings.sender
        policy = ctx.intake
        validity = max(policy.min_validity, min(settings.ttl, policy.max_validity))
        item = {"to": to, "from": sender, "text": text, "priority": "otp", "tag": VERIFY_TAG,
                "validity_period": validity}  # fmt: skip
        await self._gate.charge_messages(account, 1, now)
        codes: Counter[str] = Counter()
        rules = ctx.destinations()
        outcome = self._messages._prepare(item, (), now, codes, rules, account.id)
        if isinstance(outcome, list):
            self._gate.refund_messages(account, 1, now)
            # "from" is not the client's field: say where the sender comes from.
            errors = [e if e.path != ("from",) else FieldError(
                e.path, e.code, f"the SMS's sender {sender!r} ([verify] sender, or"
                f" [verify.accounts.{account.name}] sender): {e.detail}") for e in outcome]
            raise self._messages.refuse(errors)
        _, prepared = outcome
        message = prepared.message(ctx.ids.new_id(now), account.id, now)
        rating = self._messages.price_single(account, message, rules, now)
        return message, rating

    async def _accept(self, account: Account, message: NewMessage, rating: Rating | None,
                      now: float, key: str | None, digest: bytes, content: bytes,
                      status: int) -> Response | None:  # fmt: skip
        return await self._messages.commit(
            [message], account, key, digest, status, content, now,
            None if rating is None else [rating.charge()])

    async def _chain(self, account: Account, template: tuple[str, str], within: float,
                     message: NewMessage, rating: Rating | None, code: str,
                     now: float) -> NewChain:  # fmt: skip
        """The chain of a WhatsApp verification: the authentication ``template``
        carrying the code, delivered within ``within`` s, else ``message``
        (the SMS a plain verification sends), stored only if it is needed."""
        chat = self._ctx.chat
        if chat is None or "whatsapp" not in chat.adapters:
            self._gate.refund_messages(account, 1, now)
            raise _invalid("the verification was refused; see errors", [FieldError(
                ("channel",), "not_configured", "this herald has no WhatsApp channel")])
        owned = [s for s, name in chat.settings.senders("whatsapp").items()
                 if name == account.name]
        name, language = template
        try:
            known = await self._ctx.store.get_chat_template(name, language)
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        problem = None
        if not owned:
            problem = FieldError(("channel",), "unknown_sender", "the account has no WhatsApp"
                                 " sender ([channels.whatsapp] senders)")
        elif known is not None and (known.account_id != account.id
                                    or known.status != "approved"
                                    or known.category != "authentication"):
            problem = FieldError(("template",), "template_not_approved",
                                 f"{name} ({language}) is not an approved authentication"
                                 " template of this account (GET /v1/templates)")
        if problem is not None:
            self._gate.refund_messages(account, 1, now)
            raise _invalid("the verification was refused; see errors", [problem])
        sms = NewChatLeg("sms", message.sender,
                         sms=replace(message, callback_events=StatusEvents.NONE,
                                     callback_url=None),
                         charge=None if rating is None else rating.charge())
        whatsapp = NewChatLeg("whatsapp", owned[0], content_json(AuthTemplateContent(
            name, language, code)), "delivered", within)
        return NewChain(self._ctx.ids.new_id(now), account.id, message.to, (whatsapp, sms),
                        now, reference=None)

    async def _accept_chain(self, account: Account, chain: NewChain, now: float,
                            key: str | None, digest: bytes, content: bytes) -> Response | None:
        record = None
        if key is not None:
            record = IdempotencyRecord(account.id, key, digest, 201, zlib.compress(content, 1),
                                       now, now + self._ctx.limits.idempotency_ttl)
        try:
            earlier = await self._ctx.store.accept_chain(chain, idempotency=record)
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        if earlier is not None:
            self._gate.refund_messages(account, 1, now)
            return Response(zlib.decompress(earlier.response), earlier.status_code,
                            {"Idempotent-Replayed": "true"}, media_type="application/json")
        chat = self._ctx.chat
        if chat is not None:
            chat.wake()
        return None

    # -- POST /v1/verifications ---------------------------------------------------

    async def create(self, request: Request) -> Response:
        ctx = self._ctx
        now, account, payload, key, digest, replay = await self._messages._begin(
            request, MAX_VERIFY_BODY_OCTETS)
        if replay is not None:
            return replay
        templates = await self._templates(account)
        req = _Request(payload, account, _locales(templates))
        code = new_code(req.code_length)
        autofill = ctx.verify.autofill(account.name)
        message, rating = await self._message(account, req.to, render(
            req.locale, req.app, code, autofill, _template(templates, req.locale)), now)
        salt = new_salt()
        v = Verification(
            ctx.ids.new_id(now), account.id, message.to, req.use_case, req.app, req.locale,
            req.code_length, VerificationStatus.PENDING, now, now + ctx.verify.ttl, salt,
            code_hash(ctx.verify_key, salt, code), client=req.client,
        )  # fmt: skip
        chain = None
        if req.template is not None:  # WhatsApp first, this SMS as the fallback
            chain = await self._chain(account, req.template, req.within, message, rating,
                                      code, now)
        del code
        decision = await self._screen(account, message, rating, now, v, request, exists=False)
        sent_as = message.id if chain is None else chain.id
        await self._take_send(account, now, lambda: ctx.store.start_verification(
            v, sent_as, window=SEND_WINDOW, limit=ctx.verify.sends_per_hour))
        view = _view(v, now, ctx.verify.max_checks, rating)
        view["fraud"] = decision_view(decision)
        if chain is not None:
            view["channel"] = "whatsapp"
            view["messages"] = [chain.id]
        content = json.dumps(view, separators=(",", ":")).encode()
        try:
            if chain is None:
                replay = await self._accept(account, message, rating, now, key, digest,
                                            content, 201)  # fmt: skip
            else:
                replay = await self._accept_chain(account, chain, now, key, digest, content)
        except BaseException:
            await ctx.store.undo_verification_send(v.id, 1, None)
            raise
        if replay is not None:  # the same request, concurrently: the other one sent it
            await ctx.store.undo_verification_send(v.id, 1, None)
            return replay
        log.info("verification %s: sent as message %s", v.id, sent_as)
        return Response(content, 201, {"Location": f"/v1/verifications/{v.id}"},
                        media_type="application/json")  # fmt: skip

    async def _templates(self, account: Account) -> dict[str, str]:
        try:
            return await self._ctx.store.verify_templates(account.id)
        except StoreError as exc:
            raise store_problem(exc) from None

    async def _screen(self, account: Account, message: NewMessage, rating: Rating | None,
                      now: float, v: Verification, request: Request, *,
                      exists: bool) -> FraudDecision:  # fmt: skip
        """Ask the pumping defence before anything is stored or charged; a block
        is 403 (:func:`blocked`), the message budget given back. A verification
        whose first SMS is blocked is not created (its decision keeps no id).
        The client's address is the ``ip`` hint, else the request's own (then the
        ``ip_type`` and ``asn`` hints, which describe the end user's, are not used)."""
        hints = v.client
        if "ip" not in hints:
            address = client_address(request.scope, self._ctx.config.trusted_proxies)
            hints = {k: h for k, h in hints.items() if k not in ("ip_type", "asn")}
            if address is not None:
                hints["ip"] = address
        try:
            screening = await self._messages.defence.screen(
                account_id=account.id, to=message.to, use_case=v.use_case,
                message_id=message.id, rating=rating, now=now, hints=hints,
                verification_id=v.id, keep_verification=exists)
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        if screening.refuse:
            self._gate.refund_messages(account, 1, now)
            log.info("verification %s: blocked (%s)", v.id, screening.decision.id)
            raise blocked(screening.decision)
        return screening.decision

    async def _take_send(self, account: Account, now: float, write: Any) -> Any:
        try:
            return await write()
        except SendLimitExceeded as exc:
            self._gate.refund_messages(account, 1, now)
            problem = rate_limited(
                "verification-sends-exceeded",
                f"{exc.limit} verification codes were sent to this number in the last hour;"
                " try again later", exc.retry_at - now)
            raise ApiProblem(problem.status, problem.slug, problem.detail,
                             [FieldError(("to",), "too_many_sends", problem.detail)],
                             problem.headers) from None  # fmt: skip
        except Conflict as exc:
            self._gate.refund_messages(account, 1, now)
            raise ApiProblem(409, "verification-not-pending", str(exc)) from None
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None

    async def _get(self, request: Request, verification_id: str
                   ) -> tuple[float, Account, Verification]:  # fmt: skip
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        if not is_valid_id(verification_id):
            raise _not_found()
        try:
            return now, account, await ctx.store.get_verification(verification_id, account.id)
        except NotFound:
            raise _not_found() from None
        except StoreError as exc:
            raise store_problem(exc) from None

    # -- GET /v1/verifications/{id} ---------------------------------------------------

    async def get(self, request: Request, verification_id: str) -> Response:
        now, account, v = await self._get(request, verification_id)
        try:
            sends = await self._ctx.store.verification_sends(v.id, account.id)
            decisions = await self._ctx.store.list_fraud_decisions(
                account.id, verification_id=v.id, limit=MAX_DECISIONS_SHOWN)
        except StoreError as exc:
            raise store_problem(exc) from None
        view = _view(v, now, self._ctx.verify.max_checks)
        view["messages"] = [s.message_id for s in sends]  # GET /v1/messages/{id}: delivery
        if self._ctx.chat is not None and sends:  # a chain: WhatsApp first (docs/verify.md)
            try:
                if await self._ctx.store.get_chains([sends[0].message_id]):
                    view["channel"] = "whatsapp"
            except StoreError as exc:
                raise store_problem(exc) from None
        # The defence's decision on each SMS (a resend it blocked too), first first.
        view["fraud"] = [decision_view(d) for d in reversed(decisions)]
        return _json(view)

    # -- POST /v1/verifications/{id}/resend ----------------------------------------

    async def resend(self, request: Request, verification_id: str) -> Response:
        ctx = self._ctx
        now, account, v = await self._get(request, verification_id)
        _idempotency_key(request)  # checked, not used: a resend is a new attempt each time
        if v.status_at(now) is not VerificationStatus.PENDING:
            raise ApiProblem(409, "verification-not-pending",
                             f"the verification is {v.status_at(now).label}; start a new one",
                             extra={"verification_status": v.status_at(now).label})
        code = new_code(v.code_length)
        templates = await self._templates(account)
        message, rating = await self._message(account, v.to, render(
            v.locale, v.app, code, ctx.verify.autofill(account.name),
            _template(templates, v.locale)), now)
        salt = new_salt()
        stored = code_hash(ctx.verify_key, salt, code)
        # A verification that went WhatsApp first is resent the same way: its
        # template, its "within", this SMS as the fallback.
        first, last_chain = await self._whatsapp_sends(account, v, now)
        chain = None
        if first is not None and first.template is not None and first.within is not None:
            chain = await self._chain(account, first.template, first.within, message, rating,
                                      code, now)
        del code
        decision = await self._screen(account, message, rating, now, v, request, exists=True)
        sent_as = message.id if chain is None else chain.id
        new: Verification = await self._take_send(
            account, now, lambda: ctx.store.resend_verification(
                v.id, account.id, salt=salt, code_hash=stored, expires_at=now + ctx.verify.ttl,
                message_id=sent_as, now=now, window=SEND_WINDOW,
                limit=ctx.verify.sends_per_hour))  # fmt: skip
        view = _view(new, now, ctx.verify.max_checks, rating)
        view["fraud"] = decision_view(decision)
        if chain is not None:
            view["channel"] = "whatsapp"
            view["messages"] = [chain.id]
        content = json.dumps(view, separators=(",", ":")).encode()
        try:
            if chain is None:
                await self._accept(account, message, rating, now, None, b"", content, 200)
            else:
                await self._accept_chain(account, chain, now, None, b"", content)
        except BaseException:
            await ctx.store.undo_verification_send(v.id, new.sends, v)
            raise
        if last_chain is not None and ctx.chat is not None:
            # The earlier chain's SMS fallback would carry the code that no longer works.
            try:
                await ctx.chat.cancel(last_chain, account.id)
            except StoreError as exc:
                log.warning("verification %s: the earlier chain was not cancelled (%s)",
                            v.id, exc)
        log.info("verification %s: resent as message %s", v.id, sent_as)
        return Response(content, 200, media_type="application/json")

    async def _whatsapp_sends(self, account: Account, v: Verification, now: float
                              ) -> tuple[ChatLeg | None, str | None]:  # fmt: skip
        """The WhatsApp leg of the verification's first send when that was a
        chain (None: it went by SMS), and the id of its last send if that is a
        chain still under way."""
        ctx = self._ctx
        if ctx.chat is None:
            return None, None
        try:
            sends = await ctx.store.verification_sends(v.id, account.id)
            ids = list(dict.fromkeys((sends[0].message_id, sends[-1].message_id))) \
                if sends else []
            chains = await ctx.store.get_chains(ids)
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        first = chains.get(ids[0]) if ids else None
        last = chains.get(ids[-1]) if ids else None
        leg = first.legs[0] if first is not None and first.legs[0].channel == "whatsapp" \
            else None
        return leg, None if last is None or last.status.final else last.id

    # -- POST /v1/verifications/{id}/check ------------------------------------------

    async def check(self, request: Request, verification_id: str) -> Response:
        ctx = self._ctx
        now, account, v = await self._get(request, verification_id)
        _, payload = await read_json(request, MAX_VERIFY_BODY_OCTETS)
        if not isinstance(payload, dict):
            raise _invalid("the body must be a JSON object",
                           [FieldError((), "wrong_type", "must be a JSON object")])  # fmt: skip
        errors = [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
                  for k in payload if k != "code"]  # fmt: skip
        code = payload.get("code")
        if code is None:
            errors.append(FieldError(("code",), "required", "Field required"))
        elif not (isinstance(code, str) and code.isascii() and code.isdigit()
                  and MIN_CODE_LENGTH <= len(code) <= MAX_CODE_LENGTH):
            errors.append(FieldError(("code",), "invalid",
                                     f"{MIN_CODE_LENGTH} to {MAX_CODE_LENGTH} digits"))
        if errors:
            raise _invalid("the check was refused; see errors", errors)
        assert isinstance(code, str)
        settings = ctx.verify
        for _ in range(3):  # a resend between the read and the write: hash again
            sends, checks = v.sends, v.checks
            matched = code_matches(ctx.verify_key, v.salt, v.code_hash, code)
            try:
                v = await ctx.store.record_check(v.id, account.id, sends=sends,
                                                 matched=matched, now=now,
                                                 max_checks=settings.max_checks)
            except NotFound:
                raise _not_found() from None
            except StoreError as exc:
                raise store_problem(exc) from None
            if v.sends == sends:
                break
        status = v.status_at(now)
        if matched and status is VerificationStatus.APPROVED and v.checks == checks + 1:
            await self._converted(v, account, now)  # this check approved it
        label = status.label
        if status is VerificationStatus.PENDING and v.checks >= settings.max_checks:
            label = "too_many_attempts"
        log.info("verification %s: checked, %s", v.id, label)
        return _json({"id": v.id, "status": label,
                      "remaining_checks": max(0, settings.max_checks - v.checks)})

    # -- POST /v1/messages/{id}/converted -------------------------------------------

    async def converted(self, request: Request, message_id: str) -> Response:
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        if not is_valid_id(message_id):
            raise ApiProblem(404, "not-found", "no such message")
        try:
            at = await ctx.store.record_conversion(message_id, account.id, now)
        except NotFound:
            raise ApiProblem(404, "not-found", "no such message") from None
        except StoreError as exc:
            raise store_problem(exc) from None
        self._messages.defence.converted(message_id, at)
        return Response(status_code=204)

    # -- POST /v1/conversions ---------------------------------------------------------

    async def conversions(self, request: Request) -> Response:
        """Many conversions at once (``{"message_ids": [...]}``): each recorded and
        fed to the defence as ``POST /v1/messages/{id}/converted`` does."""
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        _, payload = await read_json(request, MAX_VERIFY_BODY_OCTETS * 4)
        ids = payload.get("message_ids") if isinstance(payload, dict) else None
        errors = [] if isinstance(payload, dict) else [
            FieldError((), "wrong_type", "must be a JSON object")]
        if isinstance(payload, dict):
            errors += [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
                       for k in payload if k != "message_ids"]  # fmt: skip
            if not (isinstance(ids, list) and 0 < len(ids) <= MAX_CONVERSIONS
                    and all(isinstance(i, str) for i in ids)):
                errors.append(FieldError(("message_ids",), "invalid",
                                         f"a list of 1 to {MAX_CONVERSIONS} message ids"))
        if errors:
            raise _invalid("the conversions were refused; see errors", errors)
        assert isinstance(ids, list)
        missing: list[str] = []
        for message_id in dict.fromkeys(ids):  # once each, in order
            try:
                if not is_valid_id(message_id):
                    raise NotFound(message_id)
                at = await ctx.store.record_conversion(message_id, account.id, now)
            except NotFound:
                missing.append(message_id)
                continue
            except StoreError as exc:
                raise store_problem(exc) from None
            self._messages.defence.converted(message_id, at)
        return _json({"converted": len(dict.fromkeys(ids)) - len(missing), "not_found": missing})

    async def _converted(self, v: Verification, account: Account, now: float) -> None:
        """A check approved ``v``: its last SMS converted (stored, for a rebuild,
        and told to the defence). A failure here does not undo the approval."""
        try:
            sends = await self._ctx.store.verification_sends(v.id, account.id)
            if sends:
                at = await self._ctx.store.record_conversion(sends[-1].message_id, account.id,
                                                             now)  # fmt: skip
                self._messages.defence.converted(sends[-1].message_id, at)
        except StoreError as exc:
            log.warning("verification %s: its conversion was not recorded (%s)", v.id, exc)

    # -- POST /v1/verifications/{id}/cancel -----------------------------------------

    async def cancel(self, request: Request, verification_id: str) -> Response:
        ctx = self._ctx
        now, account, v = await self._get(request, verification_id)
        try:
            v = await ctx.store.cancel_verification(v.id, account.id, now)
        except NotFound:
            raise _not_found() from None
        except Conflict:
            status = v.status_at(now).label
            raise ApiProblem(409, "verification-not-pending",
                             f"the verification is {status}; it cannot be canceled",
                             extra={"verification_status": status}) from None
        except StoreError as exc:
            raise store_problem(exc) from None
        log.info("verification %s: canceled", v.id)
        return _json(_view(v, now, ctx.verify.max_checks))


# -- routes and their OpenAPI description -----------------------------------------

_HINT_SCHEMA: Final = {"type": "string", "minLength": 1, "maxLength": MAX_CLIENT_HINT_LENGTH}
_CREATE_SCHEMA: Final = {
    "type": "object", "required": ["to"], "additionalProperties": False,
    "properties": {
        "to": {"type": "string", "description": "E.164 number", "maxLength": 32},
        "channel": {"type": "string", "enum": ["sms"], "default": "sms"},
        "code_length": {"type": "integer", "minimum": MIN_CODE_LENGTH,
                        "maximum": MAX_CODE_LENGTH, "default": 6},
        "locale": {"type": "string", "default": "en",
                   "description": "en, de, es, fr, or a locale of the account's own texts"
                   " (GET /v1/verify/templates)"},
        "use_case": {"type": "string", "enum": list(USE_CASES), "default": "other"},
        "app": {"type": "string", "minLength": 1, "maxLength": MAX_APP_LENGTH,
                "description": "The name the SMS shows (default: the account's name)"},
        "ip": {**_HINT_SCHEMA, "description": "The end user's IP address (a hint)"},
        "ip_type": {"type": "string", "enum": list(ADDRESS_TYPES),
                    "description": "The kind of network of the end user's address (a hint;"
                    " else herald's [fraud] address_types, asn_types)"},
        "asn": {"type": "string", "pattern": "^(AS|as)?[0-9]{1,10}$",
                "description": "The AS number of the end user's address (a hint)"},
        "device_id": _HINT_SCHEMA, "platform": _HINT_SCHEMA, "user_id": _HINT_SCHEMA,
    },
}  # fmt: skip
_VIEW_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "approved", "expired", "canceled"]},
        "fraud": {"description": "The pumping defence's decision on the SMS (POST), on"
                  " each SMS (GET, a list): action, reasons and figures (docs/fraud.md)"},
        "to": {"type": "string"}, "channel": {"type": "string"},
        "use_case": {"type": "string"}, "locale": {"type": "string"}, "app": {"type": "string"},
        "code_length": {"type": "integer"}, "created_at": {"type": "string"},
        "expires_at": {"type": "string"}, "sends": {"type": "integer"},
        "checks": {"type": "integer"}, "remaining_checks": {"type": "integer"},
        "price": {"type": "object", "description": "Billed accounts: the SMS's price"},
        "messages": {"type": "array", "items": {"type": "string"},
                     "description": "GET only: the id of each SMS sent, first first"},
    },
}  # fmt: skip
_CHECK_SCHEMA: Final = {
    "type": "object", "required": ["code"], "additionalProperties": False,
    "properties": {"code": {"type": "string", "pattern": "^[0-9]{4,10}$"}},
}
_CHECKED_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string",
                   "enum": ["approved", "pending", "expired", "too_many_attempts", "canceled"]},
        "remaining_checks": {"type": "integer"},
    },
}  # fmt: skip


def _content(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def install_verify(app: Any, routes: VerifyRoutes, problems: Any) -> None:
    """Serve the Verify API on ``app`` (a FastAPI app); ``problems(*codes)``
    documents problem answers."""
    tags = ["verify"]
    security: list[dict[str, list[str]]] = [{"bearer": []}]
    body = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _CREATE_SCHEMA}}}, "security": security}
    app.add_api_route(
        "/v1/verifications", routes.create, methods=["POST"], tags=tags,
        summary="Send a one-time code by SMS",
        description="herald makes the code, sends it (priority `otp`, tag `verify`, charged"
        " like any message) and never answers or logs it. 429 naming `to`: the number had"
        " `[verify] sends_per_hour` codes in the last hour. 403 `fraud-blocked`: the pumping"
        " defence or the account's controls refused the SMS (nothing sent or charged;"
        " docs/fraud.md). docs/verify.md.",
        status_code=201, openapi_extra=body,
        responses={201: _content(_VIEW_SCHEMA, "The verification, pending"),
                   **problems(401, 402, 403, 413, 415, 422, 429, 503)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/verifications/{verification_id}", routes.get, methods=["GET"], tags=tags,
        summary="A verification's status (never its code)", openapi_extra={"security": security},
        responses={200: _content(_VIEW_SCHEMA, "The verification"), **problems(401, 404, 429)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/verifications/{verification_id}/check", routes.check, methods=["POST"], tags=tags,
        summary="Check a code",
        description="`approved`; `pending` (wrong code, `remaining_checks` left); `expired`;"
        " `too_many_attempts` (`[verify] max_checks` used). Compared in constant time.",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": _CHECK_SCHEMA}}}, "security": security},
        responses={200: _content(_CHECKED_SCHEMA, "The outcome"),
                   **problems(401, 404, 415, 422, 429, 503)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/verifications/{verification_id}/resend", routes.resend, methods=["POST"],
        tags=tags, summary="Send a new code for a pending verification",
        description="A new code in a new SMS (the earlier code stops working) and a new"
        " expiry; counted against the number's sends per hour. 409: not pending.",
        openapi_extra={"security": security},
        responses={200: _content(_VIEW_SCHEMA, "The verification"),
                   **problems(401, 402, 403, 404, 409, 422, 429, 503)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/verifications/{verification_id}/cancel", routes.cancel, methods=["POST"],
        tags=tags, summary="Cancel a pending verification",
        description="Its code stops working at once (checks answer `canceled`). 409: not"
        " pending.", openapi_extra={"security": security},
        responses={200: _content(_VIEW_SCHEMA, "The verification, canceled"),
                   **problems(401, 404, 409, 429, 503)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/conversions", routes.conversions, methods=["POST"], tags=["messages"],
        summary="Report that the codes of many messages were entered",
        description="`{\"message_ids\": [...]}`, 1 to 1,000: each as"
        " `POST /v1/messages/{id}/converted`. 200: `converted` (how many), `not_found`"
        " (the ids of no message of the account).",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "required": ["message_ids"],
                       "additionalProperties": False, "properties": {"message_ids": {
                           "type": "array", "items": {"type": "string"}, "minItems": 1,
                           "maxItems": MAX_CONVERSIONS}}}}}}, "security": security},
        responses={200: {"description": "Recorded"},
                   **problems(401, 413, 415, 422, 429, 503)},
    )  # fmt: skip
    app.add_api_route(
        "/v1/messages/{message_id}/converted", routes.converted, methods=["POST"],
        tags=["messages"], status_code=204,
        summary="Report that the code a message carried was entered",
        description="For customers who send their own codes: the conversion time is kept"
        " (the first report) and teaches herald which traffic is real. 204.",
        openapi_extra={"security": security},
        responses={204: {"description": "Recorded"}, **problems(401, 404, 429, 503)},
    )  # fmt: skip
