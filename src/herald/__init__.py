"""herald: an A2P messaging platform with an SS7 signaling guard.

Layers (imports point downward only):

1. pure core: ``herald.smpp``, ``herald.text``, ``herald.signaling`` (no I/O, no clock)
2. adapters: ``herald.net`` (asyncio SMPP shells), store, HTTP API, transports
3. service: composition root and the CLI (``herald.cli``)
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
