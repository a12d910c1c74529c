"""``herald fraud replay``: the pumping defence on recorded traffic (issue 11,
"Offline replay"); the engine is ``herald.fraud``, this module reads and writes
the files.

Exit status: 0 decisions written; 2 usage or input errors (an unreadable file,
a line that is not a JSON object, a missing required field, a bad timestamp:
the message names the file and line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from herald.fraud import (
    MODES,
    Engine,
    Prices,
    Receipt,
    Request,
    Verification,
    parse_ts,
    replay,
)

EXIT_OK, EXIT_ERROR = 0, 2
T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fraud = subparsers.add_parser(
        "fraud", help="SMS-pumping defence: offline replay",
        description="The SMS-pumping defence (docs/fraud.md).")
    sub = fraud.add_subparsers(dest="fraud_command", metavar="COMMAND", required=True)
    rep = sub.add_parser(
        "replay", help="decide every recorded request causally, in time order",
        description="Feed recorded requests, receipts and verifications to the defence in "
                    "time order (receipts and verifications first at equal times), never "
                    "showing it what followed a request it blocked; write one decision per "
                    'request: {"id","action","ts"}. A throttled request (not sent now, '
                    'ask again later) is written "block".')
    rep.add_argument("--requests", type=Path, required=True, help="JSON lines")
    rep.add_argument("--verifications", type=Path, required=True, help="JSON lines")
    rep.add_argument("--receipts", type=Path, required=True, help="JSON lines")
    rep.add_argument("--prices", type=Path, required=True, help="JSON document")
    rep.add_argument("--out", type=Path, required=True, help="decisions, JSON lines")
    rep.add_argument("--reasons", action="store_true",
                     help="add each decision's step (allow, throttle, block), reasons and "
                          "figures to its line")
    rep.add_argument("--mode", choices=MODES, default="enforce",
                     help="monitor: allow everything, --reasons says what enforce would "
                          "have done (default: enforce)")
    rep.set_defaults(func=_replay)


class InputError(Exception):
    """A file that cannot be replayed; the message names the file and line."""


def _opt(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    return value if isinstance(value, str) and value else None


def _request(row: dict[str, Any]) -> tuple[Request, str]:
    """The request and its ``ts`` as written (decisions echo it verbatim)."""
    request = Request(str(row["id"]), parse_ts(row["ts"]), str(row.get("account", "")),
                      str(row.get("use_case", "")), str(row["to"]), _opt(row, "country"),
                      _opt(row, "mcc_mnc"), _opt(row, "ip_type"), _opt(row, "device_id"),
                      _opt(row, "ip"))
    return request, str(row["ts"])


def _receipt(row: dict[str, Any]) -> Receipt:
    return Receipt(str(row["request_id"]), parse_ts(row["ts"]), str(row["status"]))


def _verification(row: dict[str, Any]) -> Verification:
    return Verification(str(row["request_id"]), parse_ts(row["ts"]))


def _read(path: Path, make: Callable[[dict[str, Any]], T]) -> list[T]:
    rows: list[T] = []
    try:
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                    if not isinstance(row, dict):
                        raise TypeError("not a JSON object")
                    rows.append(make(row))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    raise InputError(f"{path}:{number}: {detail}") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    return rows


def _prices(path: Path) -> Prices:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InputError(f"{path}: not a JSON object")
    try:
        return Prices(str(doc.get("currency", "USD")),
                      {str(k): float(v) for k, v in (doc.get("country") or {}).items()},
                      {str(k): float(v) for k, v in (doc.get("mcc_mnc") or {}).items()})
    except (AttributeError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: prices must map codes to numbers ({exc})") from exc


def _replay(args: argparse.Namespace) -> int:
    try:
        prices = _prices(args.prices)
        rows = _read(args.requests, _request)
        receipts = _read(args.receipts, _receipt)
        verifications = _read(args.verifications, _verification)
    except InputError as exc:
        print(f"herald fraud replay: {exc}", file=sys.stderr)
        return EXIT_ERROR
    requests = [request for request, _ in rows]
    stamps = {request.id: ts for request, ts in rows}
    engine = Engine(prices, mode=args.mode)
    try:
        with args.out.open("wb") as out:
            for decision in replay(engine, requests, receipts, verifications):
                line: dict[str, Any] = {"id": decision.request_id,
                                        "action": decision.action.value,
                                        "ts": stamps[decision.request_id]}
                if args.reasons:
                    line["step"] = decision.step
                    line["reasons"] = [{"code": r.code, "cell": r.cell, **r.figures}
                                       for r in decision.reasons]
                out.write(orjson.dumps(line) + b"\n")
    except OSError as exc:
        print(f"herald fraud replay: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK

