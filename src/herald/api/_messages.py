"""The ``/v1/messages`` endpoints: send one, send a batch, read one, list, cancel one.

Theory of operation
-------------------
A send runs, in order: authentication and the request rate (``_auth``), the
Idempotency-Key header, reading the body within its size limit, JSON
parsing, an idempotent replay if the key was seen, the message rate (a batch
counts its messages), the field types (``plain_submission``; the strict
pydantic model only for a message it leaves, to name each wrong field), the
intake checks (:mod:`herald.intake`), id generation and one ``store.accept`` for
every valid message of the request. The answer is rendered *before* the
commit so the idempotency record (the exact answer, for replay) is written
in the same transaction as the messages; the client hears the ids only after
that commit. ``on_accepted`` then wakes dispatch.

The per-request work is small on purpose: no store read on the hot path
(accounts and verified keys are cached, the idempotency read happens only
when the header is present), one write, JSON in and out. A plain single send
does not even reach these handlers: ``_fast`` serves it before the framework
with the same steps (:meth:`MessageRoutes.commit` among them) and hands
everything else here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import orjson
from fastapi import Query
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from herald.billing import Unpriced, rate
from herald.defence import LiveDefence
from herald.ids import is_valid_id
from herald.intake import (
    DestinationRules,
    IntakeError,
    next_quota_day,
    normalize_destination,
    parse_time,
)
from herald.rating import Rating, from_micros
from herald.store import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_PAGE_SIZE,
    MAX_REFERENCE_LENGTH,
    Account,
    ChangeOutcome,
    Charge,
    FraudDecision,
    IdempotencyMismatch,
    IdempotencyRecord,
    InsufficientFunds,
    InvalidRecord,
    MessageFilter,
    MessageNotFound,
    NewMessage,
    Priority,
    QuotaExceeded,
    Status,
    StoreError,
)

from ._auth import Gate
from ._blocked import blocked, decision_view, fraud_error
from ._client import client_address
from ._context import ApiContext
from ._models import MessageRequest

if TYPE_CHECKING:
    from ._chains import ChainRoutes
from ._problems import (
    ApiProblem,
    FieldError,
    insufficient_funds,
    intake_field_errors,
    pydantic_field_errors,
    rate_limited,
    shutting_down,
    store_problem,
    unpriced,
)
from ._render import accepted_view, deliveries_view, message_view, price_view, route_view
from ._submission import (
    SUBMISSION_FIELDS,
    Prepared,
    Submission,
    plain_submission,
    validate_submission,
)

__all__ = ["JSON_MEDIA_TYPE", "MessageRoutes", "StatusLabel", "is_json", "media_type"]

log = logging.getLogger("herald.api")

JSON_MEDIA_TYPE: Final = "application/json"
#: Field errors listed at the top of a refused batch's problem (every refusal
#: is in its ``results`` anyway).
MAX_LISTED_ERRORS: Final = 100
#: A batch is validated in slices of this many messages, giving the event loop
#: to other requests in between (validation is CPU work: ~50 us a message).
YIELD_EVERY: Final = 256
#: Messages one ``DELETE /v1/messages?reference=`` cancels at most (one
#: bounded write; the answer says when to send it again).
MAX_CANCEL_BY_REFERENCE: Final = 10_000
#: Stored answers are compressed: a 10,000-message batch answer (about 1 MB
#: of JSON) must fit the store's idempotency record limit with room to spare.
_IDEMPOTENCY_COMPRESSION: Final = 1

StatusLabel = Literal[
    "accepted", "queued", "sent", "delivered", "undelivered", "expired", "rejected", "failed",
    "cancelled",
]

# The query parameters of GET /v1/messages (FastAPI validates them: 422 problem).
_StatusQuery = Annotated[StatusLabel | None, Query(description="Only this status.")]
_ToQuery = Annotated[
    str | None, Query(description="Only to this number (E.164).", max_length=32)
]
_ReferenceQuery = Annotated[
    str | None, Query(description="Only with this reference.", max_length=128)
]
_SinceQuery = Annotated[
    str | None, Query(description="Accepted at or after (epoch seconds or RFC 3339).")
]
_UntilQuery = Annotated[
    str | None, Query(description="Accepted before (epoch seconds or RFC 3339).")
]
_CancelReference = Annotated[str, Query(
    min_length=1, max_length=MAX_REFERENCE_LENGTH,
    description="Cancel the waiting messages sent with this reference.")]
_LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size.")]
_CursorQuery = Annotated[
    str | None, Query(description="next_cursor of the previous page.", max_length=64)
]
_TypeQuery = Annotated[Literal["sms", "chain"], Query(
    alias="type",
    description="sms (the default): messages; chain: channel chains (docs/channels.md).")]


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(value), status, headers, media_type=JSON_MEDIA_TYPE)


def _invalid(detail: str, errors: Sequence[FieldError], **extra: Any) -> ApiProblem:
    return ApiProblem(422, "invalid-request", detail, errors, extra=extra)


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lower case, without parameters."""
    return content_type.partition(";")[0].strip().lower()


