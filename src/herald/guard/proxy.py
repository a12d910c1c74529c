"""Inline mode: the guard between two M3UA peers.

Each connection accepted on the listening address gets its own connection to
the peer address; bytes flow both ways through an M3UA framer (over a stream,
the common header's length field delimits messages, RFC 4666 §3.1). Every
DATA message is judged (:class:`~herald.guard.inspector.Inspector`):

- allowed or alerted: forwarded unchanged, byte for byte;
- blocked: dropped, or, with ``on_block="udts"`` and when the sender asked for
  it (Q.714 §4.2: the return option of a UDT/XUDT), answered with a UDTS/XUDTS
  carrying the policy's return cause, sent back on the connection it came from.

Messages without SCCP user data (ASP management, heartbeats, SSNM) pass
through unjudged. A framing error closes both connections (a stream cannot be
resynchronised). The time from a message's last octet arriving to its
forwarding is recorded in :attr:`GuardProxy.latency`, the verdicts by action,
rule and category in :attr:`GuardProxy.stats` (plain counters on the hot path;
:mod:`herald.guard.metrics` serves them to Prometheus).

SCTP (one-to-one style sockets) is offered when the kernel has it; see
:func:`sctp_support`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import secrets
import socket
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from herald.guard.inspector import Inspection, Inspector, prepare
from herald.signaling import (
    DecodeError,
    SignalingError,
    SignalingMessage,
    encode,
    udts_response,
)
from herald.signaling.correlations import CorrelationStore
from herald.signaling.homerouting import HomeRouter, Outcome
from herald.signaling.m3ua import Framer
from herald.signaling.policy import (
    Action,
    Category,
    Direction,
    Origin,
    Policy,
    Rule,
    Verdict,
    operation_name,
)
from herald.signaling.policy.bridge import facts_from_message
from herald.signaling.policy.config import OnBlock
from herald.signaling.policy.egress import SharedLookups
from herald.signaling.policy.snapshot import SnapshotError
from herald.signaling.policy.snapshot import encode as encode_snapshot
from herald.store._errors import StoreUnavailable

__all__ = [
    "GuardProxy",
    "LatencyHistogram",
    "LookupStore",
    "ProxyStats",
    "SnapshotStore",
    "VerdictKey",
    "parse_address",
    "sctp_support",
]

log = logging.getLogger("herald.guard.proxy")

# Bytes asked of the socket per read. The framer holds at most one message
# beyond what it returns (its own bound), so memory per connection is bounded.
READ_CHUNK = 65_536
# Messages judged as one batch and forwarded per write at most: one system
# call per batch, without holding the first message of a large read while the
# rest are judged.
FLUSH_EVERY = 32
# Latency samples kept for percentiles (the oldest are dropped).
LATENCY_SAMPLES = 100_000
# Histogram bucket upper bounds, seconds.
LATENCY_BUCKETS: tuple[float, ...] = (
    10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6,
    1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3, 100e-3, float("inf"),
)  # fmt: skip
# How often the lookup-only timer is checked, seconds.
EXPIRE_INTERVAL = 1.0
# Bound on connecting to the peer, seconds.
CONNECT_TIMEOUT = 10.0
# Bound on waiting for connection handlers to finish at close, seconds.
CLOSE_TIMEOUT = 5.0
# How often the engine's state is saved (with a snapshot store), seconds, and
# how many of the newest entries of each table a snapshot holds. Copying them
# holds the event loop (about 0.6-1 us an entry: 10-80 ms for full tables on
# the shared development machine); encoding and sealing them runs in a thread
# (about 1.3 s of CPU for 20,000 entries a table, measured by bench/guard.py),
# hence the bound and the interval.
SNAPSHOT_EVERY = 30.0
SNAPSHOT_ENTRIES = 10_000
# How often proxies sharing a store exchange what changed in their engines,
# seconds (an UpdateLocation through one is known to the other this much
# later at most, plus one write and read), and how many of the newest entries
# of each table a share looks at: more changes than this to one table between
# two shares lose the oldest (about 1 us an entry on the loop).
SHARE_EVERY = 1.0
SHARE_ENTRIES = 5_000

_UNENCODABLE = "home-routed message could not be rewritten"
_STORE_FAILED = "home routing's correlation store did not answer"
# What a shared correlation store raises when it cannot answer (refused then).
_STORE_ERRORS = (StoreUnavailable, sqlite3.Error)

# RFC 4666 §3.1.2: message class 1 (transfer), type 1 (DATA).
_TRANSFER, _DATA = 1, 1


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` to a (host, port) pair; ValueError if not."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def sctp_support() -> tuple[bool, str]:
    """Whether SCTP sockets can be made here, and why not."""
    proto = getattr(socket, "IPPROTO_SCTP", None)
    if proto is None:
        return False, "this Python has no socket.IPPROTO_SCTP"
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto).close()
    except OSError as exc:
        return False, f"the kernel refuses SCTP sockets ({exc.strerror or exc})"
    return True, ""


class LatencyHistogram:
    """Per-message processing latency: bucket counts plus recent samples."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.total = 0
        self.sum = 0.0  # seconds, over every message observed

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.samples.append(seconds)
        self.total += 1
        self.sum += seconds

    def percentile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]

    def summary_lines(self) -> list[str]:
        if not self.total:
            return ["latency: no messages judged"]
        p50, p99 = self.percentile(50), self.percentile(99)
        assert p50 is not None and p99 is not None
        lines = [f"latency: {self.total} messages, p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us"]
        lower = 0.0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            if count:
                top = "inf" if bound == float("inf") else f"{bound * 1e6:.0f}us"
                lines.append(f"  {lower * 1e6:>6.0f}us - {top:>8}: {count}")
            lower = bound
        return lines


