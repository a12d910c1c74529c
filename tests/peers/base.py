"""What every peer harness shares: errors, bounded waits, ports, processes, PDU values.

Threads and asyncio: the harnesses are thread-based (a peer is a subprocess or a
background thread), so they work from plain and from asyncio tests alike. A call
that blocks (a wait, an HTTP request, a bind) would freeze an event loop, and with
it a herald server running on that loop, so from a coroutine use the awaitable
twin (``await x.await_for(...)``, ``await kannel.asend(...)``). Calling the
blocking form from a running event loop raises ``WrongContext`` instead of
deadlocking until a timeout.
"""

# Async waits take `timeout` like their blocking twins: their error names what was
# awaited and carries the peer's log tails, which asyncio.timeout() cannot.
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

__all__ = [
    "LOOPBACK",
    "PeerError",
    "PeerExited",
    "PeerRefused",
    "PeerStartError",
    "PeerTimeout",
    "Recorder",
    "SmPdu",
    "SubmitResp",
    "WrongContext",
    "forbid_event_loop",
    "free_port",
    "free_ports",
    "stop_process",
    "tail",
]

T = TypeVar("T")

LOOPBACK = "127.0.0.1"

# Polling period of every bounded wait: short next to a loopback round trip of
# a few milliseconds plus the peer's own processing, long enough not to spin.
POLL_INTERVAL = 0.01
# Lines of each log file quoted in an error.
LOG_TAIL_LINES = 30
# Items one Recorder keeps; a runaway peer must not eat the machine's memory.
MAX_RECORDED = 100_000
# How long a terminated peer gets to exit before it is killed.
STOP_GRACE = 3.0


class PeerError(Exception):
    """A peer misbehaved or could not be driven. ``logs`` holds the peer's log tails."""

    def __init__(self, message: str, *, logs: str = "") -> None:
        self.logs = logs
        super().__init__(message + (f"\n--- peer logs ---\n{logs}" if logs else ""))


class PeerStartError(PeerError):
    """The peer did not come up (exited, or not ready within its startup bound)."""


class PeerTimeout(PeerError, TimeoutError):
    """An awaited event did not happen within its bound."""


class PeerExited(PeerError):
    """The peer process ended while it was still needed."""


class PeerRefused(PeerError):
    """The peer answered, negatively: a bind refused, a sendsms rejected."""

    def __init__(self, message: str, *, status: int, logs: str = "") -> None:
        self.status = status
        super().__init__(message, logs=logs)


class WrongContext(PeerError, RuntimeError):
    """A blocking harness call was made on a running event loop's thread."""


