"""A herald-side receiver of provider webhooks for adapter tests: verify, map, advance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from herald.channels import (
    STATUS_OF_LEG,
    LegEvent,
    LegState,
    MalformedWebhook,
    ProviderEvent,
    ProviderSignatureError,
    advance,
)
from herald.channels.clients import ViberClient, WhatsAppClient


@dataclass
class LegBook:
    """Legs by provider id, every change they made, and the customer callbacks
    they would cause (a leg's first final herald status)."""

    states: dict[str, LegState] = field(default_factory=dict)
    changes: list[tuple[str, LegState, LegState]] = field(default_factory=list)
    callbacks: dict[str, int] = field(default_factory=dict)
    events: list[ProviderEvent] = field(default_factory=list)
    #: (sender, user) -> time of the user's last message: its 24-hour window
    windows: dict[tuple[str, str], float] = field(default_factory=dict)

    def accepted(self, provider_id: str) -> None:
        # A status webhook may have overtaken the provider's answer: keep what it said.
        self.states.setdefault(provider_id, LegState.ACCEPTED)

    def apply(self, events: Sequence[ProviderEvent]) -> None:
        for event in events:
            self.events.append(event)
            old = self.states.get(event.provider_id, LegState.SUBMITTED)
            new = advance(old, event.event)
            if new is None:
                continue
            self.states[event.provider_id] = new
            self.changes.append((event.provider_id, old, new))
            if STATUS_OF_LEG[new].final and not STATUS_OF_LEG[old].final:
                self.callbacks[event.provider_id] = self.callbacks.get(event.provider_id, 0) + 1


def receiver(adapter: WhatsAppClient | ViberClient, book: LegBook) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        try:
            events = adapter.events(body, dict(request.headers))
        except ProviderSignatureError as exc:
            return Response(exc.reason, exc.http_status)
        except MalformedWebhook as exc:
            return Response(str(exc), 400)
        book.apply(events)
        if isinstance(adapter, WhatsAppClient):
            for message in adapter.inbound(body, dict(request.headers)):
                book.windows[(message.sender, message.user)] = message.at
        return Response(b"", 200)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


__all__ = ["LegBook", "LegEvent", "receiver"]