#: What :attr:`ProxyStats.verdicts` counts messages by: no subscriber data.
VerdictKey = tuple[Action, Rule | None, Category]


@dataclass(slots=True)
class ProxyStats:
    connections: int = 0
    open_connections: int = 0
    forwarded: int = 0  # DATA allowed or alerted, forwarded
    blocked: int = 0
    udts_sent: int = 0
    passed_through: int = 0  # non-DATA M3UA (ASP management etc.)
    home_routed: int = 0  # messages rewritten by SMS home routing
    framing_errors: int = 0
    late_alerts: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)  # blocks
    verdicts: dict[VerdictKey, int] = field(default_factory=dict)  # every judged DATA
    late_by_rule: dict[str, int] = field(default_factory=dict)


class LookupStore(SharedLookups, Protocol):
    """Where the proxies of a store share SRI-SM answers at once
    (herald.guard.correlations.SQLiteLookups, herald.guard.pg_state.PostgresLookups)."""

    def expire(self) -> None: ...

    def flush(self) -> None:
        """Store the answers given so far, before the messages that carried
        them are forwarded."""
        ...


class SnapshotStore(Protocol):
    """Where the engine's snapshots are kept (herald.guard.correlations.SQLiteSnapshots)."""

    def save(self, proxy: str, data: bytes) -> None: ...

    def load(self) -> list[tuple[float, bytes]]: ...

    def share(self, proxy: str, data: bytes) -> None: ...

    def shared(self, after: int, proxy: str) -> tuple[int, list[tuple[float, bytes]]]: ...