def forbid_event_loop(what: str) -> None:
    """Raise ``WrongContext`` when called from a thread running an asyncio loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise WrongContext(
        f"{what} blocks and was called from a running event loop, which would freeze "
        "the server under test on that loop; await its async twin instead"
    )


def free_ports(count: int = 1) -> tuple[int, ...]:
    """``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    For peers that cannot bind port 0 and report it (Kannel, smpp34's server).
    Another process may take a port before the peer binds it; the harnesses
    retry startup a bounded number of times when that happens.
    """
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:  # all held open at once, so the ports are distinct
            s.bind((LOOPBACK, 0))
        return tuple(int(s.getsockname()[1]) for s in sockets)
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """One port from ``free_ports``."""
    (port,) = free_ports(1)
    return port


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"==> {path.name}: unreadable ({exc.strerror})"
    text = data.decode("utf-8", errors="replace").splitlines()[-lines:]
    return f"==> {path.name} (last {len(text)} lines)\n" + "\n".join(text)


def tails(paths: Iterable[Path], lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(tail(p, lines) for p in paths)


def stop_process(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> int | None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; returns the exit code.

    Harnesses start peers in their own session (``start_new_session=True``), so
    the signals go to the peer's whole process group: nothing it forked is left.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        _signal_group(proc, sig)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group whose leader is proc (its own session)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


class Recorder(Generic[T]):
    """A thread-safe, append-only record of what a peer did, with bounded waits.

    Producers (peer reader threads) call ``append``; tests read ``items()`` or
    wait for an item with ``wait_for`` (blocking) / ``await_for`` (asyncio).
    """

    def __init__(self, what: str, logs: Callable[[], str] | None = None) -> None:
        self._what = what
        self._logs = logs or (lambda: "")
        self._items: list[T] = []
        self._cond = threading.Condition()
        self._closed: str | None = None

    def append(self, item: T) -> None:
        with self._cond:
            if len(self._items) >= MAX_RECORDED:
                raise PeerError(f"{self._what}: more than {MAX_RECORDED} events recorded")
            self._items.append(item)
            self._cond.notify_all()

    def close(self, reason: str) -> None:
        """No more items will come (the peer ended); waiters fail fast with ``reason``."""
        with self._cond:
            self._closed = reason
            self._cond.notify_all()

    def items(self) -> tuple[T, ...]:
        with self._cond:
            return tuple(self._items)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _matching(self, predicate: Callable[[T], bool], count: int) -> list[T] | None:
        found = [item for item in self._items if predicate(item)]
        return found[:count] if len(found) >= count else None

    def _timeout(self, what: str, timeout: float, predicate_seen: int) -> PeerTimeout:
        reason = f" ({self._closed})" if self._closed else ""
        recent = "\n".join(repr(item) for item in self._items[-5:])
        return PeerTimeout(
            f"{self._what}: no {what} within {timeout:.1f}s{reason}; "
            f"{predicate_seen} matching of {len(self._items)} recorded; last ones:\n{recent}",
            logs=self._logs(),
        )

    def wait_for(
        self, predicate: Callable[[T], bool] = lambda _: True, *, timeout: float,
        count: int = 1, what: str = "matching event",
    ) -> tuple[T, ...]:
        """Block until ``count`` items satisfy ``predicate``; return the first ``count``."""
        forbid_event_loop(f"{self._what}.wait_for")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = self._matching(predicate, count)
                if found is not None:
                    return tuple(found)
                left = deadline - time.monotonic()
                if left <= 0 or self._closed is not None:
                    seen = sum(1 for item in self._items if predicate(item))
                    raise self._timeout(what, timeout, seen)
                self._cond.wait(left)

    async def await_for(
        self, predicate: Callable[[T], bool] = lambda _: True, *, timeout: float,
        count: int = 1, what: str = "matching event",
    ) -> tuple[T, ...]:
        """``wait_for`` for coroutines: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                found = self._matching(predicate, count)
                if found is not None:
                    return tuple(found)
                if time.monotonic() >= deadline or self._closed is not None:
                    seen = sum(1 for item in self._items if predicate(item))
                    raise self._timeout(what, timeout, seen)
            await asyncio.sleep(POLL_INTERVAL)


# SMPP 3.4 §5.2.12: esm_class bits 5..2 carry the message type; 0b0001 (0x04)
# in a deliver_sm is an SMSC delivery receipt.
ESM_TYPE_MASK = 0x3C
ESM_DELIVERY_RECEIPT = 0x04
# SMPP 3.4 §5.3.2: optional parameter tags the receipt checks read.
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_MESSAGE_STATE = 0x0427
_RECEIPT_ID = re.compile(rb"(?:^|\s)id:(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SubmitResp:
    """A submit_sm_resp as a peer client received it."""

    command_status: int
    message_id: str | None
    sequence_number: int | None = None
    index: int | None = None  # position in the submitted list, when the harness knows it

    @property
    def ok(self) -> bool:
        return self.command_status == 0


@dataclass(frozen=True)
class SmPdu:
    """A submit_sm or deliver_sm (one body layout: SMPP 3.4 §4.4.1, §4.6.1) as a
    peer sent or received it.

    ``short_message`` and the TLV values are the octets on the wire; ``text`` is
    what the peer's own decoder made of them, when it decodes (npm smpp does).
    """

    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...] = ()
    registered_delivery: int = 0
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    protocol_id: int = 0
    service_type: str = ""
    sequence_number: int | None = None
    text: str | None = None
    raw: bytes | None = field(default=None, repr=False, compare=False)  # the whole PDU

    def tlv(self, tag: int) -> bytes | None:
        return next((value for t, value in self.tlvs if t == tag), None)

    @property
    def is_receipt(self) -> bool:
        return self.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT

    @property
    def receipted_message_id(self) -> str | None:
        """The receipt's message id: TLV 0x001E first, the ``id:`` text field second."""
        raw = self.tlv(TAG_RECEIPTED_MESSAGE_ID)
        if raw is not None:
            return raw.rstrip(b"\x00").decode("latin-1")
        match = _RECEIPT_ID.search(self.short_message) if self.is_receipt else None
        return match.group(1).decode("latin-1") if match else None

    @property
    def message_state(self) -> int | None:
        raw = self.tlv(TAG_MESSAGE_STATE)
        return raw[0] if raw else None
