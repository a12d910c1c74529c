"""``herald guard proxy`` in its own process, as an operator runs it, between two
loopback M3UA endpoints (the tests' side A connects to it; it connects to B)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, overload

from .test_proxy import WAIT, Endpoint

E = TypeVar("E", bound=Endpoint)


async def line_with(stream: asyncio.StreamReader, contains: str) -> str:
    """The next line of ``stream`` that holds ``contains`` (bounded)."""
    for _ in range(20):
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        if contains in line or not line:
            return line
    raise AssertionError(f"no line with {contains!r}")


@dataclass
class ProxyProcess:
    """The running proxy, the endpoints B accepted, and what the test opened."""

    process: asyncio.subprocess.Process
    home: asyncio.Queue[Endpoint]
    opened: list[Endpoint] = field(default_factory=list)

    @overload
    async def connect(self) -> tuple[Endpoint, Endpoint]: ...

    @overload
    async def connect(self, kind: type[E]) -> tuple[E, Endpoint]: ...

    async def connect(self, kind: type[Endpoint] = Endpoint) -> tuple[Endpoint, Endpoint]:
        """Side A connected to the proxy (once it says where it listens), and the
        B side the proxy opened for it."""
        assert self.process.stdout is not None
        line = await line_with(self.process.stdout, "listening on")
        port = int(line.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        a = kind(reader, writer)
        a.start()
        self.opened.append(a)
        b = await asyncio.wait_for(self.home.get(), WAIT)
        self.opened.append(b)
        return a, b


@contextlib.asynccontextmanager
async def proxy_process(policy: Path, *args: str, stderr: bool = False,
                        env: dict[str, str] | None = None) -> AsyncIterator[ProxyProcess]:
    """``herald guard proxy --policy policy *args`` on 127.0.0.1, bounded to 60 s,
    ``env`` added to the environment; killed (if still running) and its
    endpoints closed on the way out."""
    home: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        home.put_nowait(endpoint)

    server = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_port = server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "herald", "guard", "proxy", "--listen", "127.0.0.1:0",
        "--peer", f"127.0.0.1:{b_port}", "--policy", str(policy), *args, "--duration", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE if stderr else None,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )  # fmt: skip
    running = ProxyProcess(process, home)
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for endpoint in running.opened:
            await endpoint.close()
        server.close()
