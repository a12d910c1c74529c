"""What the adapter does when the provider does not answer (loopback sockets, no fake logic)."""

from __future__ import annotations

import asyncio
import socket

from herald.channels import ChannelErrorCode, Rejected, Submission, TemplateContent
from herald.channels.clients import WhatsAppClient, WhatsAppSettings

SUB = Submission("leg1", "1065550001", "447700900123", TemplateContent("t", "en_US"))


async def test_a_request_that_got_no_answer_is_not_sent_twice() -> None:
    received: list[bytes] = []
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        await done.wait()  # never answers; the client's timeout ends the exchange
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = WhatsAppClient(WhatsAppSettings(f"http://127.0.0.1:{port}", "tok", "sec",
                                             timeout=0.3, retry_delay=0.01))
    try:
        result = await client.submit(SUB)
    finally:
        await client.aclose()
        done.set()
        server.close()
        await server.wait_closed()
    assert isinstance(result, Rejected) and not result.permanent
    assert result.code is ChannelErrorCode.PROVIDER_UNAVAILABLE
    assert "may have taken" in result.detail
    assert client.counters.requests == 1 and len(received) == 1


async def test_a_refused_connection_is_tried_again_then_returned() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WhatsAppClient(WhatsAppSettings(f"http://127.0.0.1:{port}", "tok", "sec",
                                             max_transient_retries=2, retry_delay=0.01))
    try:
        result = await client.submit(SUB)
    finally:
        await client.aclose()
    assert isinstance(result, Rejected) and result.code is ChannelErrorCode.PROVIDER_UNAVAILABLE
    assert client.counters.requests == 3
