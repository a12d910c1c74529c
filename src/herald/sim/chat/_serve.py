"""Serving a fake provider's ASGI app on a local port (uvicorn, in-process), and
the option checks and background task its ``herald sim`` switches share."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Final

import uvicorn

from herald.sim.config import parse_listen
from herald.sim.errors import SimConfigError

__all__ = ["alongside", "checked_listen", "checked_seconds", "checked_url", "secrets", "serve_app"]

#: Seconds a fake may take to start listening or to stop.
START_TIMEOUT: Final = 10.0


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
