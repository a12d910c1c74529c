"""``herald sim --viber HOST:PORT``: the generic Viber provider fake beside the SMSC.

Every send is reported ``delivered`` by a signed callback after
``--viber-status-delay`` seconds, except to the numbers given with
``--viber-not-on-viber`` (refused at once, ``not_viber_user``) and with
``--viber-expire`` (reported ``expired``: their TTL ran out) and with
``--viber-reject`` (refused with a chosen error word). Misbehaviour:
``--viber-duplicates`` sends each callback several times, ``--viber-seen-after``
reports each send ``seen`` later, an expired one too (a late read). The token and
the callback secret come from the environment (``HERALD_SIM_VIBER_TOKEN``,
``HERALD_SIM_VIBER_SECRET``), never from the command line, which ``ps`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from herald.channels import VIBER_DEFAULT_ERRORS, ViberSettings
from herald.sim.chat._serve import (
    MAX_DUPLICATES,
    alongside,
    checked_count,
    checked_listen,
    checked_numbers,
    checked_rejects,
    checked_seconds,
    checked_url,
    secrets,
    serve_app,
)
from herald.sim.chat.viber import FakeViber

__all__ = ["SECRET_ENV", "TOKEN_ENV", "ViberOptions", "add_options", "options", "running"]

TOKEN_ENV: Final = "HERALD_SIM_VIBER_TOKEN"
SECRET_ENV: Final = "HERALD_SIM_VIBER_SECRET"
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
    group.add_argument("--viber-reject", action="append", default=[], metavar="NUMBER:WORD",
                       help="refuse every send to NUMBER with error WORD: "
                            f"{', '.join(VIBER_DEFAULT_ERRORS)} (throttled: HTTP 429) "
                            "(repeatable)")
    group.add_argument("--viber-duplicates", type=int, default=1, metavar="N",
                       help=f"send each callback N times (1..{MAX_DUPLICATES}, default 1)")
    group.add_argument("--viber-seen-after", type=float, default=None, metavar="SECONDS",
                       help="report each send 'seen' SECONDS after its first report, an "
                            "expired one too: a late read, after herald fell back to SMS "
                            "(default: never)")


@dataclass(frozen=True, slots=True)
class ViberOptions:
    host: str
    port: int
    settings: ViberSettings
    callback_url: str | None
    status_delay: float
    not_on_viber: tuple[str, ...]
    expire: tuple[str, ...]
    rejects: Mapping[str, str] = field(default_factory=dict)
    duplicates: int = 1
    seen_after: float | None = None


def options(args: argparse.Namespace) -> ViberOptions | None:
    """The fake the options ask for (None: not asked). Raises SimConfigError."""
    if args.viber is None:
        return None
    host, port = checked_listen(args.viber, "viber")
    token, secret = secrets("viber", TOKEN_ENV, SECRET_ENV)
    delay = checked_seconds(args.viber_status_delay, "viber-status-delay")
    callback = checked_url(args.viber_callback, "viber-callback")
    settings = ViberSettings(f"http://{host}:{port or 1}", token, secret)
    seen = args.viber_seen_after
    return ViberOptions(host, port, settings, callback, delay,
                        checked_numbers(args.viber_not_on_viber, "viber-not-on-viber"),
                        checked_numbers(args.viber_expire, "viber-expire"),
                        checked_rejects(args.viber_reject, "viber-reject", "WORD",
                                        lambda w: w in VIBER_DEFAULT_ERRORS),
                        checked_count(args.viber_duplicates, "viber-duplicates", 1,
                                      MAX_DUPLICATES),
                        None if seen is None else checked_seconds(seen, "viber-seen-after"))


async def _report(fake: FakeViber, opts: ViberOptions) -> None:
    """Every send, about ``status_delay`` after it: delivered, or expired
    (``--viber-expire``); then ``seen``, ``seen_after`` later (``--viber-seen-after``)."""
    loop = asyncio.get_running_loop()
    first: dict[str, float] = {}  # send -> when it is reported delivered or expired
    seen: dict[str, float] = {}  # send -> when it is reported seen
    known = 0  # sends already given a time (fake.sent only grows, in order)
    tick = opts.status_delay if opts.seen_after is None else min(opts.status_delay,
                                                                  opts.seen_after)
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        for message_id in itertools.islice(fake.sent, known, None):
            first[message_id] = now + opts.status_delay - tick
        known = len(fake.sent)
        calls = [(m, "first") for m, at in first.items() if at <= now]
        calls += [(m, "seen") for m, at in seen.items() if at <= now]
        for message_id, word in calls:
            try:
                if word == "seen":
                    del seen[message_id]
                    await fake.seen(message_id)
                    continue
                del first[message_id]
                if opts.seen_after is not None:
                    seen[message_id] = now + opts.seen_after
                if fake.sent[message_id].to in opts.expire:
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
    for number, word in opts.rejects.items():
        fake.reject(number, word)
    fake.duplicates = opts.duplicates
    reports = None if opts.callback_url is None else _report(fake, opts)
    async with serve_app(fake.app, opts.host, opts.port) as port, alongside(reports):
        yield fake, port
