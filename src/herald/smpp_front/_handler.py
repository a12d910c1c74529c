"""herald as the SMSC of its SMPP customers: binds, submits, queries.

Theory of operation
-------------------
``CustomerSmpp`` is the ``ServerHandler`` of herald's SMPP listener.

* Binds are checked by ``Accounts.authenticate_smpp`` (argon2 behind a cache)
  and by the account's bind limit (ESME_RBINDFAIL beyond it). Failed binds
  are throttled per client address and per system_id (``BindThrottle``): a
  locked-out bind is answered ESME_RBINDFAIL without any password check, and
  the connection closed (as after every refused bind). Failed binds and
  lockouts are logged at warning, never with the password. On PostgreSQL
  a bind also holds its tokens in buckets the nodes share: a failed bind at
  one node counts at every node.
* submit_sm / data_sm / submit_multi become ``NewMessage`` rows
  (``_messages``). The rows of every submit received in one loop turn are
  accepted in one ``store.accept`` call — one group commit — and each submit
  is answered with its herald id only after that commit. A refused submit is
  answered at once with its status; a store failure answers the whole batch
  with the store error's SMPP status (ESME_RMSGQFUL when busy: retry).
* A billed account's submit is priced when it arrives (ESME_RINVDSTADR for
  a destination its price list does not price) and charged in its own
  ``store.accept`` of the same group commit: ESME_RSUBMITFAIL if its balance
  does not cover it (logged with the account and price), its neighbours
  unaffected (docs/billing.md).
* The account's rate (``Account.rate_limit``, messages per second, a token
  bucket with one second of burst) is enforced per account across its binds:
  ESME_RTHROTTLED beyond it. On PostgreSQL the bucket is shared by the nodes
  (``herald.cluster.budgets``): a submit the node's slice of it does not cover
  waits for one round trip to the store.
* The account's controls (``docs/accounts.md``, read through a
  ``ControlBook`` at each bind and recheck): a bind from outside its SMPP
  networks is ESME_RBINDFAIL; a submit to a country it may not send to or to
  an opted-out number ESME_RINVDSTADR, from a sender it may not use
  ESME_RINVSRCADR. An account with a daily quota has each submit accepted on
  its own (the store counts the quota in that transaction); beyond it,
  ESME_RSUBMITFAIL.
* An OTP submit of an account that screens its OTP messages waits for the
  pumping defence (``_screen``, docs/fraud.md): refused, it is answered
  ESME_RFRAUDBLOCKED (0x400) and nothing is stored or charged.
* query_sm reads the store (ESME_RQUERYFAIL for an unknown id or one of
  another account). cancel_sm and replace_sm change a message that has not
  gone out (``_changes``).
* Receiver and transceiver binds are registered so the notifier
  (``_notifier``) can send receipts and MO messages on them.

While the store is slower than a customer, the server stops reading from
that customer (``SmppServer``'s ``max_unanswered``): TCP applies the brakes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from herald.accounts import (
    Accounts,
    ControlBook,
    FailedLogins,
    InvalidCredentials,
    LoginsBusy,
    RecentKeys,
)
from herald.billing import Unpriced, no_prices, rate
from herald.cluster.budgets import SharedBudgets
from herald.defence import LiveDefence
from herald.intake import IntakeError
from herald.metrics import Metrics
from herald.net import ServerConnection, ServerHandler
from herald.rating import PriceList, Rating, from_micros
from herald.smpp.constants import CommandId, CommandStatus, MessageState
from herald.smpp.events import CloseReason
from herald.smpp.pdus import (
    BindRequest,
    BindResponse,
    CancelSm,
    DataSm,
    QuerySm,
    ReplaceSm,
    Request,
    SubmitMulti,
    SubmitSm,
)
from herald.smpp.tlv import SC_INTERFACE_VERSION
from herald.smpp_front._changes import cancel_sm, replace_sm
from herald.smpp_front._messages import FrontLimits, Refused, messages_from
from herald.smpp_front._screen import ESME_RFRAUDBLOCKED, first_block, screened
from herald.store import (
    Account,
    Charge,
    DailyQuota,
    InsufficientFunds,
    MessageNotFound,
    NewMessage,
    Priority,
    QuotaExceeded,
    Status,
    Store,
    StoreError,
    TokenLedger,
)

__all__ = ["ACCOUNT_RECHECK", "SMPP_34", "Binding", "CustomerSmpp", "customer_error"]

log = logging.getLogger("herald.smpp.front")
S = CommandStatus

#: interface_version from which a client knows TLVs (SMPP 3.4 §5.2.4).
SMPP_34: Final = 0x34
#: Seconds of burst an account's rate allows.
BURST_SECONDS: Final = 1.0
#: Accounts whose shared rate bucket a node keeps a slice of at most (LRU).
MAX_SHARED_ACCOUNTS: Final = 10_000
#: Seconds between looks for binds of accounts disabled since they bound.
ACCOUNT_RECHECK: Final = 5.0
#: Failed binds from one client address: this many at once, then one per 10 s.
ADDRESS_FAILURE_BURST: Final = 5.0
ADDRESS_FAILURE_RATE: Final = 0.1
#: Failed binds as one system_id (from anywhere): 10 at once, then one per 20 s.
SYSTEM_ID_FAILURE_BURST: Final = 10.0
SYSTEM_ID_FAILURE_RATE: Final = 0.05
#: Seconds a locked-out bind waits for its ESME_RBINDFAIL: a client that waits
#: for answers then tries at most ``max_unbound_per_address`` binds per this
#: many seconds per address, instead of as fast as herald can refuse them.
LOCKOUT_ANSWER_DELAY: Final = 2.0
#: A system_id that bound from an address lately is not locked out there by
#: failures of that system_id elsewhere (someone guessing a customer's password
#: must not keep the customer out).
KNOWN_ADDRESS_SECONDS: Final = 7 * 86400.0

MESSAGE_STATE_OF: Final = {
    Status.ACCEPTED: MessageState.ACCEPTED,
    Status.QUEUED: MessageState.ENROUTE,
    Status.SENT: MessageState.ENROUTE,
    Status.DELIVERED: MessageState.DELIVERED,
    Status.UNDELIVERED: MessageState.UNDELIVERABLE,
    Status.EXPIRED: MessageState.EXPIRED,
    Status.REJECTED: MessageState.REJECTED,
    Status.FAILED: MessageState.UNDELIVERABLE,
    # SMPP 3.4 §5.2.28: DELETED, the state of a message cancelled by cancel_sm
    # (receipt stat DELETED); herald's own cancels, by API too, are the same thing.
    Status.CANCELLED: MessageState.DELETED,
}


#: herald's own error codes (``herald.dispatch.ErrorCode``: 0x10001 ...) as
#: one octet: 0xF0 + their low nibble (unassigned in SMPP 3.4 §5.1.3).
HERALD_CODES: Final = 0x10000
HERALD_CODE_OCTET: Final = 0xF0


def customer_error(code: int | None) -> int:
    """A message's error code as the one octet query_sm_resp carries and the
    three digits of a receipt's ``err:``: an SMPP status below 0x100 as it is,
    herald's own codes as 0xF1..0xFF, any other code as 0xFF (the API gives the
    whole code)."""
    if not code:
        return 0
    if code < 0x100:
        return code
    if HERALD_CODES < code < HERALD_CODES + 0x10:
        return HERALD_CODE_OCTET + (code - HERALD_CODES)
    return 0xFF


@dataclass(slots=True)
class Binding:
    """What herald knows about a bound customer connection (``conn.context``)."""

    account_id: int
    system_id: str
    receives: bool  # receiver or transceiver: receipts and MO may go here
    bind_limit: int
    issued_at: float = 0.0  # when the login it bound with was issued (see close_revoked)
    version: int = 0x34  # the bind's interface_version: below 0x34, no TLVs to it


@dataclass(slots=True)
class _Bucket:
    rate: float
    tokens: float
    at: float

    def take(self, n: int, now: float) -> bool:
        """Admit ``n`` messages once the bucket holds ``min(n, burst)`` tokens; a
        submit_multi larger than the burst leaves it in debt (and is not refused
        for ever)."""
        if self.rate == math.inf:
            return True  # an account without a rate limit
        burst = self.rate * BURST_SECONDS
        self.tokens = min(burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= min(n, burst):
            self.tokens -= n
            return True
        return False

    def give(self, n: int) -> None:
        """Give back what a submit took that was then refused (it counts against no limit)."""
        if self.rate != math.inf:
            self.tokens = min(self.rate * BURST_SECONDS, self.tokens + n)


@dataclass(slots=True)
class _Pending:
    conn: ServerConnection
    request: SubmitSm | DataSm | SubmitMulti
    messages: list[NewMessage] = field(default_factory=list)
    charges: list[Charge] | None = None  # a billed account's: one per message


class BindThrottle:
    """Failed binds per client address and per system_id (``FailedLogins`` each),
    and the addresses each system_id bound from lately.

    Times are the event loop's (monotonic). A bind checks :meth:`admit` (a
    lockout answer, or the tokens to hold), is verified (``suspect`` if either
    key failed lately), then reports :meth:`passed` or :meth:`failed`.
    """

    def __init__(self, ledger: TokenLedger | None = None) -> None:
        self.addresses = FailedLogins(ADDRESS_FAILURE_RATE, ADDRESS_FAILURE_BURST,
                                      ledger=ledger, scope="smpp-addresses")  # fmt: skip
        self.system_ids = FailedLogins(SYSTEM_ID_FAILURE_RATE, SYSTEM_ID_FAILURE_BURST,
                                       ledger=ledger, scope="smpp-system-ids")  # fmt: skip
        self.known = RecentKeys(KNOWN_ADDRESS_SECONDS)

    async def shared_admit(self, address: str, system_id: str, epoch: float,
                           now: float) -> float:  # fmt: skip
        """After :meth:`admit`, on PostgreSQL: hold the same tokens in the buckets the
        nodes share; 0.0, or the seconds a lockout there lasts (nothing held)."""
        wait = await self.addresses.shared_take(address, epoch, now)
        if wait or self.known.recent((system_id, address), now):
            return wait
        wait = await self.system_ids.shared_take(system_id, epoch, now)
        if wait:
            await self.addresses.shared_settle(address, epoch, failed=False)
        return wait

    async def shared_settle(self, address: str, system_id: str, epoch: float, now: float,
                            *, failed: bool) -> None:  # fmt: skip
        """End :meth:`shared_admit`'s holds: a failure noted, or the tokens given back
        (call before :meth:`passed`, which makes the address known)."""
        await self.addresses.shared_settle(address, epoch, failed=failed)
        if not self.known.recent((system_id, address), now):
            await self.system_ids.shared_settle(system_id, epoch, failed=failed)

    def admit(self, address: str, system_id: str, now: float) -> str | None:
        """Take one failure token of each key, or say why the bind is locked out."""
        by_address = self.addresses.bucket(address, now)
        wait = by_address.wait(1, now)
        if wait:
            return self._locked(self.addresses, address, wait, now, f"address {address}")
        known = self.known.recent((system_id, address), now)
        by_id = self.system_ids.bucket(system_id, now)
        wait = 0.0 if known else by_id.wait(1, now)
        if wait:
            return self._locked(self.system_ids, system_id, wait, now,
                                f"system_id {system_id!r}")
        by_address.take(1, now)
        if not known:
            by_id.take(1, now)
        return None

    @staticmethod
    def _locked(table: FailedLogins, key: str, wait: float, now: float, who: str) -> str:
        why = f"too many failed binds from {who}; locked for {wait:.0f} s"
        if table.first_refusal(key, wait, now):
            log.warning("bind refused: %s", why)
        return why

    def suspect(self, address: str, system_id: str, now: float) -> bool:
        return self.addresses.suspect(address, now) or self.system_ids.suspect(system_id, now)

    def passed(self, address: str, system_id: str, now: float) -> None:
        """Give the tokens back; remember the address for the system_id."""
        known = self.known.recent((system_id, address), now)
        self.addresses.bucket(address, now).give(1)
        if not known:
            self.system_ids.bucket(system_id, now).give(1)
        self.known.note((system_id, address), now)

    def failed(self, address: str, system_id: str, now: float) -> None:
        self.addresses.failed(address, now)
        self.system_ids.failed(system_id, now)

    def returned(self, address: str, system_id: str, now: float) -> None:
        """The check did not happen (busy, store error): give the tokens back."""
        self.addresses.bucket(address, now).give(1)
        if not self.known.recent((system_id, address), now):
            self.system_ids.bucket(system_id, now).give(1)


def smpp_time(epoch: float) -> str:
    """An absolute SMPP time in UTC (SMPP 3.4 §7.1.1), as query_sm_resp carries."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%y%m%d%H%M%S") + f"{moment.microsecond // 100_000}00+"


