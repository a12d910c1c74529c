"""The pumping defence, live: the engine in the process that takes the requests.

Theory of operation
-------------------
:class:`LiveDefence` holds one :class:`herald.fraud.Engine` per account (each
account's money is in its own currency, and the engine's budgets are money)
and answers :meth:`LiveDefence.screen` for every SMS of a verification and,
when the account enables it, every OTP message. In order:

1. the account's **deny list** (a prefix of the number): block;
2. its **allow list**: allow, the engine is not asked;
3. its **ceiling** for the destination country: the money its SMS there that
   the defence let through in the last 24 hours cost, plus this one, over the
   ceiling: block. The store counts it again when it records an SMS that
   passes (``record_within_ceiling``, under a lock per account and country),
   so nodes on one PostgreSQL database never pass a ceiling together either;
4. the **engine**. In ``monitor`` mode a block is recorded as ``would_block``
   and the SMS is sent. The client's address gets its type (the address-block
   cell's key) from the ``ip_type`` hint, else the operator's ``[fraud]`` tables
   (:class:`herald.fraud.AddressTypes`), else none; it is stored with the decision.

(The account's geo permissions, ``herald accounts set --countries``, refused
the SMS before: they are checked with the message, docs/accounts.md.) The
customer's own controls hold in monitor mode too: they are orders, not guesses.

Every decision is stored (``record_fraud_decision``) before the SMS is
accepted, with what the engine was asked; a block also writes its webhook
event in that transaction. The engine learns:

- **the other engines' decisions** and **every conversion** from the store:
  at most every ``poll`` seconds, before a decision, the engine decisions and
  conversions committed since its cursor (``fraud_tail``: by every process on
  one SQLite file, every node on one PostgreSQL database) are fed in time
  order, a decision as the engine that made it took it (``Engine.request``
  with ``taken``: an SMS sent, or one refused). Its own decisions (their ids
  are kept for :data:`TAIL_MEMORY` seconds) and the conversions it was told of
  are not fed again. An attack spread over N nodes meets each engine at its
  whole rate, less what the others sent in the last ``poll`` seconds (plus
  their commits);
- **receipts** from the store: the messages it or the others let through and
  whose final status it has not seen are read back (one indexed read) at the
  same time, so it has every receipt that came before the request it judges
  (the delivery process writes them);
- **conversions** at once, from this process: a Verify check approved, or
  ``POST /v1/messages/{id}/converted`` (both also stored, in ``conversions``).

After a restart the engines are rebuilt from the store before the first
decision: every engine decision of the last :data:`HISTORY` seconds (whichever
process or node made it, each as it was taken), with the receipts and
conversions of their messages, fed again in time order (receipts and
conversions before requests at equal times, as ``herald fraud replay`` does).
The engine is deterministic, so it comes back as it was (its blocks included):
a restart does not forget an attack in progress. The tail's cursor is taken
before the history is read, and what both return is fed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from herald.fraud import (
    Action,
    AddressTypes,
    Block,
    Decision,
    Engine,
    Prices,
    Receipt,
    Request,
    Verification,
)
from herald.ids import IdGenerator
from herald.intake import country_of as intake_country_of
from herald.rating import MICROS, Rating
from herald.store import (
    FraudAction,
    FraudDecision,
    FraudMode,
    FraudReason,
    FraudSettings,
    FraudStore,
    NewMessage,
    Status,
    StoreError,
)

__all__ = ["HISTORY", "POLL_INTERVAL", "SETTINGS_TTL", "SPEND_WINDOW", "TAIL_MEMORY",
           "LiveDefence", "Screening", "country_of"]

log = logging.getLogger("herald.fraud")

#: Seconds of decisions a rebuild feeds again: the longest block (7 days).
HISTORY: Final = 7 * 86_400.0
#: Seconds between reads of the other engines' decisions, the conversions and the
#: receipts of the messages in flight.
POLL_INTERVAL: Final = 1.0
#: Seconds the ids of the decisions fed are kept, so that none is fed twice (its
#: own, or one both the rebuild and the first tail read): far longer than a
#: decision's commit takes to reach the tail.
TAIL_MEMORY: Final = 300.0
#: Seconds an account's settings are used without a re-read (as its controls).
SETTINGS_TTL: Final = 5.0
#: The per-country ceilings count the money of this many seconds.
SPEND_WINDOW: Final = 86_400.0
#: A message whose receipt has not come after this long is no longer waited for.
MAX_IN_FLIGHT_S: Final = 3 * 86_400.0
#: The engine's receipt statuses by final status. A cancelled message was never
#: sent: like an undelivered one, it costs nothing.
_RECEIPT: Final[Mapping[Status, str]] = {
    Status.DELIVERED: "DELIVRD", Status.EXPIRED: "EXPIRED", Status.UNDELIVERED: "UNDELIV",
    Status.REJECTED: "UNDELIV", Status.FAILED: "UNDELIV", Status.CANCELLED: "UNDELIV",
}  # fmt: skip
#: What the engine answered, by stored action (``would_block``: it refused, monitor sent).
_TAKEN: Final[Mapping[FraudAction, Action]] = {
    FraudAction.ALLOW: Action.ALLOW, FraudAction.BLOCK: Action.BLOCK,
    FraudAction.WOULD_BLOCK: Action.BLOCK,
}  # fmt: skip
#: Kinds of what is fed, in their order at equal times (as ``herald fraud replay``).
_RECEIVED, _CONVERTED, _REQUESTED = 0, 1, 2
#: (time in ms, kind, arrival, feed it at that time)
_Event = tuple[int, int, int, Callable[[int], None]]


def country_of(to: str) -> str | None:
    """The ISO 3166-1 country of an E.164 number (``+`` optional), as the
    account's geo permissions see it (:func:`herald.intake.country_of`)."""
    return intake_country_of(to.removeprefix("+"))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _matches(to: str, prefixes: tuple[str, ...]) -> str | None:
    number = to if to.startswith("+") else "+" + to
    return next((p for p in prefixes if number.startswith(p)), None)


