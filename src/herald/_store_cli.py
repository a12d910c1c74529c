"""What the store-backed ``herald`` commands share (private): running one
action on the data directory's store or ``--store``'s, its errors as one line on stderr,
opening the store ``--store`` names (:func:`open_store`), and reading a table
file line by line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from herald.intake import LineProblem, TableFileError
from herald.store import SQLiteConfig, SQLiteStore, Store, StoreError

__all__ = ["STORE_HELP", "StoreAction", "add_store_option", "file_lines", "open_store",
           "store_command", "store_name"]

#: ``--store``'s help, where a command takes it.
STORE_HELP = ("postgresql://user@host:port/database: the PostgreSQL store of herald serve"
              " --store, instead of the data dir's SQLite (password: PGPASSWORD or ~/.pgpass)")

#: A command's work: its arguments and the open store -> exit status.
StoreAction = Callable[[argparse.Namespace, Store], Awaitable[int]]


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store URL`` (the PostgreSQL store instead of ``--data-dir``'s SQLite)."""
    parser.add_argument("--store", metavar="URL", help=STORE_HELP)


def store_name(args: argparse.Namespace) -> str:
    """What a command's message calls the store it worked on: the URL (its
    password hidden) or the data directory."""
    url = getattr(args, "store", None)
    if url is None:
        return str(args.data_dir)
    from herald.store.postgres import redact

    return redact(url)


def store_command(
    action: StoreAction,
    *,
    name: str | None = None,
    create: bool = False,
    file_errors: tuple[type[Exception], ...] = (TableFileError,),
    errors: tuple[type[Exception], ...] = (),
) -> Callable[[argparse.Namespace], int]:
    """The ``func`` of a subcommand: ``action`` on the store of ``--store`` (if the
    command has it and it is given) or of ``--data-dir`` (created with
    ``create``). ``file_errors`` are printed after the file (``args.file``)
    they are about, ``errors`` (and the store's, ValueError, OSError) as they
    are; either way the status is 1. ``name``: the command as printed
    (default ``args.command``)."""

    def run(args: argparse.Namespace) -> int:
        prog = f"herald {name or args.command}"
        try:
            return asyncio.run(_with_store(action, args, create))
        except file_errors as exc:
            where = f"{args.file}: " if getattr(args, "file", None) else ""
            print(f"{prog}: {where}{exc}", file=sys.stderr)
        except (*errors, StoreError, ValueError, OSError) as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
        return 1

    return run


async def _with_store(action: StoreAction, args: argparse.Namespace, create: bool) -> int:
    store = await open_store(args.data_dir, getattr(args, "store", None), create=create)
    try:
        return await action(args, store)
    finally:
        await store.aclose()


async def open_store(data_dir: Path, url: str | None = None, *, create: bool = False) -> Store:
    """The store a command works on: the data directory's SQLite, or the PostgreSQL
    database at ``url`` (migrated by ``herald db migrate``; two connections). Raises
    ``ValueError`` while herald serve would refuse ``url`` (docs/scale-out.md),
    :class:`~herald.store.StoreUnavailable` and :class:`~herald.store.SchemaError`."""
    if url is None:
        return SQLiteStore.open(SQLiteConfig(data_dir=data_dir, create=create))
    from herald.store.postgres import open_served, serve_refusal

    refusal = serve_refusal(url)
    if refusal is not None:
        raise ValueError(refusal)
    return await open_served(url, max_connections=2)


def file_lines(path: Path, refused: str = "refused") -> Iterator[str]:
    """The file's lines as text; a line that is not UTF-8 is refused by number
    (``TableFileError`` headed ``refused``)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problem = LineProblem(number, f"is not UTF-8 (octet {exc.start + 1})")
                raise TableFileError(refused, [problem], 1) from None
