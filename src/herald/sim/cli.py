"""``herald sim``: run the SMSC simulator until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from herald.sim.chat import cli as chat_cli
from herald.sim.chat import viber_cli
from herald.sim.config import (
    DEFAULT_MAX_HELD_RECEIPTS,
    DEFAULT_PORT,
    SimConfig,
    parse_delay,
    parse_listen,
    parse_outcomes,
)
from herald.sim.errors import SimConfigError
from herald.sim.ids import IdStyle, ReceiptIdForm
from herald.sim.record import RecordContent
from herald.sim.scheme import describe_scheme
from herald.sim.simulator import Simulator

__all__ = ["PASSWORD_ENV", "build_config", "register", "run"]

#: Read the password from here when --password is not given (keeps it out of `ps`).
PASSWORD_ENV = "HERALD_SIM_PASSWORD"

DESCRIPTION = """\
An SMPP 3.4 SMSC for tests, demos and benchmarks. It accepts binds, answers
submit_sm, data_sm, submit_multi, query_sm and enquire_link, and sends delivery
receipts (deliver_sm, esm_class 0x04, Appendix B text with UTC dates, plus the
receipted_message_id, message_state and network_error_code TLVs) to receiver
and transceiver binds of the submitting system_id. Receipts for a system_id
with no receiver bound are held and sent when one binds."""

EPILOG = f"""\
deterministic behaviours, chosen by destination number (E.164 country code 999
is unassigned, so no real number falls into this scheme; a leading + is
ignored; the digits after the two-digit code are free):

{describe_scheme()}

every other destination: accepted, then a receipt after --receipt-delay with an
outcome drawn from --outcomes.

other rules:
  receipts follow registered_delivery (SMPP 3.4 §5.2.17): bits 01 = always,
  10 = only for undelivered/expired/rejected/deleted, 00 = none (an MO echo
  is sent anyway).
  --tps applies per system_id before the destination is looked at; a submit
  over the limit is answered ESME_RTHROTTLED and takes no token.
  a swallowed submit (99902) holds an answer slot for good: an unbind on that
  connection is not answered and the connection is closed 5 s later.
  with --seed, the k-th accepted message gets the same id, outcome and delay
  in every run.
  --record appends one tab-separated line per submit (time, system_id,
  command, destination, data_coding, esm_class, content, message_id, status),
  flushed every 0.5 s and on exit. See docs/sim.md.

SIGTERM or Ctrl-C: unbind every session, flush the record, exit 0.
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "sim", help="run the SMSC simulator (tests, demos, benchmarks)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT",
                        help=f"address to listen on (default 127.0.0.1:{DEFAULT_PORT}; "
                             "port 0 picks a free one, printed at start)")
    parser.add_argument("--system-id", help="accept only this system_id (default: any)")
    parser.add_argument("--password",
                        help=f"and this password (default: ${PASSWORD_ENV} when --system-id "
                             "is given)")
    parser.add_argument("--receipt-delay", default="1", metavar="SECONDS|MIN:MAX",
                        help="delay before each receipt; MIN:MAX draws uniformly (default 1)")
    parser.add_argument("--outcomes", default="delivered=1", metavar="OUTCOME=W,...",
                        help="receipt outcome weights: delivered, undelivered, expired, "
                             "rejected, deleted (default delivered=1)")
    parser.add_argument("--tps", type=float, help="submits per second per system_id "
                        "(default: no limit)")
    parser.add_argument("--tps-burst", type=float,
                        help="token bucket size (default: one second of --tps)")
    parser.add_argument("--seed", type=int, help="seed outcomes, delays and ids "
                        "(default: random, printed at start)")
    parser.add_argument("--id-style", choices=[s.value for s in IdStyle], default="hex",
                        help="message ids in submit_sm_resp (default hex)")
    parser.add_argument("--receipt-id", choices=[f.value for f in ReceiptIdForm],
                        default="same",
                        help="the id's form in receipts: same, or the number in decimal, "
                             "hex, padded (10-digit decimal) or upper-case (default same)")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="append one line per submit received to FILE")
    parser.add_argument("--record-content", choices=[c.value for c in RecordContent],
                        default="hash", help="message body in the record: sha256 prefix "
                        "(default) or full hex")
    parser.add_argument("--window", type=int, default=64,
                        help="deliver_sm in flight per receiver bind (default 64)")
    parser.add_argument("--max-held", type=int, default=DEFAULT_MAX_HELD_RECEIPTS,
                        help="receipts held for absent receivers, all system_ids "
                             f"(default {DEFAULT_MAX_HELD_RECEIPTS})")
    parser.add_argument("--drop-receipts", type=float, default=0.0, metavar="SHARE",
                        help="lose this share (0 to 1) of receipts: the outcome still happens "
                             "and query_sm reports it, no deliver_sm is sent (default 0)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log binds and drops")
    chat_cli.add_options(parser)
    viber_cli.add_options(parser)
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the parsed options describe. Raises SimConfigError."""
    host, port = parse_listen(args.listen)
    password = args.password
    if args.system_id is not None and password is None:
        password = os.environ.get(PASSWORD_ENV)
    return SimConfig(
        host=host, port=port, system_id=args.system_id, password=password,
        receipt_delay=parse_delay(args.receipt_delay),
        outcomes=parse_outcomes(args.outcomes),
        tps=args.tps, tps_burst=args.tps_burst, seed=args.seed,
        id_style=IdStyle(args.id_style), receipt_id=ReceiptIdForm(args.receipt_id),
        record=args.record, record_content=RecordContent(args.record_content),
        window=args.window, max_held_receipts=args.max_held, drop_receipts=args.drop_receipts,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args)
        whatsapp = chat_cli.options(args)
        viber = viber_cli.options(args)
    except SimConfigError as exc:
        print(f"herald sim: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(config, whatsapp, viber))
    except OSError as exc:
        print(f"herald sim: {exc}", file=sys.stderr)
        return 1


async def _serve(config: SimConfig, whatsapp: chat_cli.WhatsAppOptions | None = None,
                 viber: viber_cli.ViberOptions | None = None) -> int:
    sim = Simulator(config)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"herald sim listening on {config.host}:{sim.port} (seed {sim.seed})", flush=True)
    try:
        async with contextlib.AsyncExitStack() as fakes:
            if whatsapp is not None:
                _, port = await fakes.enter_async_context(chat_cli.running(whatsapp))
                print(f"herald sim: WhatsApp Cloud API fake on {whatsapp.host}:{port}",
                      flush=True)
            if viber is not None:
                _, port = await fakes.enter_async_context(viber_cli.running(viber))
                print(f"herald sim: Viber provider fake on {viber.host}:{port}", flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await sim.stop(timeout=2.0)
    c = sim.counters
    print(f"herald sim stopped: {c.submits} submits, {c.accepted} accepted, "
          f"{c.refused} refused ({c.throttled} by --tps), {c.swallowed} swallowed, "
          f"{c.receipts_sent} receipts sent, {c.receipts_lost} lost, {sim.held()} held",
          flush=True)
    return 0