def is_json(media: str) -> bool:
    """Whether a body of this media type is read as JSON."""
    structured = media.startswith("application/") and media.endswith("+json")  # RFC 6839
    return media == JSON_MEDIA_TYPE or structured


async def read_json(request: Request, limit: int) -> tuple[bytes, object]:
    """The raw body (at most ``limit`` octets) and its JSON value; raises 415/413/400."""
    media = media_type(request.headers.get("content-type", ""))
    if not is_json(media):
        raise ApiProblem(
            415, "unsupported-media-type",
            f"send the body as {JSON_MEDIA_TYPE} (Content-Type was {media or 'missing'})",
        )
    too_large = ApiProblem(413, "payload-too-large", f"the body may have at most {limit} octets")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return raw, json.loads(raw)
    except json.JSONDecodeError as exc:
        detail = f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
    except (ValueError, RecursionError):  # not UTF-8/16/32, or nested too deep
        detail = "the body is not a JSON document in UTF-8"
    raise ApiProblem(400, "malformed-json", detail)


def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get("idempotency-key")
    if value is None:
        return None
    if not (
        0 < len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH and value.isascii() and value.isprintable()
    ):
        raise ApiProblem(
            400, "bad-request", "the Idempotency-Key header is malformed",
            [FieldError(
                ("Idempotency-Key",), "invalid",
                f"1..{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters", "header",
            )],
        )  # fmt: skip
    return value


def _replay(record: IdempotencyRecord) -> Response:
    return Response(
        zlib.decompress(record.response), record.status_code,
        {"Idempotent-Replayed": "true"}, media_type=JSON_MEDIA_TYPE,
    )  # fmt: skip


def _mismatch() -> ApiProblem:
    return ApiProblem(
        422, "idempotency-mismatch",
        "this Idempotency-Key was used in the last 24 hours for a different request",
        [FieldError(("Idempotency-Key",), "mismatch", "was used with another body", "header")],
    )  # fmt: skip


def _submission(model: MessageRequest) -> Submission:
    return Submission(
        model.to, model.from_, model.text, model.binary, model.encoding, model.reference,
        model.metadata, model.callback_url, model.validity_period, model.send_at, model.test,
        model.callback_events, model.priority, model.tag,
    )  # fmt: skip