class GuardProxy:
    """The proxy. ``interconnect`` names the side facing the interconnect
    (``"listen"`` or ``"peer"``): messages from it are judged as inbound, so a
    home GT arriving from there is caught as spoofed. None: direction unknown.
    """

    def __init__(
        self,
        inspector: Inspector,
        peer: tuple[str, int],
        *,
        on_block: str = OnBlock.DROP,
        return_cause: int = 1,
        transport: str = "tcp",
        interconnect: str | None = None,
        home_router: HomeRouter | None = None,
        correlations: Callable[[Policy], CorrelationStore | None] | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_every: float = SNAPSHOT_EVERY,
        share_every: float = SHARE_EVERY,
        lookups: LookupStore | None = None,
    ) -> None:
        if on_block not in (OnBlock.DROP, OnBlock.UDTS):
            raise ValueError(f"on_block must be {OnBlock.DROP!r} or {OnBlock.UDTS!r}")
        if transport not in ("tcp", "sctp"):
            raise ValueError("transport must be 'tcp' or 'sctp'")
        if transport == "sctp":
            ok, why = sctp_support()
            if not ok:
                raise OSError(f"SCTP unavailable: {why}")
        if interconnect not in (None, "listen", "peer"):
            raise ValueError("interconnect must be 'listen', 'peer' or None")
        if home_router is not None and interconnect is None:
            raise ValueError("SMS home routing needs the interconnect side (--interconnect)")
        self.inspector = inspector
        self.peer = peer
        self.on_block = on_block
        self.return_cause = return_cause
        self.transport = transport
        self.interconnect = interconnect
        self.home_router = home_router
        # Where a router made by a reload keeps its correlations (None: memory).
        self._correlations = correlations
        # The engine's state saved every snapshot_every s and at close, and
        # merged from every proxy's last snapshot at start (see restore()).
        self.snapshots = snapshots
        self.snapshot_every = snapshot_every
        # ... and what changed in it exchanged with the other proxies of the
        # store every share_every s (see share_state()).
        self.share_every = share_every
        self._snapshot_id = secrets.token_hex(8)
        self._shared_since = 0.0  # the engine's clock at the last share
        self._shared_seq = 0  # the store's last share read
        self._store_warned = -60.0
        if snapshots is not None:
            inspector.engine.share_deliveries()
        # SRI-SM answers shared at once with the other proxies of the store,
        # purged on the timer.
        self.lookups = lookups
        if lookups is not None:
            inspector.engine.share_lookups(lookups)
        self.stats = ProxyStats()
        self.latency = LatencyHistogram()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._ids = itertools.count(1)

    def reload(self, policy: Policy, *, on_block: str | None = None) -> None:
        """Judge and route by ``policy`` from now on (SIGHUP), keeping all
        state. ``on_block`` overrides the policy's, as at start. Raises
        ValueError, changing nothing, when ``policy`` turns home routing on and
        the proxy does not know its interconnect side, and whatever opening
        the correlation store raises (StoreUnavailable, OSError, ...), changing
        nothing either."""
        hr = policy.home_routing
        if hr.enabled and self.interconnect is None:
            raise ValueError("SMS home routing needs the interconnect side (--interconnect)")
        router = None
        if hr.enabled and self.home_router is None:
            # First, so that a store that cannot be opened changes nothing.
            store = self._correlations(policy) if self._correlations is not None else None
            router = HomeRouter(policy, correlations=store)
        self.inspector.replace_policy(policy)
        self.on_block = on_block or policy.proxy.on_block
        self.return_cause = policy.proxy.return_cause
        if not hr.enabled:
            self.home_router = None
        elif router is not None:
            self.home_router = router
        elif self.home_router is not None:
            self.home_router.replace_policy(policy)

    async def restore(self) -> tuple[int, int]:
        """Merge the engine's state saved by earlier proxies (this one before a
        restart, or another sharing the store), oldest first: (snapshots
        restored, entries). Snapshots that cannot be restored here (another
        hash seed) are skipped and said so in the log."""
        if self.snapshots is None:
            return 0, 0
        engine, now = self.inspector.engine, asyncio.get_running_loop().time()
        restored = entries = 0
        for age, data in self.snapshots.load():
            try:
                entries += engine.restore_state(data, now, age)
                restored += 1
            except SnapshotError as exc:
                log.warning("engine snapshot not restored: %s", exc)
        # Then what the running proxies shared since their snapshots.
        self._shared_seq, shares = self.snapshots.shared(0, self._snapshot_id)
        entries += self._merge_shares(shares, now)
        self._shared_since = now
        return restored, entries

    def _merge_shares(self, shares: list[tuple[float, bytes]], now: float) -> int:
        engine, entries = self.inspector.engine, 0
        for age, data in shares:
            try:
                entries += engine.restore_state(data, now, age, share=True)
            except SnapshotError as exc:
                log.warning("engine state shared by another proxy not merged: %s", exc)
        return entries

    async def share_state(self) -> int:
        """Exchange what changed with the other proxies of the store: what
        changed in this engine since the last share is written (copied on the
        loop, encoded, sealed and written in a thread), what the others wrote
        since is read and merged (newer entries win, lookups and sweeps are
        joined, a delivery through another proxy settles the lookup it
        followed here). Entries merged; a store error is logged and the
        proxy goes on (the next share catches up)."""
        if self.snapshots is None:
            return 0
        loop = asyncio.get_running_loop()
        now = loop.time()
        copied = self.inspector.engine.copy_changes(now, self._shared_since, SHARE_ENTRIES)
        store, proxy, after = self.snapshots, self._snapshot_id, self._shared_seq

        def exchange() -> tuple[int, list[tuple[float, bytes]]]:
            store.share(proxy, encode_snapshot(copied))
            return store.shared(after, proxy)

        try:
            self._shared_seq, shares = await asyncio.to_thread(exchange)
        except (OSError, sqlite3.Error, StoreUnavailable) as exc:
            log.warning("engine state not shared: %s", exc)
            return 0
        self._shared_since = now
        return self._merge_shares(shares, loop.time())

    async def save_state(self) -> None:
        """Save the engine's state now (copied on the loop, encoded, sealed and
        written in a thread). A store error is logged: the proxy goes on."""
        if self.snapshots is None:
            return
        copied = self.inspector.engine.copy_state(
            asyncio.get_running_loop().time(), SNAPSHOT_ENTRIES
        )
        store, proxy = self.snapshots, self._snapshot_id

        def write() -> None:
            store.save(proxy, encode_snapshot(copied))

        try:
            await asyncio.to_thread(write)
        except (OSError, sqlite3.Error, StoreUnavailable) as exc:
            log.warning("engine snapshot not saved: %s", exc)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free one)."""
        if self.transport == "sctp":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(16)
            sock.setblocking(False)
            self._server = await asyncio.start_server(self._handle, sock=sock)
        else:
            self._server = await asyncio.start_server(self._handle, host, port)
        self._spawn(self._expire_loop())
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        """Stop accepting, close every connection (each handler then ends on
        its own), wait for the handlers, stop the timer."""
        if self._server is not None:
            self._server.close()
        for a_writer, b_writer in list(self._connections):
            a_writer.close()
            b_writer.close()
        handlers = [t for t in self._handlers if not t.done()]
        if handlers:
            _, stuck = await asyncio.wait(handlers, timeout=CLOSE_TIMEOUT)
            for task in stuck:  # e.g. still connecting to the peer
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
        await self.save_state()  # a restart loses nothing judged before it

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect_peer(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.peer
        if self.transport == "sctp":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            return await asyncio.open_connection(sock=sock)
        return await asyncio.open_connection(host, port)

    async def _handle(self, a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter) -> None:
        conn = next(self._ids)
        self.stats.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            b_reader, b_writer = await asyncio.wait_for(self._connect_peer(), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            log.warning("connection %d: cannot reach the peer: %s", conn, exc)
            a_writer.close()
            return
        pair = (a_writer, b_writer)
        self._connections.add(pair)
        self.stats.open_connections += 1
        if self.interconnect == "listen":
            from_a, from_b = Direction.INBOUND, Direction.OUTBOUND
        elif self.interconnect == "peer":
            from_a, from_b = Direction.OUTBOUND, Direction.INBOUND
        else:
            from_a = from_b = Direction.UNKNOWN
        pumps = [
            asyncio.ensure_future(self._pump(a_reader, b_writer, a_writer, from_a, conn, "a>b")),
            asyncio.ensure_future(self._pump(b_reader, a_writer, b_writer, from_b, conn, "b>a")),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._connections.discard(pair)
            self.stats.open_connections -= 1
            for p in pumps:
                p.cancel()
            for p in pumps:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await p
            for w in (a_writer, b_writer):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        forward: asyncio.StreamWriter,
        back: asyncio.StreamWriter,
        direction: Direction,
        conn: int,
        way: str,
    ) -> None:
        framer = Framer()
        loop = asyncio.get_running_loop()
        inspector, stats = self.inspector, self.stats
        verdicts = stats.verdicts
        clock = time.perf_counter
        context: dict[str, object] = {"mode": "proxy", "conn": conn, "way": way}
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                return
            arrived = clock()
            try:
                messages = framer.feed(data)
            except DecodeError as exc:
                stats.framing_errors += 1
                log.warning("connection %d %s: framing error at offset %d", conn, way, exc.offset)
                return
            now = loop.time()
            out: list[bytes] = []
            back_out: list[bytes] = []
            # FLUSH_EVERY messages at a time: the DATA among them judged as a
            # batch (prepared, then judged in order: see Inspector), then
            # forwarded in their arrival order with what passes through.
            for first in range(0, len(messages), FLUSH_EVERY):
                group = messages[first : first + FLUSH_EVERY]
                judged = [m for m in group if m[2] == _TRANSFER and m[3] == _DATA]
                if self.home_router is not None:
                    self._routed_group(group, now, direction, conn, way, out, back_out)
                    self._flush(forward, out, back, back_out, arrived, len(judged))
                    continue
                results = inspector.judged([(now, m) for m in judged], direction, context)
                for msg in group:
                    if msg[2] != _TRANSFER or msg[3] != _DATA:
                        out.append(msg)
                        stats.passed_through += 1
                        continue
                    result = next(results)
                    verdict = result.verdict
                    if verdict is not None:
                        key = (verdict.action, verdict.rule, verdict.category)
                        verdicts[key] = verdicts.get(key, 0) + 1
                    if verdict is None or verdict.allowed:
                        out.append(msg)
                        stats.forwarded += 1
                    else:
                        self._blocked(msg, verdict.rule, result.message, back_out)
                for _ in results:  # none left: the batch ends, the collector resumes
                    pass
                self._flush(forward, out, back, back_out, arrived, len(judged))
            await forward.drain()
            await back.drain()

    def _routed_group(
        self,
        group: list[bytes],
        now: float,
        direction: Direction,
        conn: int,
        way: str,
        out: list[bytes],
        back_out: list[bytes],
    ) -> None:
        """One group with SMS home routing on: messages from the interconnect
        may be restored (and are judged as restored) or refused; messages to
        it are judged as they came and then rewritten. A block is answered
        from the bytes that arrived, never from a restored message."""
        router, inspector, stats = self.home_router, self.inspector, self.stats
        assert router is not None
        verdicts = stats.verdicts
        inbound = direction == Direction.INBOUND
        context: dict[str, object] = {"mode": "proxy", "conn": conn, "way": way}
        for msg in group:
            if msg[2] != _TRANSFER or msg[3] != _DATA:
                out.append(msg)
                stats.passed_through += 1
                continue
            prepared = prepare(msg, now, direction)
            decoded = prepared[0]
            outgoing = msg
            if inbound and decoded is not None:
                try:
                    outcome = router.from_interconnect(decoded, now)
                except SignalingError:
                    outcome = Outcome(None, None, _UNENCODABLE)
                except _STORE_ERRORS as exc:
                    outcome = self._store_failed(exc)
                if outcome is not None and outcome.refusal:
                    self._refused(outcome, now, context, back_out, decoded)
                    continue
                if outcome is not None and outcome.forward is not None:
                    restored = outcome.forward
                    try:
                        outgoing = encode(restored)
                    except SignalingError:
                        self._refused(Outcome(None, None, _UNENCODABLE), now, context, back_out)
                        continue
                    stats.home_routed += 1
                    lookup = outcome.lookup
                    if lookup is not None:
                        # Its SRI-SM answer may have passed before a restart or
                        # through another proxy: the correlation vouches for it.
                        inspector.engine.lookup_answered(
                            lookup.smsc_gt, lookup.imsi, lookup.node, lookup.answered
                        )
                    prepared = (restored, facts_from_message(restored, now, direction), None)
            result: Inspection = inspector.judge(prepared, now, context)
            verdict = result.verdict
            if verdict is not None:
                key = (verdict.action, verdict.rule, verdict.category)
                verdicts[key] = verdicts.get(key, 0) + 1
            if verdict is not None and not verdict.allowed:
                self._blocked(msg, verdict.rule, decoded, back_out)
                continue
            if not inbound and decoded is not None:
                try:
                    rewritten = router.to_interconnect(decoded, now)
                except SignalingError:
                    # Fail closed: what cannot be rewritten does not leave.
                    self._refused(Outcome(None, None, _UNENCODABLE), now, context, back_out)
                    continue
                except _STORE_ERRORS as exc:
                    # Fail closed: an answer whose correlation is not stored
                    # does not leave (the SMSC asks again).
                    self._refused(self._store_failed(exc), now, context, back_out)
                    continue
                if rewritten is not None:
                    stats.home_routed += 1
                    if rewritten.forward is None:
                        continue
                    try:
                        outgoing = encode(rewritten.forward)
                    except SignalingError:
                        # Fail closed: what cannot be rewritten does not leave.
                        self._refused(Outcome(None, None, _UNENCODABLE), now, context, back_out)
                        continue
            out.append(outgoing)
            stats.forwarded += 1

    def _store_failed(self, exc: Exception) -> Outcome:
        """A home-routed message the correlation store could not serve:
        refused, with a warning at most once a minute."""
        now = time.monotonic()
        if now - self._store_warned >= 60.0:
            self._store_warned = now
            log.warning("home routing: the correlation store failed (%s); refusing", exc)
        return Outcome(None, None, _STORE_FAILED)

    def _refused(
        self,
        outcome: Outcome,
        now: float,
        context: dict[str, object],
        back_out: list[bytes],
        decoded: SignalingMessage | None = None,
    ) -> None:
        """A message the home router refused: a block verdict (audited,
        counted; the sender as the engine publishes it, a salted hash), and
        the router's answer sent back, if it has one."""
        router, engine = self.home_router, self.inspector.engine
        calling = "" if decoded is None else decoded.calling_digits or ""
        origin = router.origin(calling) if router is not None else Origin.FOREIGN
        sender = engine.subscriber_hash("gt", calling) if calling else ""
        opcode = None if decoded is None else decoded.operation
        verdict = Verdict(Action.BLOCK, Rule.HOME_ROUTING, Category.SMS, outcome.refusal, now,
                          operation_name(opcode), origin, "",
                          sender)  # fmt: skip
        self.inspector.record(verdict, context)
        stats = self.stats
        key = (verdict.action, verdict.rule, verdict.category)
        stats.verdicts[key] = stats.verdicts.get(key, 0) + 1
        stats.blocked += 1
        name = Rule.HOME_ROUTING.value
        stats.by_rule[name] = stats.by_rule.get(name, 0) + 1
        if outcome.answer is not None:
            back_out.append(encode(outcome.answer))

    def _blocked(
        self, msg: bytes, rule: Rule | None, decoded: object, back_out: list[bytes]
    ) -> None:
        stats = self.stats
        stats.blocked += 1
        name = rule.value if rule is not None else "?"
        stats.by_rule[name] = stats.by_rule.get(name, 0) + 1
        if self.on_block == OnBlock.UDTS and self._wants_return(decoded):
            try:
                back_out.append(udts_response(msg, self.return_cause))
                stats.udts_sent += 1
            except SignalingError:
                pass  # a service message, or no SCCP to answer: drop

    def _flush(
        self,
        forward: asyncio.StreamWriter,
        out: list[bytes],
        back: asyncio.StreamWriter,
        back_out: list[bytes],
        arrived: float,
        judged: int,
    ) -> None:
        """Write what is ready in one call per direction (one system call,
        not one per message), and record each judged message's latency.
        SRI-SM answers shared with the other proxies are stored first."""
        if self.lookups is not None:
            self.lookups.flush()
        if out:
            forward.write(b"".join(out))
            out.clear()
        if back_out:
            back.write(b"".join(back_out))
            back_out.clear()
        if judged:
            elapsed = time.perf_counter() - arrived
            for _ in range(judged):
                self.latency.observe(elapsed)

    @staticmethod
    def _wants_return(message: object) -> bool:
        sccp = getattr(message, "sccp", None)
        return bool(getattr(sccp, "return_on_error", False))

    async def _expire_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_snapshot = loop.time() + self.snapshot_every
        next_share = loop.time() + self.share_every
        while True:
            await asyncio.sleep(min(EXPIRE_INTERVAL, self.share_every))
            now = loop.time()
            if now >= next_share:
                await self.share_state()
                next_share = now + self.share_every
            if now >= next_snapshot:
                await self.save_state()
                next_snapshot = now + self.snapshot_every
            if self.lookups is not None:
                self.lookups.expire()
            late = self.inspector.expire(now, mode="proxy")
            if self.home_router is not None:
                try:
                    self.home_router.expire(now)
                except _STORE_ERRORS as exc:
                    log.warning("home routing: correlations not purged: %s", exc)
            self.stats.late_alerts += len(late)
            by_rule = self.stats.late_by_rule
            for verdict in late:
                name = verdict.rule.value if verdict.rule is not None else "none"
                by_rule[name] = by_rule.get(name, 0) + 1
