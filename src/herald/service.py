"""The composition root: the platform in one process, or the front of two.

``Platform.start(config)`` opens the store, then starts, in order: dispatch
(upstream binds), the webhook sender, the SMPP notifier, the SMPP listener
and the HTTP API. With ``processes=2`` (``herald serve``'s default on two
CPUs or more) dispatch and the webhook sender run in the delivery process
instead (:mod:`herald.workers`), which this one starts and supervises.
``stop()`` is the reverse, gracefully:

1. intake stops (the HTTP server stops accepting connections and finishes its
   requests; the SMPP listener refuses new binds and new submits, and the
   commits under way complete and are answered);
2. dispatch stops claiming, finishes or hands back its in-flight work, and
   unbinds from the operators (the delivery process, told to stop, does
   this and 3. for its webhooks, then exits);
3. the notifier and the webhook sender return what they hold to the outbox;
4. customers' SMPP sessions are unbound; the store commits and closes.

Nothing accepted is lost at any step: what is not finished stays in the store
(the store is the queue) and the next start picks it up.

The front process checks each destination against the operator's number
tables and the route table (:mod:`herald.numbers`: reloaded within seconds of
``herald numbers import-*``), so it refuses what dispatch could not deliver.

The store is SQLite in the data directory, or PostgreSQL when ``[store] url``
names a database (docs/scale-out.md): then each process opens a pool of its
own on it, and none of the SQLite store's machinery (its file, write lock and
commit writer) exists; the data directory still holds the master key, the
guard's state and the demo's files.

``--demo`` adds an embedded SMSC simulator as the only upstream, a catch-all
route to it, and a demo account whose credentials are printed and written to
``<data-dir>/demo.env`` (mode 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import uvicorn
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts, InvalidCredentials, load_master_key
from herald.admin import Admin, AdminKeys
from herald.api import AdminContext, ApiContext, ConnectorState, UpstreamState, create_app
from herald.api._protocol import protocol_for
from herald.billing import PriceLists
from herald.chat import ChatService, fraud_screen
from herald.config import (
    ConnectorConfig,
    HeraldConfig,
    InboundConfig,
    RouteConfig,
)
from herald.console import console_key
from herald.defence import LiveDefence
from herald.dispatch import Dispatcher
from herald.guard.journal import GuardJournal, audit_key
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.net import ServerSettings, SmppServer
from herald.numbers import NumberTables, route_check
from herald.routes import LiveClasses
from herald.routing import RouteTable
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role
from herald.smpp_front import ACCOUNT_RECHECK, CustomerSmpp, FrontLimits, SmppNotifier
from herald.store import (
    AdminScope,
    AuditEntry,
    Channel,
    NewMessage,
    NotFound,
    SQLiteConfig,
    SQLiteStore,
    Store,
    StoreClosed,
    UnknownAccount,
)
from herald.verify import code_key
from herald.webhooks import WebhookSender, sender_for
from herald.workers import DeliveryWorker, ServeLeases

__all__ = [
    "DEMO_ACCOUNT", "DEMO_ADMIN", "PG_POOL_FRONT", "PG_POOL_ONE", "DemoCredentials", "Platform",
    "demo_config", "open_store", "run",
]

log = logging.getLogger("herald")

DEMO_ACCOUNT: Final = "demo"
#: The demo's admin key name (the console's demo login; the audit log's actor).
DEMO_ADMIN: Final = "demo-admin"
DEMO_ENV: Final = "demo.env"
#: The demo simulator's record of every SMS it received (docs/sim.md), bodies in hex.
DEMO_PHONES: Final = "demo-phones.tsv"
#: The demo's simulator sends its receipts within 2 s: a minute without one is lost.
DEMO_RECEIPT_TIMEOUT: Final = 60.0
_NUMBER_TABLES: Final = "number-tables"  # the task that reloads them
_ADMIN_CHANGES: Final = "admin-changes"  # the task that notices changes made elsewhere
_PRICE_LISTS: Final = "price-lists"  # the task that reloads the sell price lists
_CLASS_ENTRIES: Final = "class-entries"  # the task that reloads the [[classes]] entries
_CHAT: Final = "chat"  # the chat channels' chains (docs/channels.md)
_MARGIN_SUMS: Final = "margin-sums"  # the task that keeps the margin sums up to date
_LOOPING: Final = (  # run until cancelled
    "account-recheck", _NUMBER_TABLES, _ADMIN_CHANGES, _PRICE_LISTS, _CLASS_ENTRIES, _CHAT,
    _MARGIN_SUMS,
)
#: Seconds between two updates of the margin sums (docs/billing.md): a margin report
#: then sums at most this long of new CDRs, however long since the last one.
MARGIN_SUMS_INTERVAL: Final = 60.0
#: PostgreSQL connections the front process may hold (``[store] url``). Each store
#: call holds one for its transaction, so this bounds the calls in flight; more
#: wait their turn. With the delivery process's (workers.PG_POOL_DELIVERY) and the
#: lease keeper's (workers.KEEPER_CONNECTIONS) a node holds at most 18: three nodes
#: stay well within PostgreSQL's default max_connections (100), with room for psql,
#: migrations and a replica's tools.
PG_POOL_FRONT: Final = 8
#: The same with ``processes = 1``: the front's and the delivery's calls in one pool.
PG_POOL_ONE: Final = 12


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the platform owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class DemoCredentials:
    api_key: str
    system_id: str
    password: str = field(repr=False)
    admin_key: str = field(default="", repr=False)  # the console's demo login


@dataclass
class Platform:
    """A running herald. Build with :meth:`start`; end with :meth:`stop`."""

    config: HeraldConfig
    store: Store
    accounts: Accounts
    metrics: Metrics
    dispatcher: Dispatcher | None  # None when dispatch runs in its own process (worker)
    webhooks: WebhookSender | None  # None when the delivery process runs it
    front: CustomerSmpp
    notifier: SmppNotifier
    smpp: SmppServer
    http: _Uvicorn
    tasks: list[asyncio.Task[Any]]
    extras: list[Any] = field(default_factory=list)  # e.g. the demo simulator
    worker: DeliveryWorker | None = None  # the delivery process, with processes=2
    leases: ServeLeases | None = None  # this node's binds, when it dispatches on PostgreSQL
    numbers: NumberTables | None = None  # the plan and routes destinations are checked against
    admin: Admin | None = None  # the admin API's service (/v1/admin)
    chat: ChatService | None = None  # the chat channels, when herald.toml has [channels]
    prices: PriceLists | None = None  # the sell price lists accounts are charged by
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # stop() began

    @property
    def http_port(self) -> int:
        for server in self.http.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("the HTTP server is not listening")

    @classmethod
    async def start(
        cls,
        config: HeraldConfig,
        *,
        registry: CollectorRegistry | None = None,
        store: Store | None = None,
        prepare: Callable[[Store, Accounts], Awaitable[None]] | None = None,
        processes: int = 1,
        log_level: str = "WARNING",
        migrate: bool = False,
        intake_nice: int = 0,
    ) -> Platform:
        """Open the store (unless given), run ``prepare`` (e.g. create the demo
        account) and start every component; with ``processes=2`` dispatch runs
        in a child process (:mod:`herald.workers`) over the same store.
        ``migrate``: apply a PostgreSQL store's missing migrations (see
        :func:`open_store`, whose errors it raises). ``intake_nice``: with two
        processes, what this one adds to its nice value once the delivery process
        runs (``herald serve`` gives the configuration's: see
        :mod:`herald.workers._supervisor`)."""
        clock = time.time
        metrics = Metrics(registry or CollectorRegistry())
        if store is None:
            store = await open_store(config, PG_POOL_FRONT if processes >= 2 else PG_POOL_ONE,
                                     migrate=migrate)  # fmt: skip
        accounts = Accounts(store)
        ids = SortableIdGenerator()
        worker: DeliveryWorker | None = None
        dispatcher: Dispatcher | None = None
        leases: ServeLeases | None = None
        if processes >= 2:
            worker = DeliveryWorker(config, lambda channels: committed(channels),
                                    log_level=log_level, loop=config.event_loop(),
                                    intake_nice=intake_nice)  # fmt: skip
            metrics.include(worker.metrics_snapshot)
            claim: Callable[[], None] = worker.wake
        else:
            try:  # PostgreSQL: the binds this node may open (docs/leases.md)
                leases = await ServeLeases.open(config)
            except BaseException:
                await store.aclose()
                raise
            dispatcher = Dispatcher(store, config, metrics=metrics, clock=clock,
                                    slots=None if leases is None else leases.slots,
                                    leader=None if leases is None else leases.leads)
            if leases is not None:
                leases.attach(dispatcher)
            metrics.watch_connectors(dispatcher.connectors.values())
            claim = dispatcher.wake
        metrics.watch_backlog(store, clock)  # this process serves /metrics
        # Webhooks go out from the process whose commits create their events: the
        # delivery process when there is one (receipts and MO arrive there).
        webhooks = None if worker is not None else sender_for(
            store, config.data_dir, config.webhooks, metrics)

        def accepted(messages: Sequence[NewMessage]) -> None:
            claim()

        # Destinations are refused at acceptance when the numbering plan has no
        # range for them or no route serves them (dispatch checks routes again).
        numbers = NumberTables(store, routable=route_check(RouteTable(config.routes)))
        try:
            await numbers.refresh()
        except Exception:  # serve without the tables rather than not at all
            log.exception("reading the number tables failed; starting without them")
        # The [[classes]] entries of the routes in force: the class of a message
        # whose request names none (docs/routing.md), networks from the same tables.
        classes = LiveClasses(store, index=lambda: numbers.rules().index)
        try:
            await classes.refresh()
        except Exception:  # serve with the accounts' defaults rather than not at all
            log.exception("reading the class entries failed; starting without them")
        # Accounts with a sell price list are charged at acceptance (docs/billing.md).
        prices = PriceLists(store)
        try:
            await prices.refresh()
        except Exception:  # serve without billing rather than not at all
            log.exception("reading the price lists failed; starting without them")
        # The pumping defence lives here, with intake (docs/fraud.md, "Live"): the
        # HTTP API's and the SMPP front's OTP messages meet one engine per account.
        defence = LiveDefence(store, ids, addresses=config.address_types)
        front = CustomerSmpp(store, accounts, ids.new_id, clock, metrics, on_accepted=accepted,
                             limits=FrontLimits(intake=config.intake,
                                                destinations=numbers.rules, classes=classes),
                             prices=prices.sell, defence=defence)
        notifier = SmppNotifier(store, front, clock)
        front.on_receiver = notifier.wake

        def committed(channels: frozenset[Channel]) -> None:
            # The commit that wrote events wakes whoever delivers them: no polling delay.
            if Channel.WEBHOOK in channels and webhooks is not None:
                webhooks.wake()
            if Channel.SMPP in channels:
                notifier.wake()

        store.watch_outbox(committed)
        store.watch_finals(metrics.count_finals)
        smpp = SmppServer(front, ServerSettings(
            host=config.smpp.host, port=config.smpp.port, ssl=_server_tls(config),
            session=SessionConfig(role=Role.SMSC, window=config.smpp.window,
                                  enquire_link_interval=config.smpp.enquire_link_interval,
                                  session_init_timeout=config.smpp.session_init_timeout),
            max_connections=config.smpp.max_connections,
            max_per_address=config.smpp.max_per_address,
            max_unbound=config.smpp.max_unbound,
            max_unbound_per_address=config.smpp.max_unbound_per_address,
            # No limit of its own (a locked-out bind waits for its answer, and
            # must not hold up others): the connection limits bound the binds in
            # flight, Accounts (HashLanes) bounds and orders the hashing.
            max_concurrent_auth=config.smpp.max_connections,
        ))
        stopping = asyncio.Event()  # set first thing in stop(): no send is stored after it
        master_key = load_master_key(config.data_dir)
        admin = Admin(store, accounts, AdminKeys(store), master_key=master_key, clock=clock)
        admin_context = AdminContext(
            admin, connectors=partial(_connector_states, config, dispatcher, worker),
            numbers_in_use=lambda: numbers.generation, console_key=console_key(master_key),
            fallback_routes=RouteTable(config.routes),
            guard=GuardJournal(config.guard.log_path(config.data_dir),
                               audit_key(config.guard.audit_key_file, os.environ)))
        chat = None
        if config.channels is not None:  # chains and provider webhooks (docs/channels.md)
            async def account_id(name: str) -> int | None:
                try:
                    return (await store.get_account_by_name(name)).id
                except NotFound:
                    return None

            chat = ChatService(store, config.channels, clock=clock, on_sms=lambda: claim(),
                               accounts=account_id,
                               screen=fraud_screen(defence, prices.sell, numbers.rules))
        app = create_app(ApiContext(store=store, accounts=accounts, ids=ids, clock=clock,
                                    metrics=metrics, config=config.http, on_accepted=accepted,
                                    intake=config.intake, destinations=numbers.rules,
                                    stopping=stopping.is_set,
                                    block_private_callbacks=config.webhooks.block_private_addresses,
                                    upstreams=partial(_upstreams, config, dispatcher, worker),
                                    admin=admin_context, prices=prices.sell,
                                    classes=classes, verify=config.verify,
                                    verify_key=code_key(master_key), defence=defence,
                                    chat=chat))
        # httptools, not "auto": h11 costs ~80 us more per request (bench/api.py),
        # and a missing parser should fail loudly rather than slow herald down.
        # and plain sends are answered inside the connection (api/_protocol.py).
        # Client addresses are herald's to judge ([http] trusted_proxies), not
        # uvicorn's (which would trust X-Forwarded-For from 127.0.0.1).
        http = _Uvicorn(uvicorn.Config(app, host=config.http.host, port=config.http.port,
                                       http=protocol_for(getattr(app, "fast_send", None)),
                                       log_level="warning", lifespan="off", access_log=False,
                                       proxy_headers=False))
        tasks: list[asyncio.Task[Any]] = []
        platform = cls(config, store, accounts, metrics, dispatcher, webhooks, front, notifier,
                       smpp, http, tasks, worker=worker, numbers=numbers, admin=admin,
                       prices=prices, leases=leases,
                       stopping=stopping)
        try:
            if prepare is not None:
                await prepare(store, accounts)
            if dispatcher is not None:
                await dispatcher.start()
                if leases is not None:
                    await leases.start()
            if worker is not None:
                await worker.start()
            if webhooks is not None:
                tasks.append(asyncio.create_task(webhooks.run(), name="webhooks"))
            notifier.start()
            recheck = asyncio.Event()  # an account or login changed: look at the binds now

            def account_changed(entry: AuditEntry) -> None:
                if entry.target.startswith("account:"):
                    if entry.action == "account.opt_outs":
                        front.controls.opt_outs_changed()  # read by the recheck, not in 2 s
                    recheck.set()

            admin.feed.watch(account_changed)
            tasks.append(asyncio.create_task(_recheck_accounts(front, recheck),
                                             name="account-recheck"))
            tasks.append(asyncio.create_task(numbers.run(), name=_NUMBER_TABLES))
            tasks.append(asyncio.create_task(classes.run(), name=_CLASS_ENTRIES))
            tasks.append(asyncio.create_task(admin.feed.run(store), name=_ADMIN_CHANGES))
            tasks.append(asyncio.create_task(prices.run(), name=_PRICE_LISTS))
            tasks.append(asyncio.create_task(_keep_margin_sums(store, clock), name=_MARGIN_SUMS))
            if chat is not None:
                tasks.append(asyncio.create_task(chat.run(), name=_CHAT))
                platform.chat = chat
            await smpp.start()
            tasks.append(asyncio.create_task(defence.prepare(clock()), name="fraud-rebuild"))
            tasks.append(asyncio.create_task(http.serve(), name="http"))
            while not http.started:
                if tasks[-1].done():
                    await tasks[-1]  # raises why it could not start (a taken port...)
                    raise OSError(f"the HTTP API could not listen on "
                                  f"{config.http.host}:{config.http.port}")
                await asyncio.sleep(0.01)
        except BaseException:
            await platform.stop()
            raise
        return platform

    async def stop(self) -> None:
        """Graceful shutdown; see the module docstring."""
        self.stopping.set()  # HTTP sends: 503 + Retry-After from now on
        self.smpp.stop_accepting()
        self.http.should_exit = True
        await self.front.drain()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.leases is not None:
            await self.leases.stop()
        if self.worker is not None:
            await self.worker.stop()
        await self.notifier.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        await self.smpp.stop(timeout=5)
        for task in self.tasks:
            if task.get_name() in _LOOPING:
                task.cancel()  # it loops until cancelled
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.chat is not None:
            await self.chat.aclose()
        for extra in reversed(self.extras):
            await extra.stop()
        if self.admin is not None:
            self.admin.keys.close()
        self.accounts.close()
        await self.store.aclose()


async def open_store(config: HeraldConfig, connections: int, *, migrate: bool = False) -> Store:
    """The front's store: SQLite in ``config.data_dir`` (its commits on the event loop),
    or PostgreSQL at ``config.store.url`` with a pool of ``connections`` (migrated
    first only with ``migrate``). Raises :class:`StoreUnavailable` (the database is
    out of reach) and :class:`SchemaError` (behind or ahead of this herald)."""
    if config.store.url is None:
        return SQLiteStore.open(SQLiteConfig(data_dir=config.data_dir, writer="loop"))
    from herald.store.postgres import open_served

    return await open_served(config.store.url, migrate=migrate, max_connections=connections)


def _upstreams(
    config: HeraldConfig, dispatcher: Dispatcher | None, worker: DeliveryWorker | None
) -> dict[str, UpstreamState] | None:
    """The connectors' binds for ``/healthz``: this process's dispatch, or what the
    delivery process last reported (``None`` while it is not running or reporting)."""
    if dispatcher is not None:
        bound: Mapping[str, int] | None = {n: c.bound for n, c in dispatcher.connectors.items()}
    else:
        bound = worker.upstream_binds() if worker is not None else None
    if bound is None:
        return None
    return {c.name: UpstreamState(bound.get(c.name, 0), 0 if c.bind_type == "receiver" else c.binds)
            for c in config.connectors}  # fmt: skip


def _connector_states(
    config: HeraldConfig, dispatcher: Dispatcher | None, worker: DeliveryWorker | None
) -> list[ConnectorState]:
    """The connectors for the admin API: configuration and binds up now."""
    binds = _upstreams(config, dispatcher, worker)
    return [ConnectorState(c.name, c.host, c.port, c.system_id, c.bind_type,
                           0 if c.bind_type == "receiver" else c.binds,
                           None if binds is None else binds[c.name].bound, c.tps, c.window)
            for c in config.connectors]  # fmt: skip


async def _recheck_accounts(front: CustomerSmpp, changed: asyncio.Event) -> None:
    """Close the binds of disabled accounts and removed or reset logins, every
    ACCOUNT_RECHECK seconds and as soon as ``changed`` is set (an admin change)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), ACCOUNT_RECHECK)
        changed.clear()
        try:
            await front.close_revoked()
        except StoreClosed:
            return
        except Exception:
            log.exception("looking for disabled accounts failed")


