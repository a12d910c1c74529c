"""``herald sim --viber``: the Viber provider fake from the command line, beside the SMSC."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from tests.channels.helpers import LegBook, receiver

from herald.channels import (
    Accepted,
    LegEvent,
    LegState,
    Rejected,
    Submission,
    SubmitResult,
    TextContent,
    ViberSettings,
)
from herald.channels.clients import ViberClient
from herald.sim.chat import serve_app
from herald.sim.chat.viber_cli import SECRET_ENV, TOKEN_ENV

TOKEN, SECRET = "vb-cli-token", "vb-cli-secret"
START_TIMEOUT, STOP_TIMEOUT = 20.0, 10.0


def _herald(*args: str) -> list[str]:
    return [sys.executable, "-m", "herald", *args]


@contextlib.asynccontextmanager
async def viber_sim(book: LegBook, *options: str) -> AsyncIterator[ViberClient]:
    """``herald sim --viber`` with ``options``, its callbacks into ``book``
    (signatures checked); a client of the fake. Stops it and checks it exits 0."""
    verifier = ViberClient(ViberSettings("http://127.0.0.1:9", TOKEN, SECRET))
    client: ViberClient | None = None
    async with serve_app(receiver(verifier, book)) as hook_port:
        proc = await asyncio.create_subprocess_exec(
            *_herald("sim", "--listen", "127.0.0.1:0", "--viber", "127.0.0.1:0",
                     "--viber-callback", f"http://127.0.0.1:{hook_port}/hook",
                     "--viber-status-delay", "0.05", *options),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: TOKEN, SECRET_ENV: SECRET})
        assert proc.stdout is not None
        try:
            await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            found = re.search(rb"Viber provider fake on 127\.0\.0\.1:(\d+)", line)
            assert found, line
            client = ViberClient(ViberSettings(f"http://127.0.0.1:{int(found.group(1))}",
                                               TOKEN, SECRET))
            yield client
        finally:
            await verifier.aclose()
            if client is not None:
                await client.aclose()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
    assert proc.returncode == 0, err.decode()


async def submit_each(client: ViberClient, *numbers: str) -> list[SubmitResult]:
    return [await client.submit(Submission(f"leg{n}", "HeraldShop", to,
                                           TextContent("Order shipped")))
            for n, to in enumerate(numbers)]


async def test_the_cli_delivers_expires_and_refuses_as_told() -> None:
    book = LegBook()
    async with viber_sim(book, "--viber-expire", "+447700900124",
                         "--viber-not-on-viber", "447700900125") as client:
        delivered, expired, absent = await submit_each(
            client, "447700900123", "447700900124", "447700900125")
        assert isinstance(delivered, Accepted) and isinstance(expired, Accepted)
        assert isinstance(absent, Rejected) and absent.provider_code == "not_viber_user"
        for result in (delivered, expired):
            book.accepted(result.provider_id)
        for _ in range(200):  # bounded: up to 10 s for the callbacks
            if len(book.changes) >= 2:
                break
            await asyncio.sleep(0.05)
        assert book.states[delivered.provider_id] is LegState.DELIVERED
        assert book.states[expired.provider_id] is LegState.EXPIRED  # signatures checked


async def test_the_cli_repeats_callbacks_reads_late_and_rejects_as_told() -> None:
    """Each callback twice; a read after the expiry (herald has fallen back by
    then); a number refused with ``blocked``."""
    book = LegBook()
    async with viber_sim(book, "--viber-expire", "447700900124", "--viber-duplicates", "2",
                         "--viber-seen-after", "0.2",
                         "--viber-reject", "+447700900126:blocked") as client:
        delivered, expired, blocked = await submit_each(
            client, "447700900123", "447700900124", "447700900126")
        assert isinstance(delivered, Accepted) and isinstance(expired, Accepted)
        assert isinstance(blocked, Rejected) and blocked.provider_code == "blocked"
        for _ in range(200):  # bounded: up to 10 s for the 8 callbacks
            if len(book.events) >= 8:
                break
            await asyncio.sleep(0.05)

    def told(provider_id: str) -> list[LegEvent]:
        return [e.event for e in book.events if e.provider_id == provider_id]

    assert told(delivered.provider_id) == [LegEvent.DELIVERED] * 2 + [LegEvent.READ] * 2
    assert told(expired.provider_id) == [LegEvent.EXPIRED] * 2 + [LegEvent.READ] * 2


@pytest.mark.parametrize(("args", "env", "complaint"), [
    (["--viber", "127.0.0.1:0"], {}, "viber"),
    (["--viber", "nowhere"], {TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}, "viber"),
    (["--viber", "127.0.0.1:0", "--viber-status-delay", "0"],
     {TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}, "viber-status-delay"),
    (["--viber", "127.0.0.1:0", "--viber-expire", "abc"],
     {TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}, "viber-expire"),
    (["--viber", "127.0.0.1:0", "--viber-callback", "ftp://x"],
     {TOKEN_ENV: TOKEN, SECRET_ENV: SECRET}, "viber-callback"),
])
def test_bad_viber_options_exit_2_naming_the_option(args: list[str], env: dict[str, str],
                                                    complaint: str) -> None:
    base = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, SECRET_ENV)}
    done = subprocess.run(_herald("sim", *args), capture_output=True, text=True, timeout=30,
                          env={**base, **env})
    assert done.returncode == 2
    assert done.stderr.startswith(f"herald sim: {complaint}:"), done.stderr
