"""``herald serve``: the HTTP API, the SMPP listener, dispatch and webhooks.

See :data:`DESCRIPTION` (what ``herald serve --help`` prints).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from herald.config import (
    LOOPS,
    ConfigError,
    HeraldConfig,
    load_config,
    parse_listen,
    parse_processes,
)
from herald.sim.chat.cli import Misbehaviour, add_misbehaviour_options, misbehaviour
from herald.sim.errors import SimConfigError
from herald.store import SchemaError, StoreUnavailable

DEFAULT_CONFIG = Path("herald.toml")
DESCRIPTION = """\
Run herald: the HTTP API, the SMPP listener for customers, dispatch to the
operators and webhooks. On a machine with 2 CPUs or more it runs two
processes (intake, and delivery: dispatch and webhooks); see `processes` in
herald.example.toml.

Configuration comes from --config FILE (default ./herald.toml when it exists;
see herald.example.toml). --demo needs no file: an embedded simulator is the
upstream and a demo account is created for you.

The store is SQLite in the data directory, unless --store (or [store] url)
names a PostgreSQL database that several herald nodes share: prepare it with
`herald db migrate --store URL` first, or pass --migrate (docs/scale-out.md).
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the platform (HTTP API, SMPP listener, dispatch)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path,
                        help="herald.toml to read (default: ./herald.toml if present)")
    parser.add_argument("--demo", action="store_true",
                        help="no config needed: embedded simulator upstream and a demo account")
    parser.add_argument("--data-dir", type=Path,
                        help="the SQLite store, master key and guard state (with --store: all"
                        " but the store; overrides the config; default ./herald-data)")
    parser.add_argument("--store", metavar="URL",
                        help="postgresql://user@host:port/database: the database several nodes"
                        " share, instead of SQLite in the data dir (overrides [store] url;"
                        " password: PGPASSWORD or ~/.pgpass; docs/scale-out.md)")
    parser.add_argument("--migrate", action="store_true",
                        help="with --store: apply the database's missing schema migrations"
                        " at start (else a database behind this herald is refused: run"
                        " herald db migrate --store URL)")
    parser.add_argument("--http", metavar="HOST:PORT",
                        help="HTTP API listen address (default 127.0.0.1:8080)")
    parser.add_argument("--smpp", metavar="HOST:PORT",
                        help="SMPP listen address (default 127.0.0.1:2775)")
    parser.add_argument("--processes", metavar="N|auto",
                        help="1: everything in one process; 2: dispatch in a second one"
                        " (default: the config's, else auto = 2 on 2 or more CPUs)")
    parser.add_argument("--loop", choices=LOOPS, help="event loop (default: the config's,"
                        " else auto: uvloop where installed)")
    parser.add_argument("--log-level", default="warning",
                        choices=("debug", "info", "warning", "error"))
    add_misbehaviour_options(parser.add_argument_group(
        "the demo's WhatsApp fake", "with --demo: make its WhatsApp Cloud API fake misbehave,"
        " as herald sim's does (docs/channels.md, \"Try it\")"))
    parser.set_defaults(func=_serve)


def _config(args: argparse.Namespace) -> HeraldConfig:
    path = args.config
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    if path is None:
        if not args.demo:
            raise ConfigError("", "no herald.toml here: pass --config FILE, or try --demo "
                                  "(see herald.example.toml)")
        config = HeraldConfig()
    else:
        config = load_config(path)
    if args.data_dir is not None:
        config = replace(config, data_dir=args.data_dir)
    if args.store is not None:
        config = replace(config, store=replace(config.store, url=args.store))
    if args.http:
        host, port = parse_listen(args.http, "--http", 8080)
        config = replace(config, http=replace(config.http, host=host, port=port))
    if args.smpp:
        host, port = parse_listen(args.smpp, "--smpp", 2775)
        config = replace(config, smpp=replace(config.smpp, host=host, port=port))
    if args.processes is not None:
        config = replace(config, processes=parse_processes(args.processes, "--processes"))
    if args.loop is not None:
        config = replace(config, loop=args.loop)
    return config


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"herald serve: {exc}", file=sys.stderr)
        return 2
    try:
        whatsapp = misbehaviour(args)
    except SimConfigError as exc:
        print(f"herald serve: --{exc}", file=sys.stderr)
        return 2
    if whatsapp != Misbehaviour() and (not args.demo or config.channels is not None):
        print("herald serve: the --whatsapp-* options make the demo's WhatsApp fake misbehave:"
              " they need --demo, and no [channels] in the config", file=sys.stderr)
        return 2
    if config.store.url is not None:
        from herald.store.postgres import serve_refusal

        refusal = serve_refusal(config.store.url)  # the port incomplete: refused whole
        if refusal is not None:
            print(f"herald serve: {refusal}", file=sys.stderr)
            return 2
    elif args.migrate:
        print("herald serve: --migrate is for a PostgreSQL store (--store URL); the SQLite"
              " store migrates its data directory by itself", file=sys.stderr)
        return 2
    from herald.service import run

    main = run(config, demo=args.demo, log_level=args.log_level, migrate=args.migrate,
               demo_whatsapp=whatsapp)
    try:
        if config.event_loop() == "uvloop":
            import uvloop

            uvloop.run(main)
        else:
            asyncio.run(main)
    except (OSError, StoreUnavailable, SchemaError) as exc:
        # A taken port, a database out of reach or behind this herald: one line.
        print(f"herald serve: {exc}", file=sys.stderr)
        return 1
    return 0