class CustomerSmpp(ServerHandler):
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        accounts: Accounts,
        new_id: Callable[[float], str],
        clock: Callable[[], float],
        metrics: Metrics,
        *,
        on_accepted: Callable[[Sequence[NewMessage]], None] = lambda _: None,
        on_receiver: Callable[[int], None] = lambda _: None,
        limits: FrontLimits | None = None,
        prices: Callable[[int], PriceList | None] = no_prices,
        defence: LiveDefence | None = None,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.new_id = new_id
        self.clock = clock
        self.metrics = metrics
        self.on_accepted = on_accepted
        self.on_receiver = on_receiver
        self.limits = limits or FrontLimits()
        self.prices = prices
        self.defence = defence  # the pumping defence, for OTP messages (docs/fraud.md)
        self.binds: dict[int, set[ServerConnection]] = {}
        self._buckets: dict[int, _Bucket] = {}  # the accounts' rates (and buckets on SQLite)
        # On PostgreSQL, one bucket per account across the nodes (herald.cluster.budgets).
        self.shared_rates = (SharedBudgets(store, "smpp-messages", MAX_SHARED_ACCOUNTS)
                             if isinstance(store, TokenLedger) else None)  # fmt: skip
        self._priorities: dict[int, Priority | None] = {}  # the accounts' default classes
        self._names: dict[int, str] = {}  # for [[classes]] entries naming accounts
        self._batch: list[_Pending] = []
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self.throttle = BindThrottle(store if isinstance(store, TokenLedger) else None)
        self.lockout_delay = LOCKOUT_ANSWER_DELAY
        self.controls = ControlBook(store)

    # ------------------------------------------------------------------ binds

    def receivers(self, account_id: int) -> list[ServerConnection]:
        """The account's open connections that may receive deliver_sm."""
        return [c for c in self.binds.get(account_id, ()) if c.is_open
                and isinstance(c.context, Binding) and c.context.receives]

    async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
        if not self.accepting:
            return bind.response(S.ESME_RBINDFAIL)
        now = self.clock()
        address, system_id = conn.address, bind.system_id
        t = conn.loop.time()
        if self.throttle.admit(address, system_id, t) is not None:
            await asyncio.sleep(self.lockout_delay)
            return bind.response(S.ESME_RBINDFAIL)
        # On PostgreSQL the same tokens are held in the buckets the nodes share.
        if await self.throttle.shared_admit(address, system_id, now, t):
            self.throttle.returned(address, system_id, conn.loop.time())
            log.warning("%s: bind as %r from %s refused: locked out after failures on"
                        " the nodes", conn.name, system_id, address or "-")  # fmt: skip
            await asyncio.sleep(self.lockout_delay)
            return bind.response(S.ESME_RBINDFAIL)
        suspect = self.throttle.suspect(address, system_id, t)
        try:
            principal = await self.accounts.authenticate_smpp(system_id, bind.password, now,
                                                              suspect=suspect)
        except InvalidCredentials as exc:
            self.throttle.failed(address, system_id, conn.loop.time())
            log.warning("%s: failed bind from %s: %s", conn.name, address or "-", exc.reason)
            await self.throttle.shared_settle(address, system_id, now, conn.loop.time(),
                                              failed=True)  # fmt: skip
            return bind.response(S(int(exc.smpp_status)))
        except LoginsBusy:
            self.throttle.returned(address, system_id, conn.loop.time())
            log.warning("%s: bind as %r from %s refused: too many suspect binds wait",
                        conn.name, system_id, address or "-")
            await self.throttle.shared_settle(address, system_id, now, conn.loop.time(),
                                              failed=False)  # fmt: skip
            return bind.response(S.ESME_RBINDFAIL)
        except BaseException:
            self.throttle.returned(address, system_id, conn.loop.time())
            raise
        await self.throttle.shared_settle(address, system_id, now, conn.loop.time(),
                                          failed=False)  # fmt: skip
        self.throttle.passed(address, system_id, conn.loop.time())
        account = await self.store.get_account(principal.account_id)
        if account.disabled:
            log.warning("%s: refused a bind of %s: its account is disabled", conn.name,
                        bind.system_id)  # fmt: skip
            return bind.response(S.ESME_RBINDFAIL)
        rules = await self.controls.refresh(account.id, now)
        if not rules.allows_smpp_client(address):
            log.warning("%s: refused a bind of %s from %s: not in its account's SMPP networks",
                        conn.name, bind.system_id, address or "-")
            return bind.response(S.ESME_RBINDFAIL)
        if len(self.binds.get(account.id, ())) >= account.bind_limit:
            log.info("%s: %s is at its bind limit (%d)", conn.name, bind.system_id,
                     account.bind_limit)
            return bind.response(S.ESME_RBINDFAIL)
        receives = bind.command_id != CommandId.BIND_TRANSMITTER
        conn.context = Binding(account.id, bind.system_id, receives, account.bind_limit,
                               principal.issued_at, bind.interface_version)
        self._rate(account, now)
        if bind.interface_version < SMPP_34:
            return bind.response(system_id="herald")
        # §4.1.2: a 3.4 SMSC tells a 3.4 (or later) client the version it speaks
        return bind.response(system_id="herald", tlvs=(SC_INTERFACE_VERSION(SMPP_34),))

    def _rate(self, account: Account, now: float) -> None:
        """The account's bucket, created or set to its current rate (``herald
        accounts set --rate-limit`` takes effect at the next bind or recheck),
        and its default priority class, likewise."""
        self._priorities[account.id] = account.priority
        self._names[account.id] = account.name
        bucket = self._buckets.get(account.id)
        if bucket is None:
            self._buckets[account.id] = _Bucket(account.rate_limit,
                                                account.rate_limit * BURST_SECONDS, now)
        elif bucket.rate != account.rate_limit:
            bucket.rate = account.rate_limit
            bucket.tokens = min(bucket.tokens, account.rate_limit * BURST_SECONDS)

    def on_bound(self, conn: ServerConnection) -> None:
        binding = conn.context
        assert isinstance(binding, Binding)
        conns = self.binds.setdefault(binding.account_id, set())
        if len(conns) >= binding.bind_limit:
            # several binds passed authentication at once; the late ones go
            log.info("%s: %s over its bind limit, closing", conn.name, binding.system_id)
            conn.context = None
            conn.close()
            return
        conns.add(conn)
        self.metrics.binds.labels("customer", binding.system_id).inc()
        if binding.receives:
            self.on_receiver(binding.account_id)

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        binding = conn.context
        if isinstance(binding, Binding):
            conns = self.binds.get(binding.account_id)
            if conns is not None and conn in conns:
                conns.discard(conn)
                self.metrics.binds.labels("customer", binding.system_id).dec()

    async def close_revoked(self) -> int:
        """Close the binds that their account or login no longer allows; how many.
        (It also applies the account's current rate limit to its binds.)

        That is: the account was disabled, or the login the bind used was removed
        or given a new password since, or the bind's address left the account's
        SMPP networks (``herald accounts disable / remove-smpp / reset-smpp /
        set --smpp-allow``). It also re-reads the account's controls and the
        opt-out lists. The service calls it every :data:`ACCOUNT_RECHECK` seconds.
        """
        closed = 0
        for account_id, conns in list(self.binds.items()):
            if not conns:
                continue
            try:
                account = await self.store.get_account(account_id)
                logins = {c.context.system_id: await self.store.get_smpp_credential(
                    c.context.system_id) for c in conns if isinstance(c.context, Binding)}
                self.controls.forget(account_id)  # read afresh, as the account is
                rules = await self.controls.refresh(account_id, self.clock())
            except StoreError:
                continue  # deleted or unreadable: the next round looks again
            self._rate(account, self.clock())
            for conn in list(conns):
                binding = conn.context
                if not isinstance(binding, Binding):
                    continue
                login = logins.get(binding.system_id)
                if account.disabled:
                    why = "its account is disabled"
                elif login is None:
                    why = "its login was removed"
                elif login.created_at != binding.issued_at:
                    why = "its login has a new password"
                elif not rules.allows_smpp_client(conn.address):
                    why = "its address is no longer in the account's SMPP networks"
                else:
                    continue
                log.warning("%s: closing the bind of %s: %s", conn.name, binding.system_id, why)
                conn.close()
                closed += 1
        return closed

    # --------------------------------------------------------------- requests

    def on_request(self, conn: ServerConnection, request: Request) -> None:
        binding = conn.context
        assert isinstance(binding, Binding)
        match request:
            case SubmitSm() | DataSm() | SubmitMulti():
                self._submit(conn, binding, request)
            case QuerySm():
                self._spawn(self._query(conn, binding, request))
            case CancelSm() | ReplaceSm():
                self._spawn(self._change(conn, binding, request))
            case _:
                conn.respond(request.response(S.ESME_RINVCMDID))

    def _submit(self, conn: ServerConnection, binding: Binding,
                request: SubmitSm | DataSm | SubmitMulti) -> None:
        now = self.clock()
        if not self.accepting:  # stopping: retryable, and nothing stored
            conn.respond(request.response(S.ESME_RTHROTTLED))
            return
        try:
            messages = messages_from(request, account_id=binding.account_id,
                                     new_id=self.new_id, now=now, limits=self.limits,
                                     default_priority=self._priorities.get(binding.account_id),
                                     account=self._names.get(binding.account_id, ""))
        except Refused as refused:
            self.metrics.rejected_at_intake.labels("smpp", refused.status.name).inc()
            conn.respond(request.response(refused.status))
            return
        except Exception:  # a bug must cost one answer, not the session
            log.exception("%s: a submit could not be read", conn.name)
            conn.respond(request.response(S.ESME_RSYSERR))
            return
        control = self._controlled(binding.account_id, messages)
        if control is not None:
            self.metrics.rejected_at_intake.labels("smpp", control.code).inc()
            conn.respond(request.response(S(int(control.smpp_status))))
            return
        bucket = self._buckets.get(binding.account_id)
        if bucket is not None and self.shared_rates is not None and bucket.rate != math.inf:
            over = self.shared_rates.take_now(binding.account_id, bucket.rate,
                                              bucket.rate * BURST_SECONDS, len(messages), now)
            if over is None:  # the node's slice of the shared bucket does not cover it
                self._spawn(self._charge(conn, request, messages, bucket.rate, now))
                return
            admitted = not over
        else:
            admitted = bucket is None or bucket.take(len(messages), now)
        if not admitted:
            self._throttled(conn, request)
            return
        self._admit(conn, binding, request, messages, now)

    def _throttled(self, conn: ServerConnection, request: SubmitSm | DataSm | SubmitMulti,
                   ) -> None:  # fmt: skip
        self.metrics.rejected_at_intake.labels("smpp", "ESME_RTHROTTLED").inc()
        conn.respond(request.response(S.ESME_RTHROTTLED))

    async def _charge(self, conn: ServerConnection, request: SubmitSm | DataSm | SubmitMulti,
                      messages: list[NewMessage], rate: float, now: float) -> None:  # fmt: skip
        """A submit whose account's rate is shared across nodes, once the store has
        said whether the account's bucket holds it (one round trip per slice)."""
        assert self.shared_rates is not None
        binding = conn.context
        account_id = messages[0].account_id
        over = await self.shared_rates.take(account_id, rate, rate * BURST_SECONDS,
                                            len(messages), now)  # fmt: skip
        if over or not self.accepting or not isinstance(binding, Binding):
            self._throttled(conn, request)  # (stopped or unbound meanwhile: retryable)
            return
        self._admit(conn, binding, request, messages, now)

    def _admit(self, conn: ServerConnection, binding: Binding,
               request: SubmitSm | DataSm | SubmitMulti, messages: list[NewMessage],
               now: float) -> None:  # fmt: skip
        """A submit within the account's rate: priced, screened, queued for the commit."""
        charges = None
        ratings: list[Rating] | None = None
        prices = self.prices(binding.account_id)
        if prices is not None:  # a billed account: priced now, charged with the commit
            rules = self.limits.destinations()
            try:
                ratings = [rate(prices, m.to, m.segments, rules) for m in messages]
                charges = [r.charge() for r in ratings]
            except Unpriced:
                log.warning("%s: account %d has no price for a destination of its submit",
                            conn.name, binding.account_id)  # fmt: skip
                self.metrics.rejected_at_intake.labels("smpp", "unpriced").inc()
                conn.respond(request.response(S.ESME_RINVDSTADR))
                return
        pending = _Pending(conn, request, messages, charges)
        if screened(self.defence, binding.account_id, messages, now):
            self._spawn(self._screen(pending, ratings, now))
            return
        self._queue(pending)

    def _queue(self, pending: _Pending) -> None:
        self._batch.append(pending)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _screen(self, p: _Pending, ratings: list[Rating] | None, now: float) -> None:
        """An OTP submit the pumping defence must see first (``_screen``)."""
        assert self.defence is not None
        account_id = p.messages[0].account_id
        try:
            decision = await first_block(self.defence, account_id, p.messages, ratings, now)
        except StoreError as exc:
            p.conn.respond(p.request.response(S(int(exc.smpp_status))))
            return
        except Exception:  # a bug must cost one answer, not the session
            log.exception("%s: screening a submit failed", p.conn.name)
            p.conn.respond(p.request.response(S.ESME_RSYSERR))
            return
        if decision is None:
            if self.accepting:
                self._queue(p)
            else:  # stopped meanwhile: retryable, and nothing stored
                p.conn.respond(p.request.response(S.ESME_RTHROTTLED))
            return
        if (bucket := self._buckets.get(account_id)) is not None:
            if self.shared_rates is not None and bucket.rate != math.inf:
                self.shared_rates.give(account_id, bucket.rate, bucket.rate * BURST_SECONDS,
                                       len(p.messages), now)  # fmt: skip
            else:
                bucket.give(len(p.messages))
        log.info("%s: a submit of account %d refused by the pumping defence (%s)",
                 p.conn.name, account_id, decision.id)
        self.metrics.rejected_at_intake.labels("smpp", "fraud_blocked").inc()
        p.conn.respond(p.request.response(ESME_RFRAUDBLOCKED))

    def _controlled(self, account_id: int, messages: list[NewMessage]) -> IntakeError | None:
        """The refusal of the account's controls for any of ``messages``, if one."""
        rules = self.controls.rules(account_id)
        opted_out = self.controls.opted_out(account_id)
        if not (opted_out or rules.checks_messages):
            return None
        for m in messages:
            try:
                rules.check(m.to, m.sender, opted_out, to_field="destination_addr",
                            from_field="source_addr")
            except IntakeError as exc:
                return exc
        return None

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        if batch:
            self._spawn(self._commit(batch))

    async def _commit(self, batch: list[_Pending]) -> None:
        """One ``accept`` for the submits neither counted (an account with a daily
        quota) nor charged (a billed account), one each for the others, so that a
        refusal is that submit's alone (they still share the writer's group commit)."""
        now = self.clock()
        free: list[_Pending] = []
        own: list[tuple[_Pending, DailyQuota | None]] = []
        for p in batch:
            quota = self.controls.quota(p.messages[0].account_id, now)
            if quota is None and p.charges is None:
                free.append(p)
            else:
                own.append((p, quota))
        if not own:
            await self._accept(batch)
            return
        await asyncio.gather(self._accept(free),
                             *(self._accept([p], q, p.charges) for p, q in own))  # fmt: skip

    async def _accept(
        self, batch: list[_Pending], quota: DailyQuota | None = None,
        charges: list[Charge] | None = None,
    ) -> None:  # fmt: skip
        if not batch:
            return
        rows = [m for p in batch for m in p.messages]
        try:
            await self.store.accept(rows, quota=quota, charges=charges)
        except QuotaExceeded as exc:
            self.metrics.rejected_at_intake.labels("smpp", "daily_quota").inc(len(batch))
            log.info("refused %d SMPP messages of account %d: %s", len(rows),
                     rows[0].account_id, exc)
            for p in batch:
                p.conn.respond(p.request.response(S(int(exc.smpp_status))))
            return
        except InsufficientFunds:
            assert charges is not None
            log.warning("%s: account %d cannot pay %s for %d message(s): refused"
                        " (ESME_RSUBMITFAIL)", batch[0].conn.name, rows[0].account_id,
                        from_micros(sum(c.amount for c in charges)), len(rows))  # fmt: skip
            self.metrics.rejected_at_intake.labels("smpp", "insufficient_funds").inc()
            batch[0].conn.respond(batch[0].request.response(S.ESME_RSUBMITFAIL))
            return
        except StoreError as exc:
            log.warning("accepting %d SMPP messages failed: %s", len(rows), exc)
            status = S(int(exc.smpp_status))
            for p in batch:
                p.conn.respond(p.request.response(status))
            return
        except Exception:
            log.exception("accepting %d SMPP messages failed", len(rows))
            for p in batch:
                p.conn.respond(p.request.response(S.ESME_RSYSERR))
            return
        self.metrics.accepted.labels("smpp").inc(len(rows))
        for p in batch:
            p.conn.respond(p.request.response(message_id=p.messages[0].id))
        self.on_accepted(rows)

    async def _query(self, conn: ServerConnection, binding: Binding, request: QuerySm) -> None:
        try:
            message = await self.store.get_message(request.message_id,
                                                   account_id=binding.account_id)
        except MessageNotFound:
            conn.respond(request.response(S.ESME_RQUERYFAIL))
            return
        except StoreError as exc:
            conn.respond(request.response(S(int(exc.smpp_status))))
            return
        state = MESSAGE_STATE_OF[message.status]
        final = smpp_time(message.done_at) if message.done_at is not None else ""
        conn.respond(request.response(final_date=final, message_state=int(state),
                                      error_code=customer_error(message.error_code)))

    async def _change(self, conn: ServerConnection, binding: Binding,
                      request: CancelSm | ReplaceSm) -> None:
        now, account_id = self.clock(), binding.account_id
        try:
            if isinstance(request, CancelSm):
                status = await cancel_sm(self.store, account_id, request, now, self.limits)
            else:
                status = await replace_sm(self.store, account_id, request, now, self.limits)
        except Refused as refused:
            log.info("%s: %s of %r refused (%s): %s", conn.name, type(request).__name__,
                     request.message_id, refused.status.name, refused.reason)
            status = refused.status
        except StoreError as exc:
            status = S(int(exc.smpp_status))
        except Exception:  # a bug must cost one answer, not the session
            log.exception("%s: a %s failed", conn.name, type(request).__name__)
            status = S.ESME_RSYSERR
        conn.respond(request.response(status))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Stop accepting; wait for the commits under way (graceful shutdown)."""
        self.accepting = False
        self._flush()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

