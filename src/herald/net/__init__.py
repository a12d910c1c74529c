"""asyncio shells around the sans-I/O SMPP session: a server and a client.

No protocol rules live here (see ``herald.smpp.session``); these modules move
bytes and time, apply backpressure and turn responses into futures.
"""

from herald.net._connection import (
    Answered,
    ConnectionClosed,
    ConnectionOwner,
    ResponseTimeout,
    SmppConnection,
    SmppNetError,
    UnparsedResponse,
)
from herald.net.client import BindFailed, ClientHandler, ClientSettings, NotBound, SmppClient
from herald.net.server import ServerConnection, ServerHandler, ServerSettings, SmppServer

__all__ = [
    "Answered",
    "BindFailed",
    "ClientHandler",
    "ClientSettings",
    "ConnectionClosed",
    "ConnectionOwner",
    "NotBound",
    "ResponseTimeout",
    "ServerConnection",
    "ServerHandler",
    "ServerSettings",
    "SmppClient",
    "SmppConnection",
    "SmppNetError",
    "SmppServer",
    "UnparsedResponse",
]
