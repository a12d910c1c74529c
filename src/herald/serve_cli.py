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

DEFAULT_CONFIG = Path("herald.toml")
DESCRIPTION = """\
Run herald: the HTTP API, the SMPP listener for customers, dispatch to the
operators and webhooks. On a machine with 2 CPUs or more it runs two
processes (intake, and delivery: dispatch and webhooks); see `processes` in
herald.example.toml.

Configuration comes from --config FILE (default ./herald.toml when it exists;
see herald.example.toml). --demo needs no file: an embedded simulator is the
upstream and a demo account is created for you.
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
                        help="where the store lives (overrides the config; default ./herald-data)")
    parser.add_argument("--store", metavar="URL",
                        help="postgresql://... for several nodes on one database: not yet"
                        " served (herald db migrate prepares one; docs/scale-out.md)")
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
    if args.store is not None:  # issue 10: refused whole rather than half served
        from herald.store.postgres import serve_refusal

        print(f"herald serve: {serve_refusal(args.store)}", file=sys.stderr)
        return 2
    from herald.service import run

    main = run(config, demo=args.demo, log_level=args.log_level)
    try:
        if config.event_loop() == "uvloop":
            import uvloop

            uvloop.run(main)
        else:
            asyncio.run(main)
    except OSError as exc:  # e.g. the port is taken
        print(f"herald serve: {exc}", file=sys.stderr)
        return 1
    return 0
