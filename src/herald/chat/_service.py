"""Channel chains at work: provider webhooks in, legs out, timers fired (I/O).

Theory of operation
-------------------
Every input to a chain goes the same way: read the chain, decide with the
pure rules (:mod:`herald.channels`' ``after_*``), and write the decision with
``Store.change_chain``, which applies it only at the version it was decided
on; refused, the input is decided again on a fresh read (a bounded number of
times). So a status webhook, the provider's answer to a send, a fallback
timer and an SMS receipt may race for one chain and each still counts once.

:class:`ChatService` holds the adapters and runs four loops (:meth:`run`):

- **send**: claims started chat legs (``Store.claim_chat_legs``, each under a
  lease) and submits them through their adapter; the answer is decided as
  above. A leg whose claim lapsed (herald stopped mid-request) is not sent
  again: the provider may have taken it, so the chain falls over instead.
- **timers**: claims due fallback timers (a lease, like the outbox) and
  decides each; the change that decides it deletes it. A timer claimed by a
  process that was killed is claimed again once its lease lapses: every due
  fallback fires once, none is lost.
- **SMS legs**: an SMS leg is a message of its own in the SMS pipeline; the
  loop reads the legs whose message moved (``Store.sms_leg_changes``) and
  decides them (delivered ends the chain; a failure falls over).
- **parked**: a provider status that came before the answer that tells its
  provider id is parked, and decided once a leg carries that id.

Provider webhooks arrive through :meth:`whatsapp_webhook` / :meth:`viber_webhook`
(the API routes them here): the signature is checked over the raw body before
anything is read or written; a bad one raises ``ProviderSignatureError`` and
changes nothing.

Recipients, WhatsApp ids and message texts are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Final

import httpx
import orjson

from herald.channels import (
    RESUMED,
    AuthTemplateContent,
    ChannelErrorCode,
    ChatPrices,
    Content,
    InboundChat,
    LegEvent,
    LegInput,
    ProviderEvent,
    Rejected,
    Submission,
    TemplateContent,
    TemplateSpec,
    TextContent,
    ViberSettings,
    after_cancel,
    after_sms_status,
    after_status,
    after_submit,
    after_timer,
    blocked_start,
    unpaid_start,
)
from herald.channels._pace import PaceSettings
from herald.channels.clients import ViberClient, WhatsAppClient, WhatsAppSettings
from herald.chat._fraud import SmsScreen
from herald.store import (
    ChainChange,
    ChangeOutcome,
    ChatChain,
    ChatTemplate,
    Conflict,
    DuplicateMessageId,
    InboundMessage,
    InsufficientFunds,
    LegSubmission,
    NotFound,
    ParkedChatEvent,
    Status,
    Store,
    StoreClosed,
    StoreError,
)

__all__ = ["ChatService", "ChatSettings", "content_json", "content_of"]

log = logging.getLogger("herald.chat")

#: Times an input is decided again when another input changed its chain first.
MAX_DECISIONS: Final = 20
#: Seconds a parked provider status is kept for a provider id no leg carries.
PARKED_TTL: Final = 24 * 3600.0
#: A template's status until the provider answered its submission.
SUBMITTING: Final = "submitting"
#: A template's status once it is gone at the provider (deleted in Meta's own
#: tools: its webhook's ``DELETED``, or missing from the provider's whole list).
DELETED: Final = "deleted"
#: Seconds a template may stay ``submitting`` before a sync that does not find
#: it at the provider forgets it (herald stopped between storing and submitting).
SUBMIT_GRACE: Final = 300.0
#: Seconds between purges of parked statuses older than PARKED_TTL.
PURGE_INTERVAL: Final = 60.0
#: The 128-bit id space of herald ids: time in ms (48 bits), then 80 more.
_RANDOM_BITS: Final = 80
_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuv"


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The chat channels of ``herald serve`` (herald.toml ``[channels.*]``).

    ``whatsapp_senders`` maps each WhatsApp phone number id to the account
    that owns it (inbound messages go to it; its chains send from it);
    ``viber_senders`` the same for a Viber provider's sender names, and
    ``viber_pace`` paces each of them (WhatsApp's pacing is in its settings).
    ``prices``: micro-units by (channel, category). ``poll_interval``:
    seconds between looks for work when nothing woke the loops.
    """

    whatsapp: WhatsAppSettings | None = None
    whatsapp_senders: Mapping[str, str] = field(default_factory=dict)
    viber: ViberSettings | None = None
    viber_senders: Mapping[str, str] = field(default_factory=dict)
    prices: ChatPrices = field(default_factory=dict)
    poll_interval: float = 0.2
    # Seconds a leg's send may take before another process may decide it lost:
    # longer than the adapter's retries and back-offs can last.
    submit_lease: float = 600.0
    timer_lease: float = 30.0
    batch: int = 100
    template_sync: float = 60.0  # seconds between reads of the templates' review status
    #: The token Meta's webhook subscription handshake presents (GET hub.verify_token).
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    viber_pace: PaceSettings = field(default_factory=PaceSettings)

    def __post_init__(self) -> None:
        if not (self.poll_interval > 0 and self.submit_lease > 0 and self.timer_lease > 0):
            raise ValueError("poll_interval and the leases must be positive")
        if not 1 <= self.batch <= 10_000:
            raise ValueError("batch must be 1..10,000")

    def senders(self, channel: str) -> Mapping[str, str]:
        return self.whatsapp_senders if channel == "whatsapp" else self.viber_senders

    def channels(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("whatsapp", self.whatsapp), ("viber", self.viber))
                     if on is not None)


