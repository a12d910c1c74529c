"""Serving a fake provider's ASGI app on a local port (uvicorn, in-process), and
the option checks and background task its ``herald sim`` switches share."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import uvicorn

from herald.sim.config import parse_listen
from herald.sim.errors import SimConfigError

__all__ = [
    "alongside",
    "checked_count",
    "checked_listen",
    "checked_numbers",
    "checked_rejects",
    "checked_seconds",
    "checked_url",
    "secrets",
    "serve_app",
]

#: Seconds a fake may take to start listening or to stop.
START_TIMEOUT: Final = 10.0
#: Numbers one repeatable option may name.
MAX_NUMBERS: Final = 10_000
#: Times a fake may send one status (``--*-duplicates``).
MAX_DUPLICATES: Final = 10


@asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve ``app`` until the block ends; yields the port it listens on."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(START_TIMEOUT):
        while not server.started:
            if task.done():
                await task
                raise RuntimeError(f"could not listen on {host}:{port}")
            await asyncio.sleep(0.005)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, START_TIMEOUT)


def checked_listen(value: str, option: str) -> tuple[str, int]:
    """``HOST:PORT`` of ``--option``; SimConfigError naming the option."""
    try:
        return parse_listen(value)
    except SimConfigError as exc:
        raise SimConfigError(option, str(exc).partition(": ")[2]) from None


def secrets(option: str, *names: str) -> tuple[str, ...]:
    """The values of the environment variables ``names`` (secrets never come from
    the command line, which ``ps`` shows); SimConfigError if one is unset."""
    values = tuple(os.environ.get(name) or "" for name in names)
    if not all(values):
        raise SimConfigError(option, "set " + " and ".join(f"${n}" for n in names))
    return values


def checked_seconds(value: float, option: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise SimConfigError(option, "must be a number of seconds > 0")
    return value


def checked_url(value: str | None, option: str) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise SimConfigError(option, f"not an http(s) URL: {value!r}")
    return value


def checked_numbers(values: list[str], option: str) -> tuple[str, ...]:
    """E.164 numbers of a repeatable option, without their ``+``."""
    numbers = tuple(v.removeprefix("+") for v in values)
    if len(numbers) > MAX_NUMBERS or not all(n.isascii() and n.isdigit() and 1 <= len(n) <= 15
                                              for n in numbers):
        raise SimConfigError(option, f"E.164 numbers (at most {MAX_NUMBERS:,})")
    return numbers


def checked_rejects(values: list[str], option: str, what: str,
                    check: Callable[[str], bool]) -> dict[str, str]:
    """``NUMBER:ANSWER`` pairs of a repeatable option (the answer checked by ``check``)."""
    pairs = [v.rpartition(":") for v in values]
    if any(not sep or not check(answer) for _, sep, answer in pairs):
        raise SimConfigError(option, f"NUMBER:{what}, e.g. +447700900123:{what}")
    numbers = checked_numbers([n for n, _, _ in pairs], option)
    return dict(zip(numbers, (answer for _, _, answer in pairs), strict=True))


def checked_count(value: int, option: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise SimConfigError(option, f"must be {low}..{high}")
    return value


@asynccontextmanager
async def alongside(work: Coroutine[Any, Any, None] | None) -> AsyncIterator[None]:
    """Run ``work`` (if any) as a task until the block ends, then cancel it."""
    task = None if work is None else asyncio.create_task(work)
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