async def _keep_margin_sums(store: Store, clock: Callable[[], float]) -> None:
    """Bring the margin sums up to date every MARGIN_SUMS_INTERVAL seconds: the
    margin of an empty period sums nothing and updates them (the SQLite store's
    rollups, docs/billing.md)."""
    while True:
        await asyncio.sleep(MARGIN_SUMS_INTERVAL)
        try:
            now = clock()
            await store.margin(now, now, "account")
        except StoreClosed:
            return
        except Exception:
            log.exception("updating the margin sums failed")


def _server_tls(config: HeraldConfig) -> Any:
    if config.smpp.tls_cert is None or config.smpp.tls_key is None:
        return None
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.smpp.tls_cert, config.smpp.tls_key)
    return context


# -- demo -------------------------------------------------------------------------


def demo_config(config: HeraldConfig, sim_port: int) -> HeraldConfig:
    """``config`` with the embedded simulator as its only upstream."""
    # The embedded simulator answers query_sm, and forgets its messages (and their
    # pending receipts) when the demo stops: after a restart, what it will never
    # report is asked about after a minute and ended within a few (docs/dispatch.md).
    sim = ConnectorConfig(name="sim", host="127.0.0.1", port=sim_port, system_id="herald",
                          password="demo", binds=2, window=64, tps=10_000.0,
                          receipt_timeout=DEMO_RECEIPT_TIMEOUT, query_sm=True)
    # The simulator's scripted behaviours live on the unassigned country code 999.
    intake = replace(config.intake, test_prefixes=(*config.intake.test_prefixes, "999"))
    # A demo posts its webhooks to a receiver on this machine.
    webhooks = replace(config.webhooks, block_private_addresses=False)
    return replace(config, connectors=(sim,), routes=(RouteConfig(prefix="", connectors=("sim",)),),
                   inbound=(InboundConfig(prefix="", account=DEMO_ACCOUNT),), intake=intake,
                   webhooks=webhooks)


