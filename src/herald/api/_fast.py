"""``POST /v1/messages`` for the plain request, without the framework.

Theory of operation
-------------------
Through FastAPI/Starlette a single send cost about 220-290 us of server CPU
in ``bench/api.py``, most of it the framework's per-request machinery
(middleware, ``Request``, exception wrappers), not the checks. :class:`FastSend`
is called by the app (``_app``) before the framework for ``POST /v1/messages``
and serves the common request itself. It first decides, with nothing yet
charged or stored, whether the request is *plain*:

- no root path, no ``Idempotency-Key``, a Content-Type the route reads as
  JSON and a Content-Length within ``max_body_octets``;
- the whole body, parsed by orjson, is an object whose every field has a type
  the request model takes unchanged (:func:`plain_submission`), not a test,
  and whose ``metadata`` holds no number with a fraction or exponent (orjson
  reads integers beyond 64 bits as floats, the route's parser as integers;
  and the two print some floats differently);
- :func:`validate_submission` accepts it.

Anything else goes to the FastAPI route with the body replayed: it answers
every refusal as it always has (a problem naming the field, 413, 415, ...),
and nothing was counted. So does a request this reading fails on (a bug:
logged with its traceback). A plain request then runs the route's own steps:
:meth:`Gate.admit` (the key, the failed-login throttle, the request rate),
:meth:`Gate.charge_messages`, the account's controls
(:meth:`MessageRoutes.account_errors`: 422 as the route answers), the id, the
price for a billed account (:meth:`MessageRoutes.price_single`), the answer
(rendered by orjson: the same bytes as the route's ``json`` for such a body),
:meth:`MessageRoutes.commit`
(one ``store.accept``, metrics, ``on_accepted``; the id is answered only after
the commit), then ``202`` with ``Location``. Its refusals from here on (401,
429, 422 for an unpriced destination, 402, 503) are the route's
:class:`ApiProblem` answered by the same builder, and it counts
``herald_http_requests_total`` as the app's boundary does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import orjson
from prometheus_client import Counter as PromCounter
from starlette.types import Message, Receive, Scope, Send

from herald.intake import DestinationRules, IntakeError
from herald.store import Priority

from ._auth import Gate
from ._client import client_address
from ._context import ApiContext
from ._messages import JSON_MEDIA_TYPE, MessageRoutes, is_json, media_type
from ._problems import ApiProblem, internal_error, problem_response
from ._render import accepted_view, price_view
from ._submission import Prepared, Submission, plain_submission, validate_submission

__all__ = ["SEND_PATH", "Answer", "FastSend", "Plain"]

log = logging.getLogger("herald.api")

SEND_PATH: Final = "/v1/messages"
_CONTENT_TYPE: Final = JSON_MEDIA_TYPE.encode()


def _has_float(value: object) -> bool:
    """Whether a JSON value holds a float anywhere (iterative: orjson nests 1,024 deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif type(item) is float:
            return True
    return False


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` as the route sees it: the messages already read, then the rest."""
    pending = messages[::-1]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


#: An answer: status, headers (lower-case names) and body.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _problem(problem: ApiProblem) -> Answer:
    response = problem_response(problem)
    return response.status_code, response.raw_headers, bytes(response.body)


@dataclass(slots=True)
class Plain:
    """A plain request, read and validated; nothing charged or stored yet."""

    submission: Submission
    prepared: Prepared
    now: float
    authorization: str | None
    rules: DestinationRules  # what it was checked against (and is priced by)


class FastSend:
    """Serves plain ``POST /v1/messages`` requests; see the module docstring."""

    def __init__(
        self, ctx: ApiContext, gate: Gate, routes: MessageRoutes, requests: PromCounter
    ) -> None:
        self._ctx = ctx
        self._gate = gate
        self._routes = routes
        self._limit = ctx.limits.max_body_octets
        self._requests = requests
        self._counters: dict[int, Callable[[], None]] = {}

    def _count(self, status: int) -> None:
        count = self._counters.get(status)
        if count is None:
            count = self._requests.labels(route=SEND_PATH, code=str(status)).inc
            self._counters[status] = count
        count()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer the request and return ``None``, or return the ``receive`` to
        give the FastAPI route (which then sees the request as it came)."""
        read: list[Message] = []
        try:
            plain = await self._read(scope, receive, read)
        except Exception:  # nothing has happened yet: the route will say what is wrong
            log.exception("the fast path of POST %s failed; the route serves it", SEND_PATH)
            plain = None
        if plain is None:
            return _replaying(read, receive) if read else receive
        status, headers, content = await self.answer(scope, plain)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        return None

    def plain_headers(self, scope: Scope) -> bytes | Literal[False] | None:
        """``False`` if the request's headers rule the fast path out, else its
        ``Authorization`` value (``None``: none). No effect."""
        if scope.get("root_path"):
            return False
        authorization = content_type = content_length = None
        for name, value in scope["headers"]:  # ASGI: names in lower case; the first counts
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"content-length":
                content_length = value if content_length is None else content_length
            elif name == b"idempotency-key":
                return False
        if not (
            content_type is not None
            and is_json(media_type(content_type.decode("latin-1")))
            and content_length is not None
            and content_length.isdigit()
            and int(content_length) <= self._limit
        ):
            return False
        return authorization

    def plain_body(self, body: bytes, authorization: bytes | None) -> Plain | None:
        """The request if its body is plain (see the module docstring), else
        ``None``. No effect; raises only on a bug (the route then serves it)."""
        submission = self._plain(body)
        if submission is None:
            return None
        now = self._ctx.clock()
        rules = self._ctx.destinations()
        try:
            prepared = validate_submission(submission, now, self._ctx.intake,
                                           block_private=self._ctx.block_private_callbacks,
                                           rules=rules)
        except IntakeError:
            return None
        key = None if authorization is None else authorization.decode("latin-1")
        return Plain(submission, prepared, now, key, rules)

    @property
    def max_body(self) -> int:
        """The largest body the fast path reads (larger: the route answers 413)."""
        return self._limit

    async def _read(self, scope: Scope, receive: Receive, read: list[Message]) -> Plain | None:
        """The request if it is plain (see the module docstring), else ``None``;
        ``read`` gets each message taken from ``receive``. No effect."""
        authorization = self.plain_headers(scope)
        if authorization is False:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                return None  # the client left: the route says so
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return self.plain_body(b"".join(chunks), authorization)

    async def answer(self, scope: Scope, plain: Plain) -> Answer:
        """The route's steps from authentication on, for a plain request: the
        answer's status, headers and body (the store's work is done)."""
        client = scope.get("client")
        now = plain.now
        status = 0
        try:
            account = await self._gate.admit(client[0] if client else "", plain.authorization, now)
            await self._gate.charge_messages(account, 1, now)
            refusals = self._routes.account_errors(account.id, plain.prepared)
            if refusals:  # the account's controls (docs/accounts.md): answered as the route does
                self._gate.refund_messages(account, 1, now)
                raise self._routes.refuse(refusals)
            accepted = plain.prepared.message(
                self._ctx.ids.new_id(now), account.id, now,
                default_priority=self._routes.priority_for(account, plain.prepared, now))
            view = accepted_view(accepted, plain.submission.metadata, test=False)
            rating = self._routes.price_single(account, accepted, plain.rules, now)
            if accepted.priority is Priority.OTP:  # the pumping defence, if enabled
                await self._routes.screen(account, accepted, rating, now, client_address(
                    scope, self._ctx.config.trusted_proxies))
            if rating is not None:  # a billed account: priced, charged with the commit
                view["price"] = price_view(rating)
            content = orjson.dumps(view)
            await self._routes.commit([accepted], account, None, b"", 202, content, now,
                                      None if rating is None else [rating.charge()])
            status = 202
            return 202, [
                (b"location", f"{SEND_PATH}/{accepted.id}".encode()),
                (b"content-length", str(len(content)).encode()),
                (b"content-type", _CONTENT_TYPE),
            ], content  # fmt: skip
        except ApiProblem as problem:
            status = problem.status
            return _problem(problem)
        except Exception:
            log.exception("unhandled error in POST %s", SEND_PATH)
            status = 500
            return _problem(internal_error())
        finally:
            self._count(status)

    @staticmethod
    def _plain(body: bytes) -> Submission | None:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if type(payload) is not dict:
            return None
        submission = plain_submission(payload)
        if submission is None or submission.test:
            return None
        if submission.metadata is not None and _has_float(submission.metadata):
            return None
        return submission