_NO_LOCK: Final = contextlib.nullcontext()
_Decided = Callable[[FraudAction, tuple[FraudReason, ...], bool], FraudDecision]


def _over_ceiling(decided: _Decided, country: str, spent: int, price: int | None,
                  cap: Decimal) -> FraudDecision:  # fmt: skip
    cost = price or 0
    figures = {"spent": spent / MICROS, "price": cost / MICROS, "ceiling": float(cap)}
    return decided(FraudAction.BLOCK, (FraudReason("country_ceiling", country, figures),),
                   False)


@dataclass(frozen=True, slots=True)
class Screening:
    """A decision, stored; ``refuse``: do not send the SMS."""

    decision: FraudDecision

    @property
    def refuse(self) -> bool:
        return self.decision.action is FraudAction.BLOCK


@dataclass(slots=True)
class _Sent:
    account_id: int
    decision_id: str
    at: float


class LiveDefence:
    """See the module docstring. Times are epoch seconds (the callers' ``now``)."""

    def __init__(self, store: FraudStore, ids: IdGenerator, *, poll: float = POLL_INTERVAL,
                 settings_ttl: float = SETTINGS_TTL, history: float = HISTORY,
                 addresses: AddressTypes | None = None) -> None:
        self._store = store
        self._addresses = addresses or AddressTypes()
        self._ids = ids
        self._poll = poll
        self._settings_ttl = settings_ttl
        self._history = history
        self._engines: dict[int, Engine] = {}
        self._settings: dict[int, tuple[FraudSettings, float]] = {}
        self._in_flight: dict[str, _Sent] = {}  # message id: waiting for its final status
        self._sent: dict[str, _Sent] = {}  # message id: may still convert
        self._converted: set[str] = set()
        self._lock = asyncio.Lock()
        self._ceiling_locks: dict[int, asyncio.Lock] = {}
        self._built = False
        self._polled = float("-inf")
        self._cursor: tuple[int, int] | None = None  # fraud_tail's
        self._fed: dict[str, float] = {}  # decision id: created at (TAIL_MEMORY)

    # -- settings ---------------------------------------------------------------------

    async def settings(self, account_id: int, now: float) -> FraudSettings:
        cached = self._settings.get(account_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        settings = await self._store.get_fraud_settings(account_id)
        self._settings[account_id] = (settings, now + self._settings_ttl)
        return settings

    def watches_messages(self, account_id: int, now: float) -> bool | None:
        """Whether the account's OTP messages are screened, from memory (``None``:
        not known here yet; ask :meth:`settings`)."""
        cached = self._settings.get(account_id)
        if cached is None or cached[1] <= now:
            return None
        return cached[0].otp_messages

    def forget(self, account_id: int) -> None:
        """The account's settings changed in this process: read them again."""
        self._settings.pop(account_id, None)

    async def prepare(self, now: float) -> None:
        """Rebuild the engines now rather than before the first decision (``herald
        serve`` calls it at start). A failure is logged; the first decision tries again."""
        try:
            async with self._lock:
                await self._catch_up(now)
        except StoreError as exc:
            log.warning("fraud: rebuilding the engines failed (%s); retried at the first"
                        " decision", exc)

    # -- the decision -----------------------------------------------------------------

    def _engine(self, account_id: int) -> Engine:
        engine = self._engines.get(account_id)
        if engine is None:
            engine = self._engines[account_id] = Engine(Prices())
        return engine

    def blocks(self, account_id: int, now: float) -> list[Block]:
        """The account's blocks and throttles in force now, the longest first (in
        ``monitor`` mode: those enforce would hold)."""
        engine = self._engines.get(account_id)
        return [] if engine is None else engine.blocks(_ms(now))

    async def refusal(self, account_id: int, message: NewMessage, rating: Rating | None,
                      now: float, hints: Mapping[str, str] | None = None,
                      ) -> FraudDecision | None:  # fmt: skip
        """The decision refusing an OTP message of an account that screens its
        OTP messages (``otp_messages``), or ``None``: send it. For intake (a
        plain send, a batch item) and for a chain's fallback SMS alike.
        Raises the store's errors."""
        watched = self.watches_messages(account_id, now)
        if watched is None:
            watched = (await self.settings(account_id, now)).otp_messages
        if not watched:
            return None
        screening = await self.screen(
            account_id=account_id, to=message.to, use_case=message.tag or "otp",
            message_id=message.id, rating=rating, now=now, hints=hints)
        return screening.decision if screening.refuse else None

    async def screen(self, *, account_id: int, to: str, use_case: str, message_id: str,
                     rating: Rating | None, now: float, verification_id: str | None = None,
                     keep_verification: bool = True,
                     hints: Mapping[str, str] | None = None) -> Screening:  # fmt: skip
        """Decide on one SMS about to be accepted as ``message_id``; the decision is
        stored (with its webhook event for a block) before this returns. A
        block forgets ``verification_id`` unless ``keep_verification`` (a resend
        of one that exists; a first SMS refused creates none). Store errors are
        raised (the caller answers 503: nothing was sent)."""
        async with self._lock:  # one rebuild; receipts read once per poll
            await self._catch_up(now)
        settings = await self.settings(account_id, now)
        number = to if to.startswith("+") else "+" + to
        country = country_of(number)
        price = None if rating is None else rating.micros
        request = {"use_case": use_case, **(hints or {})}
        if "ip_type" not in request and (kind := self._addresses.type_of(
                request.get("ip"), request.get("asn"))) is not None:
            request["ip_type"] = kind  # [fraud] address_types, asn_types; kept for a rebuild
        decision_id = self._ids.new_id(now)
        self._fed[decision_id] = now  # the tail will read it: fed once, here
        if rating is not None and rating.network:
            request["mcc_mnc"] = rating.network

        def decided(action: FraudAction, reasons: tuple[FraudReason, ...],
                    engine: bool) -> FraudDecision:  # fmt: skip
            sent = action is not FraudAction.BLOCK
            return FraudDecision(
                decision_id, account_id, now, number, action, reasons, engine,
                country, price, None,
                verification_id if sent or keep_verification else None,
                message_id if sent else None, request)  # fmt: skip

        # A ceiling is read and its SMS recorded under one lock per account, so that
        # two requests at once here ask the engine knowing of each other; the store
        # records an SMS that passes a ceiling only if the spend it counts under its
        # own lock still leaves room (other nodes: ``record_within_ceiling``).
        cap = None if country is None else settings.country_caps.get(country)
        async with self._ceiling_lock(account_id) if cap is not None else _NO_LOCK:
            decision = await self._customer(settings, number, country, price, now,
                                            account_id, decided)
            recorded = False
            if decision is None:
                decision = self._ask(settings, account_id, number, country, rating,
                                     use_case, request, now, decision_id, decided)
                if cap is not None and decision.action is not FraudAction.BLOCK:
                    spent = await self._store.record_within_ceiling(
                        decision, cap * MICROS, now - SPEND_WINDOW)
                    recorded = spent is None
                    if spent is not None:  # another node took the last of it meanwhile
                        decision = _over_ceiling(decided, country or "", spent, price, cap)
            if not recorded:
                await self._store.record_fraud_decision(decision)
        if decision.message_id is not None and decision.engine:
            sent = _Sent(account_id, decision.id, now)
            self._in_flight[decision.message_id] = sent
            self._sent[decision.message_id] = sent
        log.info("fraud: %s %s for account %d (%s)", decision.action.value, decision.id,
                 account_id, ", ".join(r.code for r in decision.reasons))
        return Screening(decision)

    def _ceiling_lock(self, account_id: int) -> asyncio.Lock:
        lock = self._ceiling_locks.get(account_id)
        if lock is None:
            lock = self._ceiling_locks[account_id] = asyncio.Lock()
        return lock

    async def _customer(self, settings: FraudSettings, number: str, country: str | None,
                        price: int | None, now: float, account_id: int,
                        decided: _Decided) -> FraudDecision | None:  # fmt: skip
        """The account's own controls: a decision, or ``None`` (ask the engine)."""
        if (prefix := _matches(number, settings.deny)) is not None:
            return decided(FraudAction.BLOCK, (FraudReason("deny_list", prefix),), False)
        if (prefix := _matches(number, settings.allow)) is not None:
            return decided(FraudAction.ALLOW, (FraudReason("allow_list", prefix),), False)
        cap = None if country is None else settings.country_caps.get(country)
        if cap is not None and country is not None:
            spent = await self._store.fraud_spend(account_id, country, now - SPEND_WINDOW)
            cost = price or 0
            if Decimal(spent + cost) / MICROS > cap:
                return _over_ceiling(decided, country, spent, price, cap)
        return None

    def _ask(self, settings: FraudSettings, account_id: int, number: str, country: str | None,
             rating: Rating | None, use_case: str, request: Mapping[str, str], now: float,
             decision_id: str, decided: _Decided) -> FraudDecision:  # fmt: skip
        engine = self._engine(account_id)
        # The engine knows the request by the decision's id (receipts, conversions).
        answer = self._request(engine, Request(
            id=decision_id, ts=_ms(now), account=str(account_id), use_case=use_case, to=number,
            country=country, mcc_mnc=request.get("mcc_mnc"), ip_type=request.get("ip_type"),
            device_id=request.get("device_id"), ip=request.get("ip")),
            None if rating is None else rating.micros)  # fmt: skip
        reasons = tuple(FraudReason(r.code, r.cell, dict(r.figures)) for r in answer.reasons)
        action = FraudAction.ALLOW
        if answer.action is Action.BLOCK:
            action = (FraudAction.WOULD_BLOCK if settings.mode is FraudMode.MONITOR
                      else FraudAction.BLOCK)  # fmt: skip
        return decided(action, reasons, True)

    @staticmethod
    def _request(engine: Engine, request: Request, price_micros: int | None,
                 taken: Action | None = None) -> Decision:  # fmt: skip
        """Ask ``engine`` with the SMS's own price (unbilled: the engine assumes one);
        ``taken``: a stored decision, fed as it was taken."""
        country = request.country or ""
        if price_micros is None:
            engine.prices.country.pop(country, None)
        else:
            engine.prices.country[country] = price_micros / MICROS
        return engine.request(request, taken)

    def _feed_decision(self, d: FraudDecision, ts: int) -> None:
        """A stored engine decision, fed to its account's engine as it was taken."""
        request = d.request
        self._request(self._engine(d.account_id), Request(
            id=d.id, ts=ts, account=str(d.account_id),
            use_case=request.get("use_case", "other"), to=d.to, country=d.country,
            mcc_mnc=request.get("mcc_mnc"), ip_type=request.get("ip_type"),
            device_id=request.get("device_id"), ip=request.get("ip")),
            d.price_micros, _TAKEN[d.action])  # fmt: skip

    # -- what the engine learns -------------------------------------------------------

    def converted(self, message_id: str, at: float) -> None:
        """The code ``message_id`` carried was entered at ``at`` (first report counts)."""
        sent = self._sent.get(message_id)
        if sent is None or message_id in self._converted:
            return
        self._converted.add(message_id)
        self._engine(sent.account_id).verification(Verification(sent.decision_id, _ms(at)))

    async def _catch_up(self, now: float) -> None:
        if not self._built:
            await self._rebuild(now)
            self._built = True
        if now - self._polled >= self._poll:
            self._polled = now
            events: list[_Event] = []
            try:
                await self._read_tail(now, events)
                if self._in_flight:
                    await self._read_receipts(events)
            finally:  # the tail read moved the cursor: what it read is fed, come what may
                events.sort(key=lambda e: e[:3])
                for ts, _kind, _n, feed in events:
                    feed(ts)
            self._forget_old(now)

    async def _read_tail(self, now: float, events: list[_Event]) -> None:
        """The other engines' decisions and every conversion since the cursor."""
        tail = await self._store.fraud_tail(self._cursor)
        self._cursor = tail.cursor
        for d in tail.decisions:
            if d.id in self._fed:  # its own, or the rebuild's
                continue
            self._fed[d.id] = d.created_at
            events.append((_ms(d.created_at), _REQUESTED, len(events),
                           functools.partial(self._feed_decision, d)))
            if d.message_id is not None and d.action is not FraudAction.BLOCK \
                    and now - d.created_at <= MAX_IN_FLIGHT_S:  # fmt: skip
                sent = _Sent(d.account_id, d.id, d.created_at)
                self._in_flight[d.message_id] = sent
                self._sent[d.message_id] = sent
        for message_id, at in tail.conversions:
            typed = self._sent.get(message_id)
            if typed is None or message_id in self._converted:  # not the engine's, or fed
                continue
            self._converted.add(message_id)
            events.append((_ms(max(at, typed.at)), _CONVERTED, len(events),
                           functools.partial(self._feed_conversion, typed)))

    async def _read_receipts(self, events: list[_Event]) -> None:
        outcomes = await self._store.fraud_outcomes(list(self._in_flight))
        done = sorted((o for o in outcomes if o.status is not None and o.done_at is not None),
                      key=lambda o: o.done_at or 0.0)  # fmt: skip
        for o in done:
            sent = self._in_flight.pop(o.message_id)
            assert o.status is not None and o.done_at is not None
            # Never before its request (another node's clock may be behind this one's).
            events.append((_ms(max(o.done_at, sent.at)), _RECEIVED, len(events),
                           functools.partial(self._feed_receipt, sent, _RECEIPT[o.status])))

    def _feed_conversion(self, sent: _Sent, ts: int) -> None:
        self._engine(sent.account_id).verification(Verification(sent.decision_id, ts))

    def _feed_receipt(self, sent: _Sent, status: str, ts: int) -> None:
        self._engine(sent.account_id).receipt(Receipt(sent.decision_id, ts, status))

    def _forget_old(self, now: float) -> None:
        """Bound memory: stop waiting for what is older than MAX_IN_FLIGHT_S. Both
        maps are in the order the SMS were sent: the oldest come first."""
        for table in (self._in_flight, self._sent):
            while table:
                message_id = next(iter(table))
                if now - table[message_id].at <= MAX_IN_FLIGHT_S:
                    break
                del table[message_id]
                if table is self._sent:
                    self._converted.discard(message_id)
        fed = self._fed  # about in time order: the oldest come first
        while fed:
            decision_id = next(iter(fed))
            if now - fed[decision_id] <= TAIL_MEMORY:
                break
            del fed[decision_id]

    async def _rebuild(self, now: float) -> None:
        """Feed the engines again from the store (see the module docstring)."""
        self._cursor = (await self._store.fraud_tail(None)).cursor  # before the history
        history = await self._store.fraud_history(now - self._history)
        for d in history:
            if now - d.created_at <= TAIL_MEMORY:  # the first tail may read it again
                self._fed[d.id] = d.created_at
        if not history:
            return
        sent_ids = [d.message_id for d in history if d.message_id is not None]
        outcomes = {o.message_id: o for o in await self._store.fraud_outcomes(sent_ids)}
        # (time, kind, n): receipts (0) and conversions (1) before requests (2).
        events: list[tuple[int, int, int]] = []
        for n, d in enumerate(history):
            events.append((_ms(d.created_at), 2, n))
            o = None if d.message_id is None else outcomes.get(d.message_id)
            if o is not None and o.status is not None and o.done_at is not None:
                events.append((_ms(o.done_at), 0, n))
            if o is not None and o.converted_at is not None:
                events.append((_ms(o.converted_at), 1, n))
        events.sort()
        for ts, kind, n in events:
            d = history[n]
            engine = self._engine(d.account_id)
            if kind == 2:  # as it was taken: several engines (nodes) may have decided
                self._feed_decision(d, ts)
            elif kind == 0:
                o = outcomes[d.message_id or ""]
                assert o.status is not None
                engine.receipt(Receipt(d.id, ts, _RECEIPT[o.status]))
            else:
                engine.verification(Verification(d.id, ts))
        for d in history:
            if d.message_id is None or now - d.created_at > MAX_IN_FLIGHT_S:
                continue
            sent = _Sent(d.account_id, d.id, d.created_at)
            o = outcomes.get(d.message_id)
            if o is not None and o.status is None:
                self._in_flight[d.message_id] = sent
            self._sent[d.message_id] = sent
            if o is not None and o.converted_at is not None:
                self._converted.add(d.message_id)
        log.info("fraud: rebuilt from %d decisions of the last %.0f h", len(history),
                 self._history / 3600)