def content_json(content: Content) -> str:
    """A leg's content as the store keeps it."""
    match content:
        case TextContent(body=body, preview_url=preview):
            value: dict[str, object] = {"text": body, "preview_url": preview}
        case TemplateContent(name=name, language=language, parameters=params):
            value = {"template": name, "language": language, "parameters": list(params)}
        case AuthTemplateContent(name=name, language=language, code=code):
            value = {"template": name, "language": language, "code": code}
    return orjson.dumps(value).decode()


def content_of(text: str) -> Content:
    value = orjson.loads(text)
    if "text" in value:
        return TextContent(value["text"], bool(value.get("preview_url", False)))
    if "code" in value:
        return AuthTemplateContent(value["template"], value["language"], value["code"])
    return TemplateContent(value["template"], value["language"], tuple(value["parameters"]))


def inbound_id(channel: str, provider_id: str, at: float) -> str:
    """A herald id for an inbound chat message, the same for every delivery of
    one provider message (a provider's webhook retry stores it once)."""
    digest = hashlib.sha256(f"{channel}\0{provider_id}".encode()).digest()
    value = ((int(at * 1000) & ((1 << 48) - 1)) << _RANDOM_BITS
             | int.from_bytes(digest[:10], "big")) << 2
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


class ChatService:
    """The chat channels of one process (see the module docstring)."""

    def __init__(self, store: Store, settings: ChatSettings, *,
                 clock: Callable[[], float] = time.time,
                 adapters: Mapping[str, WhatsAppClient | ViberClient] | None = None,
                 on_sms: Callable[[], None] = lambda: None,
                 accounts: Callable[[str], Awaitable[int | None]] | None = None,
                 screen: SmsScreen | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        if adapters is None:
            built: dict[str, WhatsAppClient | ViberClient] = {}
            if settings.whatsapp is not None:
                built["whatsapp"] = WhatsAppClient(settings.whatsapp)
            if settings.viber is not None:
                built["viber"] = ViberClient(settings.viber, pace=settings.viber_pace)
            adapters = built
        self.adapters = dict(adapters)
        self._on_sms = on_sms
        self._screen = screen  # the pumping defence of fallback OTP SMS legs (None: none)
        self._accounts = accounts
        self._account_ids: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._in_flight: set[tuple[str, int]] = set()  # legs this process is sending
        self._next_purge = 0.0
        self._next_sync = 0.0

    def wake(self) -> None:
        """Look for work now (a chain was accepted or changed)."""
        self._wake.set()

    # -- deciding --------------------------------------------------------------------

    async def _decide(self, chain_id: str,
                      decide: Callable[[ChatChain], ChainChange | None]) -> ChainChange | None:
        blocked: dict[int, bool] = {}  # SMS legs screened: asked once however often decided
        for _ in range(MAX_DECISIONS):
            chain = await self.store.get_chain(chain_id)
            change = decide(chain)
            if change is None:
                return None
            if self._screen is not None:
                change = await self._screened(chain, change, blocked)
            try:
                applied = await self.store.change_chain(change)
            except InsufficientFunds:
                change = unpaid_start(chain, change)
                applied = await self.store.change_chain(change)
                if applied:
                    log.info("chain %s: the SMS leg could not be charged; the chain failed",
                             chain_id)
            if applied:
                if any(chain.legs[leg].channel == "sms" for leg in change.start):
                    self._on_sms()
                if change.start:
                    self.wake()
                return change
        raise StoreError(f"chain {chain_id}: changed by others {MAX_DECISIONS} times running")

    async def _screened(self, chain: ChatChain, change: ChainChange,
                        blocked: dict[int, bool]) -> ChainChange:
        """``change``, or, when the pumping defence blocks the OTP SMS of a leg it
        starts, the change that ends the chain there instead (``FRAUD_BLOCKED``:
        nothing stored or charged). ``blocked`` keeps the answers per leg."""
        assert self._screen is not None
        for leg in change.start:
            if chain.legs[leg].channel != "sms":
                continue
            if leg not in blocked:
                message = await self.store.chain_leg_sms(chain.id, leg)
                blocked[leg] = message is not None and await self._screen(
                    chain.account_id, message, change.at) is not None
            if blocked[leg]:
                log.info("chain %s leg %d: the pumping defence blocked its SMS; the chain"
                         " failed", chain.id, leg)
                return blocked_start(chain, change)
        return change

    async def provider_events(self, channel: str, events: list[ProviderEvent]) -> int:
        """Apply verified provider statuses; those whose provider id no leg
        carries yet are parked. Returns how many changed a chain."""
        now = self.clock()
        parked: list[ParkedChatEvent] = []
        changed = 0
        for ev in events:
            found = await self.store.chain_of_provider_id(channel, ev.provider_id)
            if found is None:
                parked.append(ParkedChatEvent(
                    0, channel, ev.provider_id, ev.event.value, ev.at,
                    None if ev.error is None else int(ev.error.code),
                    None if ev.provider_code is None else str(ev.provider_code),
                    None if ev.pricing is None else ev.pricing.category,
                    ev.pricing is not None and ev.pricing.billable))
                continue
            chain_id, leg = found
            given = LegInput(ev.event, None if ev.error is None else int(ev.error.code),
                             None if ev.provider_code is None else str(ev.provider_code),
                             ev.pricing)
            if await self._decide(chain_id, partial(_status_step, leg=leg, given=given, now=now,
                                                    prices=self.settings.prices)) is not None:
                changed += 1
        await self.store.park_chat_events(parked, now)
        return changed

    # -- provider webhooks (verified first: a bad signature raises, nothing changes) ----

    async def whatsapp_webhook(self, body: bytes, headers: Mapping[str, str]) -> int:
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        events = adapter.events(body, headers)  # raises before anything is read
        inbound = adapter.inbound(body, headers)
        changed = await self.provider_events("whatsapp", events)
        changed += await self.template_updates(body, headers)
        for message in inbound:
            await self._inbound("whatsapp", message)
        return changed

    async def template_updates(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Apply the template review outcomes of a WhatsApp webhook (verified first)."""
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        changed = 0
        for state in adapter.template_updates(body, headers):
            changed += await self.store.set_chat_template_status(
                state.name, state.language, state.status, self.clock(),
                provider_id=state.provider_id, reason=state.reason)
        return changed

    # -- templates (docs/channels.md, "Templates") ------------------------------------

    def manages_templates(self) -> bool:
        adapter = self.adapters.get("whatsapp")
        return (isinstance(adapter, WhatsAppClient)
                and adapter.settings.business_account_id is not None)

    async def submit_template(self, account_id: int, spec: TemplateSpec
                              ) -> ChatTemplate | Rejected:  # fmt: skip
        """Submit ``spec`` for Meta's review on the account's behalf: the stored
        template, or the provider's refusal (then nothing is kept). Raises
        ``Conflict`` when the name and language are taken (a :data:`DELETED`
        template does not hold them)."""
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        now = self.clock()
        known = await self.store.get_chat_template(spec.name, spec.language)
        if known is not None and known.status == DELETED:  # gone at the provider: free
            await self.store.remove_chat_template(spec.name, spec.language)
        # Stored first: a second submission of the name waits for this one's answer.
        await self.store.add_chat_template(ChatTemplate(
            account_id, spec.name, spec.language, spec.category, spec.body, SUBMITTING, None,
            None, now, now))
        result = await adapter.create_template(spec)
        if isinstance(result, Rejected):
            await self.store.remove_chat_template(spec.name, spec.language)
            return result
        await self.store.set_chat_template_status(spec.name, spec.language, result.status,
                                                  self.clock(), provider_id=result.provider_id,
                                                  reason=result.reason)
        stored = await self.store.get_chat_template(spec.name, spec.language)
        assert stored is not None
        return stored

    async def edit_template(self, account_id: int, spec: TemplateSpec
                            ) -> ChatTemplate | Rejected:  # fmt: skip
        """New content for the account's template ``spec.name`` in ``spec.language``:
        the provider reviews it again (``pending``). Returns the stored template,
        or the provider's refusal (then nothing changed). Raises ``NotFound`` (no
        such template of the account), ``Conflict`` (its submission is under way)."""
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        known = await self.store.get_chat_template(spec.name, spec.language)
        if known is None or known.account_id != account_id:
            raise NotFound(f"no template {spec.name} ({spec.language})")
        if known.provider_id is None:
            raise Conflict(f"template {spec.name} ({spec.language}) is being submitted")
        refused = await adapter.edit_template(known.provider_id, spec)
        if refused is not None:
            return refused
        await self.store.revise_chat_template(spec.name, spec.language, spec.category,
                                              spec.body, "pending", self.clock())
        stored = await self.store.get_chat_template(spec.name, spec.language)
        assert stored is not None
        return stored

    async def delete_templates(self, account_id: int, name: str, language: str | None = None
                               ) -> tuple[list[ChatTemplate], Rejected | None]:  # fmt: skip
        """Delete the account's template ``name`` (every language of it, or
        ``language``'s) at the provider, then here: those deleted, and the
        provider's refusal that stopped the rest (None: all went). Each goes by
        its provider id: another account may own another language of the name,
        and a delete by name alone would take it too. Raises ``NotFound``,
        ``Conflict`` (one is being submitted)."""
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        mine = [t for t in await self.store.list_chat_templates(account_id)
                if t.name == name and language in (None, t.language)]
        if not mine:
            raise NotFound(f"no template {name}")
        if any(t.provider_id is None for t in mine):
            raise Conflict(f"template {name} is being submitted")
        deleted: list[ChatTemplate] = []
        for t in mine:
            assert t.provider_id is not None
            # One the provider deleted already is forgotten here without asking it.
            refused = None if t.status == DELETED else await adapter.delete_template(
                t.name, t.provider_id)
            if refused is not None:
                return deleted, refused
            await self.store.remove_chat_template(t.name, t.language)
            deleted.append(t)
        return deleted, None

    async def sync_templates(self) -> int:
        """Read every template's status from the provider; how many changed. A
        template left ``submitting`` by a crash, and unknown to the provider after
        :data:`SUBMIT_GRACE` seconds, is forgotten (it may be submitted again);
        one the provider's whole list lacks was deleted in Meta's own tools: it
        is :data:`DELETED` (not sendable; its name free to submit again)."""
        adapter = self.adapters["whatsapp"]
        assert isinstance(adapter, WhatsAppClient)
        asked = self.clock()
        listed, complete = await adapter.list_templates()
        states = {(s.name, s.language): s for s in listed}
        now = self.clock()
        changed = 0
        for t in await self.store.list_chat_templates():
            state = states.get((t.name, t.language))
            if state is not None:
                changed += await self.store.set_chat_template_status(
                    t.name, t.language, state.status, now, provider_id=state.provider_id,
                    reason=state.reason)
            elif t.status == SUBMITTING:
                if now - t.created_at > SUBMIT_GRACE:
                    changed += await self.store.remove_chat_template(t.name, t.language)
            elif complete and t.status != DELETED and t.created_at < asked:
                # Not in the provider's whole list (one made since the read began
                # may be missing from it): deleted in Meta's own tools.
                changed += await self.store.set_chat_template_status(
                    t.name, t.language, DELETED, now, reason="not at the provider")
        return changed

    async def viber_webhook(self, body: bytes, headers: Mapping[str, str]) -> int:
        """Apply a Viber provider's callbacks (verified first): statuses, and the
        users' messages, which reach the sender's account like an SMS MO."""
        adapter = self.adapters["viber"]
        assert isinstance(adapter, ViberClient)
        events = adapter.events(body, headers)  # raises before anything is read
        changed = await self.provider_events("viber", list(events))
        for message in adapter.inbound(body, headers):
            await self._inbound("viber", message)
        return changed

    async def _owner(self, channel: str, sender: str) -> int | None:
        name = self.settings.senders(channel).get(sender)
        if name is None or self._accounts is None:
            return None
        if name not in self._account_ids:
            found = await self._accounts(name)
            if found is None:
                return None
            self._account_ids[name] = found
        return self._account_ids[name]

    async def _inbound(self, channel: str, message: InboundChat) -> None:
        """A user's message: it opens the window, and a text reaches the
        sender's account like an SMS MO (its inbound webhook). Other kinds
        (a location, an image) open the window only: nothing of them is kept."""
        account_id = await self._owner(channel, message.sender)
        if account_id is None:
            log.warning("%s: a message to sender %s, which no account owns (herald.toml"
                        " [channels.%s] senders); dropped", channel, message.sender, channel)
            return
        await self.store.record_chat_inbound(account_id, channel, message.sender, message.user,
                                             message.at)
        if message.kind != "text" or not message.text:
            return
        # A provider that delivers the webhook again finds the message stored once.
        with contextlib.suppress(DuplicateMessageId):
            await self.store.add_inbound(InboundMessage(
                inbound_id(channel, message.provider_id, message.at), account_id,
                message.sender, message.user, message.text.encode("utf-16-be"), "ucs2", 8,
                channel, self.clock()))

    # -- the loops -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled."""
        try:
            while True:
                self._wake.clear()
                try:
                    busy = await self.step()
                except StoreClosed:
                    raise
                except StoreError as exc:
                    log.warning("chat channels: %s; trying again", exc)
                    busy = False
                except Exception:  # a bug: say so loudly, keep the chains moving
                    log.exception("chat channels: unexpected error; trying again")
                    busy = False
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
        finally:
            for task in self._sending:
                task.cancel()
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def step(self) -> bool:
        """One look at every kind of work; whether there was any."""
        if self.manages_templates() and self.clock() >= self._next_sync:
            self._next_sync = self.clock() + self.settings.template_sync
            try:
                await self.sync_templates()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("whatsapp: reading the templates failed (%s)", type(exc).__name__)
        busy = await self.fire_timers()
        busy = await self.send_legs() or busy
        busy = await self.follow_sms() or busy
        busy = await self.apply_parked() or busy
        return busy

    async def fire_timers(self) -> bool:
        now = self.clock()
        s = self.settings
        due = await self.store.claim_chain_timers(now, s.timer_lease, s.batch)
        for t in due:
            await self._decide(t.chain_id, lambda c, t=t: after_timer(c, t.leg, now))  # type: ignore[misc]
        return len(due) == s.batch

    async def send_legs(self) -> bool:
        s = self.settings
        legs = await self.store.claim_chat_legs(self.clock(), s.submit_lease, s.batch)
        for leg in legs:
            if (leg.chain_id, leg.leg) in self._in_flight:
                continue  # its send outlived the lease (long back-offs): it goes on, once
            task = asyncio.create_task(self._send(leg))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return bool(legs)

    async def _send(self, leg: LegSubmission) -> None:
        key = (leg.chain_id, leg.leg)
        self._in_flight.add(key)
        try:
            adapter = self.adapters.get(leg.channel)
            if leg.resumed or adapter is None:
                result = RESUMED
                if adapter is None:
                    log.warning("chain %s leg %d: channel %s is not configured", leg.chain_id,
                                leg.leg, leg.channel)
            else:
                result = await adapter.submit(Submission(
                    f"{leg.chain_id}-{leg.leg}", leg.sender, leg.to.removeprefix("+"),
                    content_of(leg.content), leg.ttl))
            now = self.clock()
            await self._decide(leg.chain_id, lambda c: after_submit(c, leg.leg, result, now))
        except asyncio.CancelledError:
            raise
        except Exception:  # the claim lapses and the leg is decided then (not sent twice)
            log.exception("chain %s leg %d: sending failed", leg.chain_id, leg.leg)
        finally:
            self._in_flight.discard(key)

    async def follow_sms(self) -> bool:
        s = self.settings
        changes = await self.store.sms_leg_changes(s.batch)
        now = self.clock()
        for c in changes:
            await self._decide(c.chain_id, lambda chain, c=c: after_sms_status(  # type: ignore[misc]
                chain, c.leg, c.status, c.error_code, now))
        return len(changes) == s.batch

    async def apply_parked(self) -> bool:
        s = self.settings
        parked = await self.store.parked_chat_events(s.batch)
        if parked:
            by_channel: dict[str, list[ProviderEvent]] = {}
            for p in parked:
                by_channel.setdefault(p.channel, []).append(_event_of(p))
            for channel, events in by_channel.items():
                await self.provider_events(channel, events)
        now = self.clock()
        purge = now >= self._next_purge
        if parked or purge:
            await self.store.drop_parked_chat_events(
                [p.id for p in parked], received_before=now - PARKED_TTL if purge else None)
            if purge:
                self._next_purge = now + PURGE_INTERVAL
        return len(parked) == s.batch

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()

    async def cancel(self, chain_id: str,
                     account_id: int) -> tuple[ChatChain, ChangeOutcome | None] | None:
        """Cancel the account's chain (``DELETE /v1/messages/{id}``): no leg
        starts any more; a chat leg not yet sent ends there; an SMS leg's
        message is cancelled if the SMS pipeline still can (``Store.cancel``).
        A leg that has gone out is not recalled. Returns the chain as it is
        then, and the outcome of cancelling its SMS leg's message (None: no SMS
        leg was current); None: no such chain."""
        if await self.chain(chain_id, account_id) is None:
            return None
        now = self.clock()
        await self._decide(chain_id, lambda c: after_cancel(c, now))
        chain = await self.store.get_chain(chain_id)
        current = chain.legs[max(n for n, leg in enumerate(chain.legs) if leg.state is not None)]
        if chain.status.final or current.channel != "sms" or not current.message_id:
            return chain, None
        result = await self.store.cancel(current.message_id, now, account_id=account_id)
        if result.message.status is Status.CANCELLED:  # its status ends the chain now
            await self._decide(chain_id, lambda c: after_sms_status(
                c, current.leg, Status.CANCELLED, int(ChannelErrorCode.CANCELLED), now))
        return await self.store.get_chain(chain_id), result.outcome

    async def chain(self, chain_id: str, account_id: int) -> ChatChain | None:
        try:
            return await self.store.get_chain(chain_id, account_id=account_id)
        except NotFound:
            return None


def _status_step(chain: ChatChain, *, leg: int, given: LegInput, now: float,
                 prices: ChatPrices) -> ChainChange | None:
    return after_status(chain, leg, given, now, prices)


def _event_of(p: ParkedChatEvent) -> ProviderEvent:
    from herald.channels import ChannelErrorCode, ErrorClass, ErrorMeaning, Pricing

    error = None
    if p.error_code is not None:
        error = ErrorMeaning(ChannelErrorCode(p.error_code), ErrorClass.PERMANENT)
    pricing = None if p.category is None else Pricing(p.billable, p.category, "")
    return ProviderEvent(p.provider_id, LegEvent(p.event), p.at, error, p.provider_code, pricing)
