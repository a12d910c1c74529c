"""``herald sim --whatsapp``: the Cloud API fake from the command line, beside the SMSC."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys

import pytest
from tests.channels.helpers import LegBook, receiver

from herald.channels import (
    Accepted,
    LegEvent,
    LegState,
    Rejected,
    Submission,
    TemplateContent,
)
from herald.channels._pace import PaceSettings
from herald.channels.clients import WhatsAppClient, WhatsAppSettings
from herald.sim.chat import serve_app
from herald.sim.chat.cli import APP_SECRET_ENV, TOKEN_ENV

TOKEN, SECRET = "EAAcli-token", "cli-app-secret"
START_TIMEOUT, STOP_TIMEOUT = 20.0, 10.0


def _herald(*args: str) -> list[str]:
    return [sys.executable, "-m", "herald", *args]


async def test_the_cli_runs_the_fake_and_posts_signed_statuses_to_the_webhook() -> None:
    book = LegBook()
    client: WhatsAppClient | None = None
    # the receiver only verifies and reads webhooks: its adapter sends nothing
    verifier = WhatsAppClient(WhatsAppSettings("http://127.0.0.1:9", TOKEN, SECRET))
    async with serve_app(receiver(verifier, book)) as hook_port:
        proc = await asyncio.create_subprocess_exec(
            *_herald("sim", "--listen", "127.0.0.1:0", "--whatsapp", "127.0.0.1:0",
                     "--whatsapp-webhook", f"http://127.0.0.1:{hook_port}/hook",
                     "--whatsapp-status-delay", "0.05", "--seed", "3"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: TOKEN, APP_SECRET_ENV: SECRET})
        assert proc.stdout is not None
        try:
            await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            found = re.search(rb"WhatsApp Cloud API fake on 127\.0\.0\.1:(\d+)", line)
            assert found, line
            client = WhatsAppClient(WhatsAppSettings(
                f"http://127.0.0.1:{int(found.group(1))}", TOKEN, SECRET))
            result = await client.submit(Submission(
                "leg1", "1065550001", "447700900123", TemplateContent("order_update", "en_US")))
            assert isinstance(result, Accepted)
            book.accepted(result.provider_id)
            for _ in range(200):  # bounded: up to 10 s for the statuses to come
                if book.states[result.provider_id] in (LegState.READ, LegState.DELIVERED,
                                                       LegState.FAILED) and book.events:
                    break
                await asyncio.sleep(0.05)
            assert book.events, "no status webhook arrived"
            assert book.states[result.provider_id] is not LegState.ACCEPTED
        finally:
            await verifier.aclose()
            if client is not None:
                await client.aclose()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
    assert proc.returncode == 0, err.decode()


def test_the_fake_needs_its_token_and_secret_from_the_environment() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, APP_SECRET_ENV)}
    done = subprocess.run(_herald("sim", "--whatsapp", "127.0.0.1:0"), capture_output=True,
                          text=True, timeout=30, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("herald sim: whatsapp:") and TOKEN_ENV in done.stderr


@pytest.mark.parametrize(("args", "complaint"), [
    (["--whatsapp", "nowhere"], "whatsapp"),
    (["--whatsapp", "127.0.0.1:0", "--whatsapp-rate", "0"], "whatsapp-rate"),
    (["--whatsapp", "127.0.0.1:0", "--whatsapp-status-delay", "-1"], "whatsapp-status-delay"),
    (["--whatsapp", "127.0.0.1:0", "--whatsapp-webhook", "ftp://x"], "whatsapp-webhook"),
])
def test_bad_whatsapp_options_exit_2_naming_the_option(args: list[str], complaint: str) -> None:
    env = {**os.environ, TOKEN_ENV: TOKEN, APP_SECRET_ENV: SECRET}
    done = subprocess.run(_herald("sim", *args), capture_output=True, text=True, timeout=30,
                          env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"herald sim: {complaint}:"), done.stderr


@pytest.mark.parametrize(("args", "complaint"), [
    (["--whatsapp-reject", "447700900123"], "whatsapp-reject"),
    (["--whatsapp-reject", "abc:131026"], "whatsapp-reject"),
    (["--whatsapp-duplicates", "0"], "whatsapp-duplicates"),
    (["--whatsapp-throttle", "-1"], "whatsapp-throttle"),
    (["--whatsapp-read-delay", "-1"], "whatsapp-read-delay"),
    (["--viber-reject", "447700900123:gone"], "viber-reject"),
    (["--viber-duplicates", "11"], "viber-duplicates"),
    (["--viber-seen-after", "0"], "viber-seen-after"),
])
def test_bad_misbehaviour_options_exit_2_naming_the_option(
        args: list[str], complaint: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from herald.sim import cli as sim_cli
    from herald.sim.chat import viber_cli

    for name in (TOKEN_ENV, APP_SECRET_ENV, viber_cli.TOKEN_ENV, viber_cli.SECRET_ENV):
        monkeypatch.setenv(name, "x")
    parser = argparse.ArgumentParser()
    sim_cli.register(parser.add_subparsers())
    parsed = parser.parse_args(["sim", "--listen", "127.0.0.1:0", "--whatsapp", "127.0.0.1:0",
                                "--viber", "127.0.0.1:0", *args])
    assert parsed.func(parsed) == 2  # refused before anything listens
    assert capsys.readouterr().err.startswith(f"herald sim: {complaint}:")


async def test_the_cli_sets_the_fakes_misbehaviour() -> None:
    """Duplicated, reversed statuses with ``delivered`` skipped and ``read`` late;
    a number refused with 131026; the first send throttled."""
    book = LegBook()
    client: WhatsAppClient | None = None
    verifier = WhatsAppClient(WhatsAppSettings("http://127.0.0.1:9", TOKEN, SECRET))
    async with serve_app(receiver(verifier, book)) as hook_port:
        proc = await asyncio.create_subprocess_exec(
            *_herald("sim", "--listen", "127.0.0.1:0", "--whatsapp", "127.0.0.1:0",
                     "--whatsapp-webhook", f"http://127.0.0.1:{hook_port}/hook",
                     "--whatsapp-status-delay", "0.05", "--seed", "3",
                     "--whatsapp-duplicates", "3", "--whatsapp-reverse",
                     "--whatsapp-drop-delivered", "--whatsapp-read-delay", "0.4",
                     "--whatsapp-reject", "+447700900199:131026", "--whatsapp-throttle", "1"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, TOKEN_ENV: TOKEN, APP_SECRET_ENV: SECRET})
        assert proc.stdout is not None
        try:
            await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
            found = re.search(rb"WhatsApp Cloud API fake on 127\.0\.0\.1:(\d+)", line)
            assert found, line
            client = WhatsAppClient(WhatsAppSettings(
                f"http://127.0.0.1:{int(found.group(1))}", TOKEN, SECRET,
                pace=PaceSettings(rate=1000, burst=10), retry_delay=0.01))
            absent = await client.submit(Submission(
                "leg0", "1065550001", "447700900199", TemplateContent("order_update", "en_US")))
            assert isinstance(absent, Rejected) and absent.provider_code == 131026
            assert client.counters.throttled == 1  # the first send met 130429, then went
            ids = []
            for n in range(6):
                sent = await client.submit(Submission(
                    f"leg{n + 1}", "1065550001", f"44770090012{n}",
                    TemplateContent("order_update", "en_US")))
                assert isinstance(sent, Accepted)
                ids.append(sent.provider_id)
            for _ in range(200):  # bounded: up to 10 s for the 36 statuses to come
                if len(book.events) >= 36:
                    break
                await asyncio.sleep(0.05)
        finally:
            await verifier.aclose()
            if client is not None:
                await client.aclose()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT)
    assert proc.returncode == 0, err.decode()
    kinds = set()
    for wamid in ids:
        words = [e.event for e in book.events if e.provider_id == wamid]
        assert all(words.count(w) == 3 for w in set(words)), words  # each status 3 times
        final = next(w for w in words if w is not LegEvent.SENT)
        kinds.add(final)
        if final is LegEvent.READ:  # delivered skipped; the read late, in a later webhook
            assert words == [LegEvent.SENT] * 3 + [LegEvent.READ] * 3, words
        else:  # newest first
            assert words == [final] * 3 + [LegEvent.SENT] * 3, words
    assert LegEvent.READ in kinds and len(kinds) > 1, kinds  # seed 3 draws both kinds