class MessageRoutes:
    """The handlers, bound to one :class:`ApiContext`."""

    def __init__(self, ctx: ApiContext, gate: Gate) -> None:
        self._ctx = ctx
        self._gate = gate
        self._accepted = ctx.metrics.accepted.labels(source="http")
        # A listing filter names a number already accepted: it need only be
        # possible (the numbering plan may have changed since), test ranges included.
        self._listing_policy = replace(ctx.intake, require_valid_number=False)
        # The pumping defence (docs/fraud.md, "Live"): verifications, and the OTP
        # messages of the accounts that enable it (screen).
        self.defence = ctx.defence or LiveDefence(ctx.store, ctx.ids)
        # Channel chains (docs/channels.md): set by the app when chat channels exist.
        self.chains: ChainRoutes | None = None

    # -- shared steps --------------------------------------------------------------

    def _refused(self, codes: Counter[str]) -> None:
        for code, n in codes.items():
            self._ctx.metrics.rejected_at_intake.labels(source="http", reason=code).inc(n)

    def account_errors(
        self, account_id: int, prepared: Prepared, prefix: tuple[str | int, ...] = ()
    ) -> list[FieldError]:
        """The refusals of the account's controls and opt-out list (docs/accounts.md)."""
        controls = self._gate.controls
        rules = controls.rules(account_id)
        opted_out = controls.opted_out(account_id)
        if not (opted_out or rules.checks_messages):
            return []
        try:
            rules.check(prepared.to, prepared.sender.value, opted_out)
        except IntakeError as exc:
            return intake_field_errors(exc, prefix)
        return []

    def priority_for(self, account: Account, prepared: Prepared, now: float) -> Priority | None:
        """The class of a message whose request named none: a ``[[classes]]``
        entry's, else the account's (``docs/routing.md``, "Classes")."""
        classes = self._ctx.classes
        if classes is None or prepared.priority is not None:
            return account.priority
        return classes.of(account.id, account.name, prepared.to, prepared.sender.value,
                          prepared.tag, account.priority, now)

    async def screen(self, account: Account, message: NewMessage, rating: Rating | None,
                     now: float, address: str | None = None) -> None:
        """Ask the defence about an OTP message if its account enables it
        (``otp_messages``); a block is the 403 :func:`blocked` (the rate charge
        given back, nothing stored or charged). Called for priority otp only.
        ``address``: the client's (:func:`client_address`), its ``ip`` hint."""
        try:
            refusal = await self.refusal(account, message, rating, now, address)
        except StoreError as exc:
            self._gate.refund_messages(account, 1, now)
            raise store_problem(exc) from None
        if refusal is not None:
            self._gate.refund_messages(account, 1, now)
            raise blocked(refusal)

    async def refusal(self, account: Account, message: NewMessage, rating: Rating | None,
                      now: float, address: str | None = None) -> FraudDecision | None:
        """The defence's decision refusing an OTP message of an account that enables
        ``otp_messages``; ``None``: send it. Raises the store's errors."""
        return await self.defence.refusal(account.id, message, rating, now,
                                          None if address is None else {"ip": address})

    def refuse(self, errors: list[FieldError]) -> ApiProblem:
        """The 422 answer to one message refused for ``errors`` (counted)."""
        self._refused(Counter(e.code for e in errors))
        return _invalid("the message was refused; see errors", errors)

    async def _begin(
        self, request: Request, limit: int
    ) -> tuple[float, Account, object, str | None, bytes, Response | None]:
        """Authenticate, read the body, and replay if the Idempotency-Key was seen."""
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        key = _idempotency_key(request)
        raw, payload = await read_json(request, limit)
        digest = b""
        if key is not None:
            digest = hashlib.sha256(
                f"{request.method} {request.url.path}\n".encode() + raw
            ).digest()
            try:
                earlier = await ctx.store.get_idempotency(account.id, key, now)
            except StoreError as exc:
                raise store_problem(exc) from None
            if earlier is not None:
                if earlier.request_hash != digest:
                    raise _mismatch()
                return now, account, payload, key, digest, _replay(earlier)
        return now, account, payload, key, digest, None

    async def commit(
        self,
        messages: list[NewMessage],
        account: Account,
        key: str | None,
        digest: bytes,
        status: int,
        content: bytes,
        now: float,
        charges: Sequence[Charge] | None = None,
    ) -> Response | None:
        """Store the messages (and the answer, under ``key``; and take their
        ``charges`` from the balance); a replay if one raced us.

        Once herald is stopping nothing more is stored: 503 with Retry-After
        (another herald, or this one restarted, will take the message). A
        balance that does not cover the charges: 402, nothing stored.
        """
        ctx = self._ctx
        if ctx.stopping():
            self._gate.refund_messages(account, len(messages), now)
            raise shutting_down()
        record = None
        if key is not None:
            stored = zlib.compress(content, _IDEMPOTENCY_COMPRESSION)
            if len(stored) > ctx.limits.max_idempotent_response_octets:
                self._gate.refund_messages(account, len(messages), now)
                raise ApiProblem(
                    413, "payload-too-large",
                    "the answer is too large to keep for Idempotency-Key replay; send fewer"
                    " messages per request",
                )  # fmt: skip
            record = IdempotencyRecord(
                account.id, key, digest, status, stored, now, now + ctx.limits.idempotency_ttl
            )
        try:
            earlier = await ctx.store.accept(
                messages, idempotency=record, quota=self._gate.controls.quota(account.id, now),
                charges=charges)
        except QuotaExceeded as exc:
            self._gate.refund_messages(account, len(messages), now)
            raise rate_limited(
                "daily-quota-exceeded",
                f"the account's daily quota of {exc.limit} is used up ({exc.used} used today,"
                f" {exc.wanted} asked); it renews at 00:00 UTC", next_quota_day(now),
            ) from None
        except InsufficientFunds:
            self._gate.refund_messages(account, len(messages), now)
            self._refused(Counter(insufficient_funds=len(messages)))
            assert charges is not None
            raise insufficient_funds(from_micros(sum(c.amount for c in charges))) from None
        except IdempotencyMismatch:
            self._gate.refund_messages(account, len(messages), now)
            raise _mismatch() from None
        except StoreError as exc:
            self._gate.refund_messages(account, len(messages), now)
            raise store_problem(exc) from None
        if earlier is not None:  # the same request, concurrently: answer as it was answered
            self._gate.refund_messages(account, len(messages), now)
            return _replay(earlier)
        self._accepted.inc(len(messages))
        try:
            ctx.on_accepted(messages)
        except Exception:  # the messages are durable; dispatch will find them anyway
            log.exception("on_accepted failed for %d messages", len(messages))
        return None

    def price_single(
        self, account: Account, message: NewMessage, rules: DestinationRules, now: float
    ) -> Rating | None:
        """The price of a single send (``None``: the account is not billed).
        A destination its list does not price: the 422 the route answers
        (the message's rate charge given back)."""
        prices = self._ctx.prices(account.id)
        if prices is None:
            return None
        try:
            return rate(prices, message.to, message.segments, rules)
        except Unpriced:
            self._gate.refund_messages(account, 1, now)
            self._refused(Counter(unpriced=1))
            raise _invalid("the message was refused; see errors", [unpriced()]) from None

    def _prepare(
        self,
        item: object,
        prefix: tuple[str | int, ...],
        now: float,
        codes: Counter[str],
        rules: DestinationRules,
        account_id: int,
    ) -> tuple[Submission, Prepared] | list[FieldError]:
        if not isinstance(item, dict):
            codes["wrong_type"] += 1
            return [FieldError(prefix, "wrong_type", "must be a JSON object")]
        # The model only when a field is unknown, missing or of another type: it
        # names each; otherwise both give the same submission (see _submission).
        submission = plain_submission(item)
        if submission is None:
            try:
                submission = _submission(MessageRequest.model_validate(item))
            except ValidationError as exc:
                errors = pydantic_field_errors(exc.errors(include_url=False), prefix)
                errors.extend(self._partial(item, {e.path[len(prefix)] for e in errors
                                                   if len(e.path) > len(prefix)}, prefix, now,
                                            rules))
                codes.update(e.code for e in errors)
                return errors
        try:
            prepared = validate_submission(submission, now, self._ctx.intake,
                                           block_private=self._ctx.block_private_callbacks,
                                           rules=rules)
        except IntakeError as exc:
            errors = intake_field_errors(exc, prefix)
        else:
            errors = self.account_errors(account_id, prepared, prefix)
            if not errors:
                return submission, prepared
        codes.update(e.code for e in errors)
        return errors

    def _partial(
        self,
        item: dict[str, Any],
        bad: set[str | int],
        prefix: tuple[str | int, ...],
        now: float,
        rules: DestinationRules,
    ) -> list[FieldError]:
        """Intake errors of the fields that passed the type checks, so one answer
        names every problem even when some fields have the wrong type."""
        fields = {k: v for k, v in item.items() if k in SUBMISSION_FIELDS and k not in bad}
        fields.setdefault("encoding", "auto")
        sub = Submission(
            fields.get("to", ""), fields.get("from", ""), fields.get("text"),
            fields.get("binary"), fields["encoding"], fields.get("reference"),
            fields.get("metadata"), fields.get("callback_url"), fields.get("validity_period"),
            fields.get("send_at"), False, fields.get("callback_events"),
            fields.get("priority"), fields.get("tag"),
        )  # fmt: skip
        try:
            validate_submission(sub, now, self._ctx.intake,
                                block_private=self._ctx.block_private_callbacks, rules=rules)
        except IntakeError as exc:
            return [e for e in intake_field_errors(exc, prefix) if e.path[-1] not in bad
                    and (e.path[-1] in fields or e.code != "required")]  # fmt: skip
        return []

    # -- POST /v1/messages -------------------------------------------------------

    async def send(self, request: Request) -> Response:
        ctx = self._ctx
        now, account, payload, key, digest, replay = await self._begin(
            request, ctx.limits.max_body_octets
        )
        if replay is not None:
            return replay
        if isinstance(payload, dict) and "channels" in payload and self.chains is not None:
            return await self.chains.send(now, account, payload, key, digest)  # _chains
        test = isinstance(payload, dict) and payload.get("test") is True
        await self._gate.charge_messages(account, 0 if test else 1, now)
        codes: Counter[str] = Counter()
        rules = ctx.destinations()
        outcome = self._prepare(payload, (), now, codes, rules, account.id)
        prices = ctx.prices(account.id)
        rating = None
        if not isinstance(outcome, list) and prices is not None:
            try:
                rating = rate(prices, outcome[1].to, outcome[1].body.segments, rules)
            except Unpriced:
                codes["unpriced"] += 1
                outcome = [unpriced()]
        if isinstance(outcome, list):
            self._gate.refund_messages(account, 0 if test else 1, now)
            self._refused(codes)
            raise _invalid("the message was refused; see errors", outcome)
        submission, prepared = outcome
        if submission.test:  # validated and priced, not stored, not charged
            view = accepted_view(prepared.message(
                "test", account.id, now,
                default_priority=self.priority_for(account, prepared, now)),
                submission.metadata, test=True)  # fmt: skip
            if rating is not None:
                view["price"] = price_view(rating)
            return _json(view)
        message = prepared.message(ctx.ids.new_id(now), account.id, now,
                                   default_priority=self.priority_for(account, prepared, now))
        if message.priority is Priority.OTP:
            await self.screen(account, message, rating, now,
                              client_address(request.scope, ctx.config.trusted_proxies))
        view = accepted_view(message, submission.metadata, test=False)
        if rating is not None:
            view["price"] = price_view(rating)
        content = _dumps(view)
        replay = await self.commit([message], account, key, digest, 202, content, now,
                                   None if rating is None else [rating.charge()])
        if replay is not None:
            return replay
        return Response(
            content, 202, {"Location": f"/v1/messages/{message.id}"}, media_type=JSON_MEDIA_TYPE
        )

    # -- POST /v1/messages/batch -------------------------------------------------

    async def send_batch(self, request: Request) -> Response:
        ctx = self._ctx
        now, account, payload, key, digest, replay = await self._begin(
            request, ctx.limits.max_batch_body_octets
        )
        if replay is not None:
            return replay
        items = self._batch_items(payload)
        count = sum(
            1 for item in items if not (isinstance(item, dict) and item.get("test") is True)
        )
        await self._gate.charge_messages(account, count, now)
        results: list[dict[str, Any]] = []
        messages: list[NewMessage] = []
        refusals: list[FieldError] = []
        codes: Counter[str] = Counter()
        new_id = ctx.ids.new_id
        rules = ctx.destinations()  # one set of tables for the whole batch
        prices = ctx.prices(account.id)  # and one price list
        charges: list[Charge] | None = None if prices is None else []
        address: str | None = None  # the client's, read for the first OTP message
        for index, item in enumerate(items):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # let other requests in: a full batch takes a while
            outcome = self._prepare(item, ("messages", index), now, codes, rules, account.id)
            rating = None
            if not isinstance(outcome, list) and prices is not None:
                try:
                    rating = rate(prices, outcome[1].to, outcome[1].body.segments, rules)
                except Unpriced:
                    codes["unpriced"] += 1
                    outcome = [unpriced(("messages", index))]
            if isinstance(outcome, list):
                refusals.extend(outcome)
                results.append({"index": index, "status": "refused",
                                "errors": [e.as_json() for e in outcome]})  # fmt: skip
                continue
            submission, prepared = outcome
            body = prepared.body
            entry: dict[str, Any] = {"index": index, "status": "validated"}
            if not submission.test:
                message = prepared.message(
                    new_id(now), account.id, now,
                    default_priority=self.priority_for(account, prepared, now))
                if message.priority is Priority.OTP:  # the pumping defence, if enabled
                    if address is None:
                        address = client_address(request.scope, ctx.config.trusted_proxies)
                    try:
                        refusal = await self.refusal(account, message, rating, now, address)
                    except StoreError as exc:
                        self._gate.refund_messages(account, count, now)
                        raise store_problem(exc) from None
                    if refusal is not None:
                        codes["fraud_blocked"] += 1
                        error = fraud_error(refusal, ("messages", index, "to"))
                        refusals.append(error)
                        results.append({"index": index, "status": "refused",
                                        "errors": [error.as_json()],
                                        "decision": decision_view(refusal)})  # fmt: skip
                        continue
                messages.append(message)
                entry = {"index": index, "status": "accepted", "id": message.id}
                if charges is not None and rating is not None:
                    charges.append(rating.charge())
            entry["segments"] = body.segments
            entry["encoding"] = body.encoding.value
            if rating is not None:
                entry["price"] = price_view(rating)
            results.append(entry)
        self._gate.refund_messages(account, count - len(messages), now)
        self._refused(codes)
        refused = len(items) - sum(1 for r in results if r["status"] != "refused")
        summary = {"accepted": len(messages), "refused": refused, "results": results}
        if refused == len(items):
            shown = refusals[:MAX_LISTED_ERRORS]
            more = f" (the first {len(shown)} of {len(refusals)} are listed)" if len(
                refusals) > len(shown) else ""  # fmt: skip
            raise _invalid(f"none of the {len(items)} messages was accepted{more}", shown,
                           **summary)  # fmt: skip
        status = 202 if messages else 200
        # orjson: the same bytes as _dumps for this shape (no floats; strings are
        # escaped alike), 0.5 ms instead of 11 for 10,000 results.
        content = orjson.dumps(summary)
        if messages:
            replay = await self.commit(messages, account, key, digest, status, content, now,
                                       charges)
            if replay is not None:
                return replay
        return Response(content, status, media_type=JSON_MEDIA_TYPE)

    def _batch_items(self, payload: object) -> list[object]:
        limit = self._ctx.limits.max_batch_messages
        if not isinstance(payload, dict):
            raise _invalid("the body must be a JSON object",
                           [FieldError((), "wrong_type", "must be a JSON object")])  # fmt: skip
        unknown = [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
                   for k in payload if k != "messages"]  # fmt: skip
        if unknown:
            raise _invalid("the batch has unknown fields", unknown)
        items = payload.get("messages")
        if not isinstance(items, list):
            code = "required" if items is None else "wrong_type"
            raise _invalid("messages must be a list of messages",
                           [FieldError(("messages",), code, "must be a list")])  # fmt: skip
        if not 1 <= len(items) <= limit:
            code = "too_short" if not items else "too_long"
            raise _invalid(f"a batch has 1 to {limit} messages",
                           [FieldError(("messages",), code, f"has {len(items)} messages;"
                                       f" a batch has 1 to {limit}")])  # fmt: skip
        return items

    # -- GET /v1/messages/{id} ---------------------------------------------------------

    async def get(self, request: Request, message_id: str) -> Response:
        ctx = self._ctx
        account = await self._gate.authenticate(request, ctx.clock())
        if not is_valid_id(message_id):
            raise ApiProblem(404, "not-found", "no such message")
        try:
            try:
                message = await ctx.store.get_message(message_id, account_id=account.id)
            except MessageNotFound:  # a channel chain's id, perhaps (_chains)
                chain = None if self.chains is None else await self.chains.view(message_id,
                                                                                account.id)
                if chain is None:
                    raise
                return _json(chain)
            failed = await ctx.store.failed_deliveries(message_id, account.id)
            routes = await ctx.store.get_message_routes([message_id])
        except StoreError as exc:
            raise store_problem(exc) from None
        view = message_view(message)
        view["route"] = route_view(routes.get(message_id))
        view["webhooks"] = deliveries_view(failed)
        return _json(view)

    # -- DELETE /v1/messages/{id} ---------------------------------------------------

    async def cancel(self, request: Request, message_id: str) -> Response:
        """Cancel a message that has not gone out (``Store.cancel``): 200 and the
        message, ``cancelled`` (again if it was already); 404; 409 when too late
        or while dispatch holds it."""
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        if not is_valid_id(message_id):
            raise ApiProblem(404, "not-found", "no such message")
        try:
            result = await ctx.store.cancel(message_id, now, account_id=account.id)
        except MessageNotFound:  # a channel chain's id, perhaps (_chains)
            if self.chains is None:
                raise ApiProblem(404, "not-found", "no such message") from None
            return await self.chains.cancel(message_id, account.id)
        except StoreError as exc:
            raise store_problem(exc) from None
        message = result.message
        if result.outcome is ChangeOutcome.IN_PROGRESS:
            raise ApiProblem(
                409, "cancel-in-progress",
                "the message is being submitted upstream and can no longer be cancelled,"
                " unless dispatch gives it back (no connector can take it now): try again"
                " in a few seconds", extra={"message_status": message.status.label},
            )  # fmt: skip
        if result.outcome is ChangeOutcome.TOO_LATE and message.status is not Status.CANCELLED:
            went = ("it has been submitted upstream" if message.status < Status.DELIVERED
                    else f"it is {message.status.label} already")
            raise ApiProblem(409, "cancel-too-late", f"the message cannot be cancelled: {went}",
                             extra={"message_status": message.status.label})  # fmt: skip
        return _json(message_view(message))

    # -- DELETE /v1/messages?reference= ---------------------------------------------

    async def cancel_by_reference(self, request: Request,
                                  reference: _CancelReference) -> Response:
        """Cancel the account's waiting messages with ``reference`` (a campaign),
        up to :data:`MAX_CANCEL_BY_REFERENCE`: 200 and their ids. Its chains
        first (``_chains``: no leg starts after the cancel), so that a chain's
        waiting SMS leg is cancelled as part of its chain."""
        ctx = self._ctx
        now = ctx.clock()
        account = await self._gate.authenticate(request, now)
        try:
            chains = [] if self.chains is None else await self.chains.cancel_by_reference(
                account.id, reference, MAX_CANCEL_BY_REFERENCE)
            room = MAX_CANCEL_BY_REFERENCE - len(chains)
            cancelled = () if room <= 0 else await ctx.store.cancel_matching(
                account.id, now, limit=room, reference=reference)
        except StoreError as exc:
            raise store_problem(exc) from None
        return _json({"cancelled": [*chains, *cancelled]})

    # -- GET /v1/messages ----------------------------------------------------------

    async def list_messages(
        self,
        request: Request,
        status: _StatusQuery = None,
        to: _ToQuery = None,
        reference: _ReferenceQuery = None,
        since: _SinceQuery = None,
        until: _UntilQuery = None,
        limit: _LimitQuery = 100,
        cursor: _CursorQuery = None,
        kind: _TypeQuery = "sms",
    ) -> Response:
        ctx = self._ctx
        account = await self._gate.authenticate(request, ctx.clock())
        errors: list[FieldError] = []

        def checked(name: str, fn: Any, value: str | None) -> Any:
            if value is None:
                return None
            try:
                return fn(value)
            except IntakeError as exc:
                errors.append(FieldError((name,), exc.code, exc.message, "query"))
                return None

        number = checked("to", lambda v: normalize_destination(
            v, field="to", policy=self._listing_policy), to)  # fmt: skip
        start = checked("since", lambda v: _query_time(v, "since"), since)
        end = checked("until", lambda v: _query_time(v, "until"), until)
        if errors:
            raise _invalid("the query has invalid parameters", errors)
        query = MessageFilter(
            account.id, None if status is None else Status[status.upper()], number, reference,
            start, end, limit,
        )  # fmt: skip
        try:
            if kind == "chain":  # a table of their own (_chains): the SMS query is untouched
                if self.chains is None:
                    return _json({"messages": [], "next_cursor": None})
                return _json(await self.chains.listing(query, cursor))
            page = await ctx.store.list_messages(query, cursor)
        except InvalidRecord as exc:
            if exc.field != "cursor":
                raise
            raise ApiProblem(400, "bad-request", "the cursor is not one this API returned",
                             [FieldError(("cursor",), "invalid", "not a next_cursor of this API",
                                         "query")]) from None  # fmt: skip
        except StoreError as exc:
            raise store_problem(exc) from None
        return _json({
            "messages": [message_view(m) for m in page.messages],
            "next_cursor": page.next_cursor,
        })  # fmt: skip


def _query_time(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        return parse_time(value, field=name)
    return parse_time(number, field=name)
