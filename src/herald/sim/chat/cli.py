"""``herald sim --whatsapp HOST:PORT``: the WhatsApp Cloud API fake beside the SMSC.

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
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from herald.sim.chat._serve import (
    alongside,
    checked_listen,
    checked_seconds,
    checked_url,
    secrets,
    serve_app,
)
from herald.sim.chat.whatsapp import FakeWhatsApp, FakeWhatsAppConfig
from herald.sim.errors import SimConfigError

__all__ = ["APP_SECRET_ENV", "TOKEN_ENV", "WhatsAppOptions", "add_options", "options", "running"]

TOKEN_ENV = "HERALD_SIM_WHATSAPP_TOKEN"
APP_SECRET_ENV = "HERALD_SIM_WHATSAPP_APP_SECRET"
_log = logging.getLogger("herald.sim.whatsapp")


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "WhatsApp Cloud API fake",
        f"a local fake of POST /{{version}}/{{phone-number-id}}/messages that checks each "
        f"send against the Cloud API's send schema and POSTs signed status webhooks "
        f"(X-Hub-Signature-256); token and app secret from ${TOKEN_ENV} and "
        f"${APP_SECRET_ENV} (docs/channels.md)")
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


@dataclass(frozen=True, slots=True)
class WhatsAppOptions:
    host: str
    port: int
    config: FakeWhatsAppConfig
    status_delay: float
    open_windows: bool


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
    return WhatsAppOptions(host, port, config, delay, args.whatsapp_open_windows)


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
    statuses = None
    if opts.config.webhook_url is not None:
        statuses = _send_statuses(fake, opts.status_delay)
    async with serve_app(fake.app, opts.host, opts.port) as port, alongside(statuses):
        yield fake, port
