"""The link between herald serve's processes: coalesced wake-ups, metrics, end of file.

Both ends live on one event loop here (a real AF_UNIX SOCK_SEQPACKET pair);
the processes themselves are in tests/workers/test_processes.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from herald.config import parse_config
from herald.workers import DeliveryWorker, Link, link_pair
from herald.workers._link import ACCEPTED, EVENTS_SMPP, METRICS, QUIT, UPSTREAMS


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self.closed = 0

    def received(self, kind: bytes, payload: bytes) -> None:
        self.messages.append((kind, payload))

    def gone(self) -> None:
        self.closed += 1


async def until(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.005)


async def test_wake_ups_of_one_turn_go_out_once_and_metrics_whole() -> None:
    front_sock, child_sock = link_pair()
    got = Inbox()
    front = Link(front_sock, lambda kind, payload: None)
    child = Link(child_sock, got.received)
    try:
        for _ in range(100):  # one loop turn: coalesced into one datagram of each kind
            front.send(ACCEPTED)
        front.send(QUIT)
        await until(lambda: len(got.messages) >= 2)
        await asyncio.sleep(0.05)
        assert sorted(got.messages) == [(ACCEPTED, b""), (QUIT, b"")]
        snapshot = b"# TYPE x counter\n" + b"x_total 1.0\n" * 5000  # ~60 KB, one datagram
        assert front.send_now(METRICS, snapshot)
        await until(lambda: len(got.messages) == 3)
        assert got.messages[-1] == (METRICS, snapshot)
    finally:
        front.close()
        child.close()


async def test_a_peer_that_does_not_read_costs_dropped_wake_ups_not_errors() -> None:
    front_sock, child_sock = link_pair()
    front = Link(front_sock, lambda kind, payload: None)
    child_sock.setblocking(False)  # nobody reads this end
    try:
        sent = [front.send_now(EVENTS_SMPP) for _ in range(100_000)]
        assert sent[0] and not all(sent)  # the buffer filled; the rest were dropped
        assert not front.closed
    finally:
        front.close()
        child_sock.close()


async def test_the_other_end_closing_is_reported_once_and_unknown_kinds_ignored() -> None:
    front_sock, child_sock = link_pair()
    got = Inbox()
    front = Link(front_sock, got.received, on_closed=got.gone)
    try:
        child_sock.send(b"Zgarbage")  # not a kind the link knows: logged, ignored
        child_sock.send(EVENTS_SMPP)
        await until(lambda: got.messages)
        assert got.messages == [(EVENTS_SMPP, b"")]
        child_sock.close()  # the process died
        await until(lambda: got.closed)
        await asyncio.sleep(0.05)
        assert got.closed == 1 and front.closed
        front.send(ACCEPTED)  # to a dead peer: nothing happens
        assert not front.send_now(ACCEPTED)
    finally:
        front.close()


async def test_upstream_binds_reach_the_front_and_bad_reports_are_ignored(
    tmp_path: Path,
) -> None:
    events: list[object] = []
    worker = DeliveryWorker(parse_config({"data_dir": str(tmp_path)}), events.append)
    front_sock, child_sock = link_pair()
    front = Link(front_sock, worker._received)  # the front's end, as DeliveryWorker makes it
    try:
        assert worker.upstream_binds() is None  # nothing reported yet
        for bad in (b"{", b"[1]", b'{"a": "2"}', b'{"a": true}'):
            child_sock.send(UPSTREAMS + bad)
        child_sock.send(EVENTS_SMPP)  # after them in order: they were all handled by then
        await until(lambda: events)
        assert worker.upstream_binds() is None
        child_sock.send(UPSTREAMS + b'{"a": 2, "b": 0}')
        await until(lambda: worker.upstream_binds() is not None)
        assert worker.upstream_binds() == {"a": 2, "b": 0}
    finally:
        front.close()
        child_sock.close()
