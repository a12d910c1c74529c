"""``herald send``: send one message through the HTTP API and follow its status.

The key comes from ``--api-key``, else ``$HERALD_API_KEY``, else the
``HERALD_API_KEY=...`` line of ``<data-dir>/demo.env`` (written by
``herald serve --demo``); the API's address likewise from ``--api``,
``$HERALD_API``, demo.env, else http://127.0.0.1:8080. After the 202 the command polls
``GET /v1/messages/{id}`` every ``--interval`` seconds for at most ``--wait``
seconds and prints each status the message reaches, with the time herald
recorded for it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TextIO

import httpx

from herald.config import DEFAULT_DATA_DIR

__all__ = [
    "EXIT_DELIVERED",
    "EXIT_NOT_DELIVERED",
    "EXIT_REFUSED",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "register",
    "run",
]

EXIT_DELIVERED: Final = 0
EXIT_NOT_DELIVERED: Final = 1  # a final status other than delivered
EXIT_REFUSED: Final = 2  # no key, or the API refused the request (4xx)
EXIT_TIMEOUT: Final = 3  # no final status within --wait
EXIT_UNREACHABLE: Final = 4  # the API could not be reached or failed (5xx)

DEFAULT_API: Final = "http://127.0.0.1:8080"
DEFAULT_SENDER: Final = "herald"
DEMO_ENV: Final = "demo.env"
KEY_VARIABLE: Final = "HERALD_API_KEY"
API_VARIABLE: Final = "HERALD_API"
#: Seconds one HTTP request may take (the whole wait is bounded by --wait).
REQUEST_TIMEOUT: Final = 10.0
#: Status order, so statuses reached between two polls print in order.
ORDER: Final = (
    "accepted", "queued", "sent", "delivered", "undelivered", "expired", "rejected", "failed",
    "cancelled",
)
FINAL: Final = frozenset(ORDER[3:])

_EPILOG = f"""\
exit status: {EXIT_DELIVERED} delivered, {EXIT_NOT_DELIVERED} another final status \
(undelivered, expired, rejected, failed, cancelled), {EXIT_REFUSED} refused (bad key or input), \
{EXIT_TIMEOUT} no final status within --wait, {EXIT_UNREACHABLE} API unreachable or failing.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send a message through the HTTP API and follow its status",
        description=(__doc__ or "").replace("``", ""),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--to", required=True, help="destination, E.164 (+14155552671)")
    parser.add_argument("--text", required=True, help="the message text")
    parser.add_argument(
        "--from", dest="sender", default=DEFAULT_SENDER,
        help=f"sender: name (<= 11 characters), short code or E.164 (default {DEFAULT_SENDER})",
    )  # fmt: skip
    parser.add_argument("--api", help=f"API base URL (default ${API_VARIABLE}, then demo.env,"
                        f" then {DEFAULT_API})")
    parser.add_argument("--api-key", help=f"API key (default ${KEY_VARIABLE}, then demo.env)")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR,
        help=f"where herald serve --demo wrote {DEMO_ENV} (default {DEFAULT_DATA_DIR})",
    )  # fmt: skip
    parser.add_argument(
        "--wait", type=float, default=60.0,
        help="seconds to follow the status; 0 sends and returns (default 60)",
    )  # fmt: skip
    parser.add_argument(
        "--interval", type=float, default=0.5, help="seconds between polls (default 0.5)"
    )
    parser.set_defaults(func=run)


def find_setting(
    explicit: str | None, variable: str, environ: Mapping[str, str], data_dir: Path
) -> str | None:
    """The option, else ``$variable``, else the ``variable=...`` line of
    ``<data_dir>/demo.env``, else ``None``."""
    if explicit:
        return explicit
    if environ.get(variable):
        return environ[variable]
    try:
        lines = (data_dir / DEMO_ENV).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, sep, value = line.strip().partition("=")
        if sep and name.strip() == variable and value.strip():
            return value.strip().strip("'\"")
    return None


def find_api_key(
    explicit: str | None, environ: Mapping[str, str], data_dir: Path
) -> str | None:
    """``--api-key``, else the environment, else ``<data_dir>/demo.env``."""
    return find_setting(explicit, KEY_VARIABLE, environ, data_dir)


def _describe_refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    lines = [f"refused ({response.status_code}): {body.get('detail', body.get('title', ''))}"]
    for error in body.get("errors") or ():
        lines.append(f"  {error.get('field')}: {error.get('detail')} ({error.get('code')})")
    return "\n".join(lines)


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send and follow; returns the exit status (see the ``EXIT_*`` constants)."""
    out = out or sys.stdout
    err = err or sys.stderr
    environ = os.environ if environ is None else environ
    key = find_api_key(args.api_key, environ, args.data_dir)
    args.api = find_setting(args.api, API_VARIABLE, environ, args.data_dir) or DEFAULT_API
    if key is None:
        print(
            f"no API key: pass --api-key, set {KEY_VARIABLE}, or run 'herald serve --demo'"
            f" (it writes {args.data_dir / DEMO_ENV})",
            file=err,
        )
        return EXIT_REFUSED
    if not (args.wait >= 0 and args.interval > 0 and math.isfinite(args.wait)):
        print("--wait must be >= 0 and --interval > 0", file=err)
        return EXIT_REFUSED
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(
        base_url=args.api, headers=headers, timeout=REQUEST_TIMEOUT, transport=transport
    ) as client:
        try:
            return _send_and_follow(client, args, out, err, sleep)
        except httpx.HTTPError as exc:
            print(f"cannot reach the API at {args.api}: {exc}", file=err)
            return EXIT_UNREACHABLE


def _send_and_follow(
    client: httpx.Client,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    sleep: Callable[[float], None],
) -> int:
    response = client.post(
        "/v1/messages", json={"to": args.to, "from": args.sender, "text": args.text}
    )
    if response.status_code != 202:
        print(_describe_refusal(response), file=err)
        return EXIT_UNREACHABLE if response.status_code >= 500 else EXIT_REFUSED
    message: dict[str, Any] = response.json()
    parts = "part" if message["segments"] == 1 else "parts"
    print(f"id {message['id']} ({message['segments']} {parts}, {message['encoding']})", file=out)
    shown: set[str] = set()
    status = _show(message, shown, out)
    deadline = time.monotonic() + args.wait
    polls = math.ceil(args.wait / args.interval) + 1  # a bound even if the clock misbehaves
    for _ in range(polls):
        if status in FINAL:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sleep(min(args.interval, remaining))
        response = client.get(f"/v1/messages/{message['id']}")
        if response.status_code != 200:
            print(_describe_refusal(response), file=err)
            return EXIT_UNREACHABLE if response.status_code >= 500 else EXIT_REFUSED
        message = response.json()
        status = _show(message, shown, out)
    if status == "delivered":
        return EXIT_DELIVERED
    if status in FINAL:
        return EXIT_NOT_DELIVERED
    print(f"still {status} after {args.wait:g} s", file=err)
    return EXIT_TIMEOUT


def _show(message: Mapping[str, Any], shown: set[str], out: TextIO) -> str:
    """Print the statuses not shown yet, in life order; return the current one."""
    stamps: Mapping[str, str] = message.get("timestamps") or {}
    for name in ORDER:
        if name in stamps and name not in shown:
            shown.add(name)
            line = f"{stamps[name]}  {name}"
            error = message.get("error")
            if name in FINAL and name != "delivered" and error:
                kind = "permanent" if error.get("permanent") else "temporary"
                line += f"  (error {error.get('code')}, {kind})"
            print(line, file=out, flush=True)
    return str(message["status"])
