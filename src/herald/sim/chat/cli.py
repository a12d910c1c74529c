"""``herald sim --whatsapp HOST:PORT``: the WhatsApp Cloud API fake beside the SMSC.

Its misbehaviour is set here too: status webhooks duplicated
(``--whatsapp-duplicates``), sent newest first (``--whatsapp-reverse``),
``delivered`` skipped (``--whatsapp-drop-delivered``), ``read`` late
(``--whatsapp-read-delay``); sends to a number refused with a chosen Graph
API error (``--whatsapp-reject``), the first sends throttled
(``--whatsapp-throttle``).

The access token and the app secret come from the environment
(``HERALD_SIM_WHATSAPP_TOKEN``, ``HERALD_SIM_WHATSAPP_APP_SECRET``), never from
the command line, which ``ps`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from herald.sim.chat._serve import (
    MAX_DUPLICATES,
    alongside,
    checked_count,
    checked_listen,
    checked_rejects,
    checked_seconds,
    checked_url,
    secrets,
    serve_app,
)
from herald.sim.chat.whatsapp import Chaos, FakeWhatsApp, FakeWhatsAppConfig
from herald.sim.errors import SimConfigError

__all__ = ["APP_SECRET_ENV", "TOKEN_ENV", "Misbehaviour", "WhatsAppOptions",
           "add_misbehaviour_options", "add_options", "misbehaviour", "options", "running"]

TOKEN_ENV = "HERALD_SIM_WHATSAPP_TOKEN"
APP_SECRET_ENV = "HERALD_SIM_WHATSAPP_APP_SECRET"
#: Sends ``--whatsapp-throttle`` may name.
MAX_THROTTLE: Final = 1_000_000
_log = logging.getLogger("herald.sim.whatsapp")


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "WhatsApp Cloud API fake",
        f"a local fake of POST /{{version}}/{{phone-number-id}}/messages and of template "
        f"management that checks each request against Meta's OpenAPI description and POSTs "
        f"signed status webhooks (X-Hub-Signature-256), misbehaving as told below; token "
        f"and app secret from ${TOKEN_ENV} and ${APP_SECRET_ENV} (docs/channels.md)")
    group.add_argument("--whatsapp", metavar="HOST:PORT",
                       help="run the fake on this address too (port 0: a free one, printed)")
    group.add_argument("--whatsapp-webhook", metavar="URL",
                       help="POST status webhooks here (default: none are sent)")
    group.add_argument("--whatsapp-status-delay", type=float, default=1.0, metavar="SECONDS",
                       help="send the statuses queued every SECONDS (default 1)")
    group.add_argument("--whatsapp-rate", type=float, default=80.0,
                       help="sends a second per phone number id before error 130429 "
                            "(default 80, the Cloud API's starting throughput)")
    group.add_argument("--whatsapp-open-windows", action="store_true",
                       help="treat every recipient's 24-hour window as open (free-form text "
                            "passes; default: refused with error 131047)")
    add_misbehaviour_options(group)


def add_misbehaviour_options(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The fake's misbehaviour, as ``herald sim`` and ``herald serve --demo`` take it."""
    group.add_argument("--whatsapp-reject", action="append", default=[],
                       metavar="NUMBER:CODE",
                       help="answer every send to NUMBER with Graph API error CODE, e.g. "
                            "131026 (no WhatsApp account), 131047 (window closed), 130429 "
                            "(rate), 132001 (no such template) (repeatable)")
    group.add_argument("--whatsapp-throttle", type=int, default=0, metavar="N",
                       help="answer the first N sends with 130429 whatever the rate "
                            "(default 0)")
    group.add_argument("--whatsapp-duplicates", type=int, default=1, metavar="N",
                       help=f"send each status webhook N times (1..{MAX_DUPLICATES}, "
                            "default 1)")
    group.add_argument("--whatsapp-reverse", action="store_true",
                       help="send each batch of statuses newest first (out of order)")
    group.add_argument("--whatsapp-drop-delivered", action="store_true",
                       help="skip 'delivered' where 'read' follows")
    group.add_argument("--whatsapp-read-delay", type=float, default=0.0, metavar="SECONDS",
                       help="hold each 'read' status back SECONDS after the others of its "
                            "message: a late read (default 0)")


@dataclass(frozen=True, slots=True)
class Misbehaviour:
    """What the fake does wrong on command (:func:`add_misbehaviour_options`)."""

    chaos: Chaos = field(default_factory=Chaos)
    rejects: Mapping[str, int] = field(default_factory=dict)  # number (digits) -> error code
    throttle: int = 0
    read_delay: float = 0.0

    def apply(self, fake: FakeWhatsApp) -> None:
        fake.chaos = self.chaos
        for number, code in self.rejects.items():
            fake.reject(number, code)
        fake.throttle(self.throttle)
        fake.read_delay = self.read_delay


def misbehaviour(args: argparse.Namespace) -> Misbehaviour:
    """The misbehaviour the options ask for. Raises SimConfigError naming the option."""
    rejects = checked_rejects(args.whatsapp_reject, "whatsapp-reject", "CODE",
                              lambda c: c.isascii() and c.isdigit() and 0 < len(c) <= 9)
    chaos = Chaos(checked_count(args.whatsapp_duplicates, "whatsapp-duplicates", 1,
                                MAX_DUPLICATES),
                  args.whatsapp_reverse, args.whatsapp_drop_delivered)
    read_delay = args.whatsapp_read_delay
    if not (math.isfinite(read_delay) and read_delay >= 0):
        raise SimConfigError("whatsapp-read-delay", "must be a number of seconds >= 0")
    return Misbehaviour(chaos, {n: int(c) for n, c in rejects.items()},
                        checked_count(args.whatsapp_throttle, "whatsapp-throttle", 0,
                                      MAX_THROTTLE), read_delay)


@dataclass(frozen=True, slots=True)
class WhatsAppOptions:
    host: str
    port: int
    config: FakeWhatsAppConfig
    status_delay: float
    open_windows: bool
    misbehaviour: Misbehaviour = field(default_factory=Misbehaviour)


def options(args: argparse.Namespace) -> WhatsAppOptions | None:
    """The fake the options ask for (None: not asked). Raises SimConfigError."""
    if args.whatsapp is None:
        return None
    host, port = checked_listen(args.whatsapp, "whatsapp")
    token, secret = secrets("whatsapp", TOKEN_ENV, APP_SECRET_ENV)
    delay = checked_seconds(args.whatsapp_status_delay, "whatsapp-status-delay")
    rate = args.whatsapp_rate
    if not (math.isfinite(rate) and rate > 0):
        raise SimConfigError("whatsapp-rate", "must be a number > 0")
    webhook = checked_url(args.whatsapp_webhook, "whatsapp-webhook")
    config = FakeWhatsAppConfig(token=token, app_secret=secret, webhook_url=webhook, rate=rate,
                                burst=max(1.0, rate / 10), seed=args.seed)
    return WhatsAppOptions(host, port, config, delay, args.whatsapp_open_windows,
                           misbehaviour(args))


async def _send_statuses(fake: FakeWhatsApp, delay: float) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        while True:
            await asyncio.sleep(delay)
            try:
                await fake.flush(http)
            except httpx.HTTPError as exc:
                _log.warning("status webhooks not delivered: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def running(opts: WhatsAppOptions) -> AsyncIterator[tuple[FakeWhatsApp, int]]:
    """Serve the fake (and send its statuses) until the block ends."""
    fake = FakeWhatsApp(opts.config)
    fake.all_windows_open = opts.open_windows
    opts.misbehaviour.apply(fake)
    statuses = None
    if opts.config.webhook_url is not None:
        statuses = _send_statuses(fake, opts.status_delay)
    async with serve_app(fake.app, opts.host, opts.port) as port, alongside(statuses):
        yield fake, port