def demo_channels(config: HeraldConfig, whatsapp: Any) -> HeraldConfig:
    """``config`` with the demo's WhatsApp fake as its WhatsApp channel, its one
    phone number owned by the demo account, and example template prices (made up
    for the demo: set your own in [channels.whatsapp] prices; docs/channels.md)."""
    from herald.channels.clients import WhatsAppSettings
    from herald.chat import ChatSettings
    from herald.sim.chat.demo import DEMO_BUSINESS_ACCOUNT_ID, DEMO_NUMBER_ID

    settings = WhatsAppSettings(f"http://127.0.0.1:{whatsapp.port}", whatsapp.token,
                                whatsapp.app_secret,
                                business_account_id=DEMO_BUSINESS_ACCOUNT_ID)
    prices = {("whatsapp", "marketing"): 52_900, ("whatsapp", "utility"): 22_000,
              ("whatsapp", "authentication"): 35_800}
    return replace(config, channels=ChatSettings(settings, {DEMO_NUMBER_ID: DEMO_ACCOUNT},
                                                 prices=prices))


async def ensure_demo_account(store: Store, accounts: Accounts, data_dir: Path) -> DemoCredentials:
    """The demo account's credentials: created once, then read back from demo.env."""
    env_path = data_dir / DEMO_ENV
    now = time.time()
    saved = _read_env(env_path)
    try:
        account = await store.get_account_by_name(DEMO_ACCOUNT)
    except UnknownAccount:
        account = None
    if account is not None and {"HERALD_API_KEY", "HERALD_SMPP_SYSTEM_ID",
                                "HERALD_SMPP_PASSWORD"} <= saved.keys():
        return DemoCredentials(saved["HERALD_API_KEY"], saved["HERALD_SMPP_SYSTEM_ID"],
                               saved["HERALD_SMPP_PASSWORD"])
    if account is None:
        account, key = await accounts.create(DEMO_ACCOUNT, now, rate_limit=10_000, bind_limit=8)
    else:  # the file is gone: issue fresh credentials
        key = await accounts.issue_api_key(account.id, now)
    await accounts.remove_smpp(DEMO_ACCOUNT)
    smpp = await accounts.add_smpp(account.id, DEMO_ACCOUNT, now)
    creds = DemoCredentials(key.key, DEMO_ACCOUNT, smpp.password)
    _write_env(env_path, {
        "HERALD_API_KEY": creds.api_key,
        "HERALD_SMPP_SYSTEM_ID": creds.system_id,
        "HERALD_SMPP_PASSWORD": creds.password,
    })
    return creds


