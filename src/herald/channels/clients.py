"""The chat-channel adapters: HTTP to the WhatsApp Cloud API and to a Viber provider.

The only I/O of ``herald.channels``: the request bodies, the answers' meaning,
signatures and pacing are the pure modules'. Both adapters use ``httpx``
(herald's webhook client, ``herald.webhooks._http``, returns no body of a 2xx
answer, and a send's answer *is* its body: the provider's id).

Theory of operation
-------------------
``submit`` waits for a slot of its sending number (:class:`~herald.channels._pace.Pacer`),
POSTs, and reads the answer:

- accepted: the number's back-off is reset; ``Accepted(provider_id)``;
- throttled (WhatsApp 130429, a provider's 429): the number pauses (doubling)
  and the same request is sent again, up to ``max_throttle_retries`` times; a
  throttled send never fails while its retries last, and nothing of it was taken;
- transient (a provider error answer, or no connection): sent again after
  ``retry_delay``, up to ``max_transient_retries`` times, then returned for the
  caller to fail over. A request that went out and got no answer (a read
  timeout, a connection lost mid-answer) is *not* sent again: the provider may
  have taken it, and a second send would reach the user twice;
- permanent: returned at once.

``events`` verifies the webhook's signature over the raw body before reading a
byte of it (a bad signature raises and changes nothing), then maps it.

Tokens and secrets are never logged; recipients are phone numbers (and WhatsApp
ids are treated like them): not logged either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from herald.channels._codes import ChannelErrorCode, ErrorClass, ErrorMeaning
from herald.channels._pace import Pacer, PaceSettings
from herald.channels._port import InboundChat, ProviderEvent, Rejected, Submission, SubmitResult
from herald.channels._signature import WHATSAPP_SCHEME, header_value
from herald.channels._templates import (
    TemplateSpec,
    TemplateState,
    parse_done_answer,
    parse_template_answer,
    parse_template_list,
    template_body,
    template_edit_body,
    template_path,
    templates_path,
)
from herald.channels._viber import (
    ViberSettings,
    parse_callbacks,
    parse_viber_inbound,
    send_body,
)
from herald.channels._viber import parse_send_answer as parse_viber_answer
from herald.channels._whatsapp import (
    DEFAULT_API_VERSION,
    message_body,
    message_path,
    parse_inbound,
    parse_send_answer,
    parse_status_webhook,
    parse_template_webhook,
)

__all__ = ["ChannelCounters", "ViberClient", "WhatsAppClient", "WhatsAppSettings"]

#: Requests one adapter has in flight at once: beyond this a send waits for a
#: place (not for the HTTP pool, whose wait would count against its timeout).
MAX_IN_FLIGHT: Final = 32
#: Octets of an answer body read: a send's answer is a few hundred.
MAX_ANSWER_BODY: Final = 64 * 1024
#: Pages of a template list read (100 templates each; Meta allows 250 a account
#: before verification, 6,000 after).
MAX_TEMPLATE_PAGES: Final = 60
#: Octets of one page of a template list.
MAX_LIST_BODY: Final = 4 * 1024 * 1024
_NO_ANSWER: Final = ErrorMeaning(ChannelErrorCode.PROVIDER_UNAVAILABLE, ErrorClass.TRANSIENT)
#: Failures that leave the request unsent: safe to send again.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class WhatsAppSettings:
    """A Cloud API account: ``base_url`` (``https://graph.facebook.com``, or a
    fake's), the access ``token``, the Meta app's ``app_secret`` (it signs the
    webhooks), pacing per phone number id, retries, and ``timeout`` seconds per request."""

    base_url: str
    token: str = field(repr=False)
    app_secret: str = field(repr=False)
    api_version: str = DEFAULT_API_VERSION
    pace: PaceSettings = field(default_factory=PaceSettings)
    timeout: float = 10.0
    max_throttle_retries: int = 10
    max_transient_retries: int = 2
    retry_delay: float = 0.5
    #: The WhatsApp Business Account whose templates ``/v1/templates`` manages
    #: (None: templates are managed in Meta's tools only).
    business_account_id: str | None = None

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if self.business_account_id is not None and not self.business_account_id.isdigit():
            raise ValueError("business_account_id is decimal digits")
        if not self.token or not self.app_secret:
            raise ValueError("a WhatsApp account needs an access token and an app secret")
        if self.max_throttle_retries < 0 or self.max_transient_retries < 0:
            raise ValueError("retries must not be negative")


@dataclass(slots=True)
class ChannelCounters:
    requests: int = 0
    accepted: int = 0
    throttled: int = 0  # throttle answers (each one paused the number)
    rejected: int = 0


Sleep = Callable[[float], Awaitable[None]]


class _Adapter:
    """Pacing, retries and counters shared by both adapters."""

    def __init__(self, pace: PaceSettings, timeout: float, max_throttle: int,
                 max_transient: int, retry_delay: float, http: httpx.AsyncClient | None,
                 clock: Callable[[], float], sleep: Sleep) -> None:
        self.pacer = Pacer(pace)
        self.counters = ChannelCounters()
        self._max_throttle, self._max_transient = max_throttle, max_transient
        self._retry_delay = retry_delay
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, trust_env=False)
        self._clock, self._sleep = clock, sleep
        self._places = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._turns: dict[str, asyncio.Lock] = {}

    async def _slot(self, sender: str) -> None:
        # One send a number asks its bucket at a time; the others queue behind it
        # in order. Without the queue every waiting send woke at each slot, and that
        # crowd delayed the sends already let out, which then reached the provider
        # bunched (a 130429 even when the pacing was right).
        turn = self._turns.get(sender)
        if turn is None:
            turn = self._turns[sender] = asyncio.Lock()
        async with turn:
            while (wait := self.pacer.take(sender, self._clock())) > 0:
                await self._sleep(wait)

    async def _send(self, sender: str, url: str, body: bytes, headers: Mapping[str, str],
                    read: Callable[[int, bytes], SubmitResult]) -> SubmitResult:
        throttles = transients = 0
        while True:
            async with self._places:
                await self._slot(sender)
                self.counters.requests += 1
                try:
                    answer = await self._http.post(url, content=body, headers=dict(headers))
                    result = read(answer.status_code, answer.content[:MAX_ANSWER_BODY])
                except _NOT_SENT as exc:
                    result = Rejected.of(_NO_ANSWER, None, type(exc).__name__)
                except httpx.HTTPError as exc:
                    # The request went out and no answer came: the provider may have
                    # taken it, and sending it again could deliver it twice. The
                    # caller decides (a chain falls over; nothing is lost).
                    self.counters.rejected += 1
                    return Rejected.of(_NO_ANSWER, None, f"{type(exc).__name__}: no answer;"
                                       " the provider may have taken it")
            if not isinstance(result, Rejected):
                self.pacer.succeeded(sender)
                self.counters.accepted += 1
                return result
            if result.klass is ErrorClass.THROTTLED:
                self.counters.throttled += 1
                self.pacer.throttled(sender, self._clock())
                if throttles < self._max_throttle:
                    throttles += 1
                    continue
            elif result.klass is ErrorClass.TRANSIENT and transients < self._max_transient:
                transients += 1
                await self._sleep(self._retry_delay * transients)
                continue
            self.counters.rejected += 1
            return result

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()


class WhatsAppClient(_Adapter):
    """The WhatsApp Cloud API channel (see the module docstring).
    ``Submission.sender`` is the business phone number id."""

    name = "whatsapp"

    def __init__(self, settings: WhatsAppSettings, *, http: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(settings.pace, settings.timeout, settings.max_throttle_retries,
                         settings.max_transient_retries, settings.retry_delay, http, clock, sleep)
        self.settings = settings
        self._headers = {"Authorization": f"Bearer {settings.token}",
                         "Content-Type": "application/json"}

    async def submit(self, submission: Submission) -> SubmitResult:
        url = self.settings.base_url.rstrip("/") + message_path(
            self.settings.api_version, submission.sender)
        return await self._send(submission.sender, url, message_body(submission), self._headers,
                                parse_send_answer)

    def events(self, body: bytes, headers: Mapping[str, str]) -> list[ProviderEvent]:
        """Verify, then read, a status webhook. Raises ``ProviderSignatureError``
        (nothing read) or ``MalformedWebhook``."""
        WHATSAPP_SCHEME.verify(self.settings.app_secret,
                               header_value(headers, WHATSAPP_SCHEME.header), body)
        return parse_status_webhook(body)

    def template_updates(self, body: bytes, headers: Mapping[str, str]) -> list[TemplateState]:
        """Verify, then read, the template review outcomes of a webhook."""
        WHATSAPP_SCHEME.verify(self.settings.app_secret,
                               header_value(headers, WHATSAPP_SCHEME.header), body)
        return parse_template_webhook(body)

    def _templates_url(self) -> str:
        waba = self.settings.business_account_id
        if waba is None:
            raise ValueError("no business_account_id: templates are not managed here")
        return self.settings.base_url.rstrip("/") + templates_path(self.settings.api_version,
                                                                   waba)

    async def create_template(self, spec: TemplateSpec) -> TemplateState | Rejected:
        """Submit a template for Meta's review: its state, or the refusal."""
        try:
            answer = await self._http.post(self._templates_url(), content=template_body(spec),
                                           headers=self._headers)
        except httpx.HTTPError as exc:
            return Rejected.of(_NO_ANSWER, None, type(exc).__name__)
        return parse_template_answer(spec, answer.status_code, answer.content[:MAX_ANSWER_BODY])

    async def edit_template(self, provider_id: str, spec: TemplateSpec) -> Rejected | None:
        """New content for the template of ``provider_id`` (Meta reviews it again):
        None when taken, else the refusal."""
        url = self.settings.base_url.rstrip("/") + template_path(self.settings.api_version,
                                                                 provider_id)
        try:
            answer = await self._http.post(url, content=template_edit_body(spec),
                                           headers=self._headers)
        except httpx.HTTPError as exc:
            return Rejected.of(_NO_ANSWER, None, type(exc).__name__)
        return parse_done_answer(answer.status_code, answer.content[:MAX_ANSWER_BODY])

    async def delete_template(self, name: str, provider_id: str | None = None
                              ) -> Rejected | None:  # fmt: skip
        """Delete every language of the template ``name`` (only the one of
        ``provider_id`` when given): None when done, else the refusal."""
        params = {"name": name, **({"hsm_id": provider_id} if provider_id else {})}
        try:
            answer = await self._http.delete(self._templates_url(), params=params,
                                             headers=self._headers)
        except httpx.HTTPError as exc:
            return Rejected.of(_NO_ANSWER, None, type(exc).__name__)
        return parse_done_answer(answer.status_code, answer.content[:MAX_ANSWER_BODY])

    async def list_templates(self) -> tuple[list[TemplateState], bool]:
        """The templates of the business account (at most :data:`MAX_TEMPLATE_PAGES`
        pages of 100), and whether that is every one (False: there were more
        pages). Raises ``httpx.HTTPError`` or ``ValueError`` (an answer that
        cannot be read)."""
        found: list[TemplateState] = []
        after: str | None = None
        for _ in range(MAX_TEMPLATE_PAGES):
            params = {"limit": "100", **({"after": after} if after else {})}
            answer = await self._http.get(self._templates_url(), params=params,
                                          headers=self._headers)
            answer.raise_for_status()
            page, after = parse_template_list(answer.content[:MAX_LIST_BODY])
            found.extend(page)
            if after is None:
                return found, True
        return found, False

    def inbound(self, body: bytes, headers: Mapping[str, str]) -> list[InboundChat]:
        """Verify, then read, the users' messages of a webhook (each opens the
        24-hour window of its user and sender). Raises as :meth:`events`."""
        WHATSAPP_SCHEME.verify(self.settings.app_secret,
                               header_value(headers, WHATSAPP_SCHEME.header), body)
        return parse_inbound(body)


class ViberClient(_Adapter):
    """A Viber business-messaging provider (``herald.channels.ViberSettings``).
    ``Submission.sender`` is the provider's sender name."""

    name = "viber"

    def __init__(self, settings: ViberSettings, *, pace: PaceSettings | None = None,
                 timeout: float = 10.0, http: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(pace or PaceSettings(), timeout, 10, 2, 0.5, http, clock, sleep)
        self.settings = settings
        self._url = settings.base_url.rstrip("/") + settings.send_path
        self._headers = {"Authorization": f"Bearer {settings.token}",
                         "Content-Type": "application/json"}

    async def submit(self, submission: Submission) -> SubmitResult:
        def read(status: int, body: bytes) -> SubmitResult:
            return parse_viber_answer(self.settings, status, body)

        return await self._send(submission.sender, self._url, send_body(self.settings, submission),
                                self._headers, read)

    def events(self, body: bytes, headers: Mapping[str, str]) -> list[ProviderEvent]:
        scheme = self.settings.scheme
        scheme.verify(self.settings.secret, header_value(headers, scheme.header), body)
        return parse_callbacks(self.settings, body)

    def inbound(self, body: bytes, headers: Mapping[str, str]) -> list[InboundChat]:
        """Verify, then read, the users' messages among the callbacks. Raises as
        :meth:`events`."""
        scheme = self.settings.scheme
        scheme.verify(self.settings.secret, header_value(headers, scheme.header), body)
        return parse_viber_inbound(self.settings, body)
