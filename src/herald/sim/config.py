"""``SimConfig``: every setting of the simulator, typed and checked at construction.

The CLI turns its options into one of these with the ``parse_*`` helpers; code
that embeds the simulator (tests, ``herald serve --demo``, benchmarks) builds
it directly. Every error is a :class:`SimConfigError` naming the setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from herald.sim.errors import SimConfigError
from herald.sim.ids import IdStyle, ReceiptIdForm
from herald.sim.outcomes import Outcome, OutcomeMix
from herald.sim.record import RecordContent
from herald.smpp.limits import MAX_WINDOW
from herald.smpp.pdus import LENIENT_PASSWORD_MAX

__all__ = [
    "DEFAULT_MAX_HELD_RECEIPTS",
    "DEFAULT_MAX_TRACKED_MESSAGES",
    "DEFAULT_PORT",
    "MAX_RECEIPT_DELAY",
    "SimConfig",
    "parse_delay",
    "parse_listen",
    "parse_outcomes",
]

#: herald serve's own SMPP port is 2775; the simulator sits next to it.
DEFAULT_PORT: Final = 2776
#: A longer delay is a typo (and would keep messages in memory for days).
MAX_RECEIPT_DELAY: Final = 86_400.0
#: Receipts (and MO echoes) waiting for a receiver bind, all system_ids
#: together; beyond this the oldest is dropped (and counted).
DEFAULT_MAX_HELD_RECEIPTS: Final = 100_000
#: Messages whose state query_sm can report; the oldest is forgotten first.
DEFAULT_MAX_TRACKED_MESSAGES: Final = 100_000
#: SMPP 3.4 §5.2.1: system_id is a C-Octet String of at most 16 octets.
MAX_SYSTEM_ID: Final = 15


def _setting(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise SimConfigError(name, message)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """The simulator's settings. Times are seconds."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 picks a free port (tests)
    #: None accepts every bind; otherwise binds must carry exactly this pair
    system_id: str | None = None
    password: str | None = field(default=None, repr=False)
    #: the system_id the simulator names itself in bind responses
    server_system_id: str = "herald-sim"
    #: (min, max): each receipt waits a uniform draw from this range
    receipt_delay: tuple[float, float] = (1.0, 1.0)
    outcomes: OutcomeMix = field(default_factory=OutcomeMix)
    #: submits per second per system_id (None: no limit); see bucket.py
    tps: float | None = None
    #: the bucket's size (default: one second's worth of ``tps``)
    tps_burst: float | None = None
    #: seeds outcomes, delays and ids (None: a fresh seed each run)
    seed: int | None = None
    id_style: IdStyle = IdStyle.HEX
    receipt_id: ReceiptIdForm = ReceiptIdForm.SAME
    #: append one line per submit to this file (see record.py)
    record: Path | None = None
    record_content: RecordContent = RecordContent.HASH
    #: keep the same records in memory (``Simulator.records``), for tests
    keep_records: bool = False
    #: deliver_sm (receipts, MO) in flight per receiver bind
    window: int = 64
    max_held_receipts: int = DEFAULT_MAX_HELD_RECEIPTS
    max_tracked_messages: int = DEFAULT_MAX_TRACKED_MESSAGES
    max_connections: int = 1000
    #: the share (0..1) of receipts lost on the way: the message still reaches
    #: its outcome (query_sm reports it), but its receipt is never sent
    drop_receipts: float = 0.0

    def __post_init__(self) -> None:
        _setting(0 <= self.port <= 0xFFFF, "port", f"{self.port} is not a TCP port")
        _setting((self.system_id is None) == (self.password is None), "system-id",
                 "give both --system-id and --password, or neither (any bind accepted)")
        if self.system_id is not None:
            _setting(0 < len(self.system_id) <= MAX_SYSTEM_ID, "system-id",
                     f"1..{MAX_SYSTEM_ID} characters (SMPP 3.4 §5.2.1)")
        if self.password is not None:
            _setting(len(self.password) < LENIENT_PASSWORD_MAX, "password",
                     f"at most {LENIENT_PASSWORD_MAX - 1} characters")
        _setting(0 < len(self.server_system_id) <= MAX_SYSTEM_ID, "server-system-id",
                 f"1..{MAX_SYSTEM_ID} characters (SMPP 3.4 §5.2.1)")
        low, high = self.receipt_delay
        _setting(0 <= low <= high <= MAX_RECEIPT_DELAY, "receipt-delay",
                 f"need 0 <= min <= max <= {MAX_RECEIPT_DELAY:g} seconds, not {low}:{high}")
        if self.tps is not None:
            _setting(math.isfinite(self.tps) and self.tps > 0, "tps",
                     f"a positive number, not {self.tps}")
        if self.tps_burst is not None:
            _setting(self.tps is not None, "tps-burst", "only meaningful with --tps")
            _setting(math.isfinite(self.tps_burst) and self.tps_burst >= 1, "tps-burst",
                     f"a number >= 1, not {self.tps_burst}")
        _setting(1 <= self.window <= MAX_WINDOW, "window", f"1..{MAX_WINDOW}, not {self.window}")
        _setting(0.0 <= self.drop_receipts <= 1.0, "drop-receipts",
                 f"a share from 0 to 1, not {self.drop_receipts}")
        for name in ("max_held_receipts", "max_tracked_messages", "max_connections"):
            value = getattr(self, name)
            _setting(value >= 1, name.replace("_", "-"), f"must be >= 1, not {value}")

    @property
    def burst(self) -> float | None:
        """The bucket size in effect (None without a TPS limit)."""
        if self.tps is None:
            return None
        return self.tps_burst if self.tps_burst is not None else max(1.0, self.tps)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:2776`` for IPv6; ``:2776`` for 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    _setting(bool(sep) and port.isascii() and port.isdigit(), "listen",
             f"expected HOST:PORT, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    _setting(number <= 0xFFFF, "listen", f"{number} is not a TCP port")
    return host or "127.0.0.1", number


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SimConfigError("receipt-delay", f"{text!r} is not a number of seconds") from None
    _setting(math.isfinite(value) and value >= 0, "receipt-delay",
             f"{text!r} is not a number of seconds >= 0")
    return value


def parse_delay(text: str) -> tuple[float, float]:
    """``SECONDS`` or ``MIN:MAX`` (a uniform draw per receipt)."""
    low, sep, high = text.partition(":")
    if not sep:
        value = _seconds(low)
        return value, value
    pair = (_seconds(low), _seconds(high))
    _setting(pair[0] <= pair[1], "receipt-delay", f"min {pair[0]} is over max {pair[1]}")
    return pair


def parse_outcomes(text: str) -> OutcomeMix:
    """``delivered=0.9,undelivered=0.05,expired=0.05``: outcome=weight pairs
    (weights are normalised). Outcomes: delivered, undelivered, expired,
    rejected, deleted."""
    pairs: list[tuple[Outcome, float]] = []
    for item in text.split(","):
        label, sep, raw = item.strip().partition("=")
        _setting(bool(sep), "outcomes", f"expected OUTCOME=WEIGHT, not {item.strip()!r}")
        try:
            outcome = Outcome.from_label(label.strip().lower())
        except KeyError:
            known = ", ".join(o.label for o in Outcome)
            raise SimConfigError("outcomes", f"unknown outcome {label!r} (one of {known})") \
                from None
        try:
            weight = float(raw)
        except ValueError:
            raise SimConfigError("outcomes", f"{label}: {raw!r} is not a number") from None
        pairs.append((outcome, weight))
    try:
        return OutcomeMix(tuple(pairs))
    except ValueError as exc:
        raise SimConfigError("outcomes", str(exc)) from None
