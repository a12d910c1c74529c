"""``herald sim --viber HOST:PORT``: the generic Viber provider fake beside the SMSC.

Every send is reported ``delivered`` by a signed callback after
``--viber-status-delay`` seconds, except to the numbers given with
``--viber-not-on-viber`` (refused at once, ``not_viber_user``) and with
``--viber-expire`` (reported ``expired``: their TTL ran out). The token and
the callback secret come from the environment (``HERALD_SIM_VIBER_TOKEN``,
``HERALD_SIM_VIBER_SECRET``), never from the command line, which ``ps`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import httpx

from herald.channels import ViberSettings
from herald.sim.chat._serve import (
    alongside,
    checked_listen,
    checked_seconds,
    checked_url,
    secrets,
    serve_app,
)
from herald.sim.chat.viber import FakeViber
from herald.sim.errors import SimConfigError

__all__ = ["SECRET_ENV", "TOKEN_ENV", "ViberOptions", "add_options", "options", "running"]

TOKEN_ENV: Final = "HERALD_SIM_VIBER_TOKEN"
SECRET_ENV: Final = "HERALD_SIM_VIBER_SECRET"
#: Numbers one option may name (each repeat of the option adds one).
MAX_NUMBERS: Final = 10_000
_log = logging.getLogger("herald.sim.viber")


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Viber provider fake",
        f"a generic Viber business-messaging provider (docs/channels.md): POST /messages,"
        f" signed callbacks (X-Viber-Content-Signature); token and secret from ${TOKEN_ENV}"
        f" and ${SECRET_ENV}")
    group.add_argument("--viber", metavar="HOST:PORT",
                       help="run the fake on this address too (port 0: a free one, printed)")
    group.add_argument("--viber-callback", metavar="URL",
                       help="POST the callbacks here (default: none are sent)")
    group.add_argument("--viber-status-delay", type=float, default=1.0, metavar="SECONDS",
                       help="report each send this long after it (default 1)")
    group.add_argument("--viber-not-on-viber", action="append", default=[], metavar="NUMBER",
                       help="this number has no Viber account (repeatable)")
    group.add_argument("--viber-expire", action="append", default=[], metavar="NUMBER",
                       help="sends to this number expire instead (repeatable)")


@dataclass(frozen=True, slots=True)
class ViberOptions:
    host: str
    port: int
    settings: ViberSettings
    callback_url: str | None
    status_delay: float
    not_on_viber: tuple[str, ...]
    expire: tuple[str, ...]


def _numbers(values: list[str], name: str) -> tuple[str, ...]:
    numbers = tuple(v.removeprefix("+") for v in values)
    if len(numbers) > MAX_NUMBERS or not all(n.isdigit() and 1 <= len(n) <= 15
                                              for n in numbers):
        raise SimConfigError(name, "E.164 numbers (at most 10,000)")
    return numbers


def options(args: argparse.Namespace) -> ViberOptions | None:
    """The fake the options ask for (None: not asked). Raises SimConfigError."""
    if args.viber is None:
        return None
    host, port = checked_listen(args.viber, "viber")
    token, secret = secrets("viber", TOKEN_ENV, SECRET_ENV)
    delay = checked_seconds(args.viber_status_delay, "viber-status-delay")
    callback = checked_url(args.viber_callback, "viber-callback")
    settings = ViberSettings(f"http://{host}:{port or 1}", token, secret)
    return ViberOptions(host, port, settings, callback, delay,
                        _numbers(args.viber_not_on_viber, "viber-not-on-viber"),
                        _numbers(args.viber_expire, "viber-expire"))


async def _report(fake: FakeViber, opts: ViberOptions) -> None:
    """Every send, ``status_delay`` after it: delivered, or expired (``--viber-expire``)."""
    reported: set[str] = set()
    while True:
        await asyncio.sleep(opts.status_delay)
        for message_id, sent in list(fake.sent.items()):
            if message_id in reported:
                continue
            reported.add(message_id)
            try:
                if sent.to in opts.expire:
                    await fake.expire(message_id)
                else:
                    await fake.deliver(message_id)
            except httpx.HTTPError as exc:
                _log.warning("callback not delivered: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def running(opts: ViberOptions) -> AsyncIterator[tuple[FakeViber, int]]:
    """Serve the fake (and send its callbacks) until the block ends."""
    fake = FakeViber(opts.settings, opts.callback_url or "")
    for number in opts.not_on_viber:
        fake.not_on_viber(number)
    reports = None if opts.callback_url is None else _report(fake, opts)
    async with serve_app(fake.app, opts.host, opts.port) as port, alongside(reports):
        yield fake, port
