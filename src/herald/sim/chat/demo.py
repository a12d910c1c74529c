"""The WhatsApp fake inside ``herald serve --demo`` (docs/channels.md, "Try it").

One business phone number (:data:`DEMO_NUMBER_ID`) owned by the demo account;
a fresh token and app secret each run (they never leave the process). Every
recipient reads what it gets, except :data:`DEMO_NOT_ON_WHATSAPP`, which has
no WhatsApp account (error 131026): a chain to it falls back to SMS. The fake
sends its queued status webhooks every second, and approves templates at once.
``herald serve --demo`` takes ``herald sim``'s ``--whatsapp-*`` misbehaviour
options (:class:`~herald.sim.chat.cli.Misbehaviour`) for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Final

import httpx

from herald.sim.chat._serve import serve_app
from herald.sim.chat.cli import Misbehaviour
from herald.sim.chat.whatsapp import FakeWhatsApp, FakeWhatsAppConfig

__all__ = ["DEMO_BUSINESS_ACCOUNT_ID", "DEMO_NOT_ON_WHATSAPP", "DEMO_NUMBER_ID", "DemoWhatsApp"]

#: The demo's WhatsApp business phone number id.
DEMO_NUMBER_ID: Final = "1065550001"
#: The demo's WhatsApp Business Account (its templates: /v1/templates).
DEMO_BUSINESS_ACCOUNT_ID: Final = "102290129340398"
#: A recipient with no WhatsApp account (E.164 digits).
DEMO_NOT_ON_WHATSAPP: Final = "447911123450"
#: Cloud API: "Message undeliverable" (no WhatsApp account).
_UNDELIVERABLE: Final = 131026
#: Seconds between two sends of the queued status webhooks.
STATUS_DELAY: Final = 1.0
_log = logging.getLogger("herald.sim.whatsapp")


class DemoWhatsApp:
    """Start with :meth:`start`; set :attr:`fake`'s ``webhook_url`` to herald's
    receiver once it listens; end with :meth:`stop`."""

    def __init__(self, misbehaviour: Misbehaviour | None = None) -> None:
        self.token = secrets.token_urlsafe(24)
        self.app_secret = secrets.token_urlsafe(24)
        self.fake = FakeWhatsApp(FakeWhatsAppConfig(token=self.token, app_secret=self.app_secret,
                                                    outcomes={"read": 1.0}))
        self.fake.reject(DEMO_NOT_ON_WHATSAPP, _UNDELIVERABLE)
        if misbehaviour is not None:  # herald serve --demo --whatsapp-...
            misbehaviour.apply(self.fake)
        self.fake.auto_approve = True  # /v1/templates: Meta's review is instant here
        self.port = 0
        self._stack = contextlib.AsyncExitStack()

    async def start(self) -> int:
        """Listen on a free loopback port (returned) and send statuses every second."""
        self.port = await self._stack.enter_async_context(serve_app(self.fake.app))
        task = asyncio.create_task(self._statuses())
        self._stack.push_async_callback(self._cancel, task)
        return self.port

    async def _statuses(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
            while True:
                await asyncio.sleep(STATUS_DELAY)
                if self.fake.webhook_url is None:
                    continue
                try:
                    await self.fake.flush(http)
                except httpx.HTTPError as exc:
                    _log.warning("status webhooks not delivered: %s", type(exc).__name__)

    @staticmethod
    async def _cancel(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop(self) -> None:
        await self._stack.aclose()