async def ensure_demo_admin(store: Store, accounts: Accounts, data_dir: Path) -> str:
    """The demo's admin key (the console's login): issued once, then read back from
    demo.env; issued again if the file lost it or the key was revoked."""
    env_path = data_dir / DEMO_ENV
    saved = _read_env(env_path).get("HERALD_ADMIN_KEY", "")
    keys = AdminKeys(store)
    try:
        if saved:
            try:
                await keys.authenticate(saved, time.time())
                return saved
            except InvalidCredentials:
                pass
        active = await keys.active(DEMO_ADMIN)
        if active is not None:
            await store.revoke_admin_key(active.key_id, time.time())
        admin = Admin(store, accounts, keys)
        issued = await admin.issue_admin_key("demo", DEMO_ADMIN, AdminScope.WRITE)
    finally:
        keys.close()
    _write_env(env_path, {**_read_env(env_path), "HERALD_ADMIN_KEY": issued.key})
    return issued.key


def _read_env(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# herald demo credentials (herald serve --demo); keep this file private\n")
        fh.writelines(f"{k}={v}\n" for k, v in values.items())
    os.chmod(path, 0o600)


# -- running ----------------------------------------------------------------------


async def run(config: HeraldConfig, *, demo: bool = False, out: Any = None,
              log_level: str = "WARNING", migrate: bool = False,
              demo_whatsapp: Any = None) -> None:
    """Run until SIGINT/SIGTERM, then stop gracefully. ``migrate``: see :meth:`Platform.start`.
    ``demo_whatsapp``: the demo's WhatsApp fake's misbehaviour (``herald.sim.chat.cli``)."""
    import sys

    out = out or sys.stdout
    extras: list[Any] = []
    if demo:
        from herald.sim import RecordContent, SimConfig, Simulator

        # The simulator plays the phones too: what they received (bodies in hex)
        # is in <data-dir>/demo-phones.tsv, where a demo user reads a Verify
        # code (docs/verify.md). herald itself never logs a code.
        config.data_dir.mkdir(parents=True, exist_ok=True)
        phones = config.data_dir / DEMO_PHONES
        phones.touch(mode=0o600)  # message bodies: the owner's only, like demo.env
        phones.chmod(0o600)
        sim = Simulator(SimConfig(port=0, receipt_delay=(0.5, 2.0),
                                  record=phones,
                                  record_content=RecordContent.HEX))
        await sim.start()
        extras.append(sim)
        config = demo_config(config, sim.port)
        if config.channels is None:  # WhatsApp first, SMS fallback (docs/channels.md)
            from herald.sim.chat.demo import DemoWhatsApp

            whatsapp = DemoWhatsApp(demo_whatsapp)
            await whatsapp.start()
            extras.append(whatsapp)
            config = demo_channels(config, whatsapp)
    creds: list[DemoCredentials] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        if demo:
            account = await ensure_demo_account(store, accounts, config.data_dir)
            admin_key = await ensure_demo_admin(store, accounts, config.data_dir)
            creds.append(replace(account, admin_key=admin_key))

    try:
        platform = await Platform.start(config, prepare=prepare, log_level=log_level,
                                        processes=config.process_count(), migrate=migrate,
                                        intake_nice=config.intake_nice)
    except BaseException:
        for extra in extras:
            await extra.stop()
        raise
    platform.extras.extend(extras)
    for extra in extras:
        if hasattr(extra, "fake"):  # the demo's WhatsApp fake: its statuses go to herald
            extra.fake.webhook_url = (f"http://127.0.0.1:{platform.http_port}"
                                      "/v1/channels/whatsapp/webhook")
    if demo:
        # `herald send` finds the API where the demo really listens (--http may move it).
        env_path = config.data_dir / DEMO_ENV
        _write_env(env_path, {**_read_env(env_path),
                              "HERALD_API": f"http://{config.http.host}:{platform.http_port}"})
        _print_demo(out, config, platform, creds[0])
    else:
        where = (f"delivery in process {platform.worker.pid}" if platform.worker is not None
                 else "one process")  # fmt: skip
        if config.store.url is not None:
            from herald.store.postgres import redact

            where += f", store {redact(config.store.url)}"
        print(f"herald: HTTP API on http://{config.http.host}:{platform.http_port}, "
              f"SMPP on {config.smpp.host}:{platform.smpp.port}, data in {config.data_dir},"
              f" {where}",
              file=out, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("herald: stopping (finishing in-flight work)...", file=out, flush=True)
        await platform.stop()
        print("herald: stopped", file=out, flush=True)


def _print_demo(out: Any, config: HeraldConfig, platform: Platform,
                creds: DemoCredentials) -> None:
    api = f"http://{config.http.host}:{platform.http_port}"
    print(f"""herald demo is running (an embedded simulator plays the operator).

  HTTP API   {api}   (docs: {api}/docs)
  SMPP       {config.smpp.host}:{platform.smpp.port}   system_id={creds.system_id} \
password={creds.password}
  API key    {creds.api_key}
  Console    {api}/console   sign in with the admin key
             {creds.admin_key}
  saved in   {config.data_dir / DEMO_ENV} (mode 0600)

Send a message and watch it become delivered:

  ./scripts/herald send --to +447911123456 --text "Hello from herald"

or with curl:

  export HERALD_API_KEY={creds.api_key}
  curl -s {api}/v1/messages -H "Authorization: Bearer $HERALD_API_KEY" \\
       -H 'Content-Type: application/json' -d '{{"to":"+447911123456","from":"herald",\
"text":"Hello"}}'

WhatsApp first, SMS if not read within 60 s (+447911123450 has no WhatsApp: SMS at once):

  curl -s {api}/v1/messages -H "Authorization: Bearer $HERALD_API_KEY" \\
       -H 'Content-Type: application/json' -d '{{"to":"+447911123456","from":"herald",\
"text":"Your order has shipped","channels":[{{"channel":"whatsapp","template":\
{{"name":"order_update","language":"en_US"}},"success":"read","within":60}},\
{{"channel":"sms"}}]}}'

Stop with Ctrl+C.""", file=out, flush=True)
