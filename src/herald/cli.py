"""The ``herald`` command line.

Each command group lives in its own module and exposes
``register(subparsers: argparse._SubParsersAction) -> None``; the module adds its
parser(s) and sets ``func`` (a callable taking the parsed namespace and returning
an exit status). Modules are imported lazily so ``herald --help`` stays fast and
a broken optional component cannot take the whole CLI down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from herald import __version__

# Modules contributing sub-commands, in the order they appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "herald.serve_cli", "herald.send_cli", "herald.accounts.cli",
    "herald.accounts.optouts_cli", "herald.numbers.cli", "herald.routes.cli", "herald.admin.cli",
    "herald.billing.cli", "herald.sim.cli", "herald.guard.cli", "herald.fraud_cli",
    "herald.store.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="herald",
        description="herald: A2P messaging over HTTP and SMPP, with an SS7 signaling guard.",
    )
    parser.add_argument("--version", action="version", version=f"herald {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
