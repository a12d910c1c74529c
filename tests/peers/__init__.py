"""The independent peers that interop tests talk to: finding them, and driving them.

Locally a missing peer skips its tests (with the command that installs it); in CI
(``CI`` set) a missing peer fails them, so an install step that broke is never
mistaken for a green run.

Harnesses (import the one you use; each imports its peer only when used):

``peers.kannel``          Debian Kannel (bearerbox + smsbox) as an ESME, sendsms + dlr-url
``peers.node``            npm ``smpp``: a one-shot client script and a long-running server
``peers.smpplib_client``  PyPI ``smpplib`` client on a background thread
``peers.smpp34_peer``     PyPI ``smpp34`` client and server (asyncio)
``peers.receiver``        a threaded HTTP server recording every callback (dlr-url, get-url,
                          webhooks)
``peers.base``            errors, bounded waits, free ports, the shared PDU value types
``peers.postgres``        a private PostgreSQL cluster (also used by bench/); fixtures in
                          tests/conftest.py

``tests/peers/README.md`` lists every quirk of these peers seen here, with versions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "peers" / "node"

# Debian installs the Kannel boxes in /usr/sbin, which is not on a user's PATH.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def missing(what: str, how: str = "scripts/peers") -> NoReturn:
    """Skip the calling test (fail it under ``CI``): peer ``what`` is not installed."""
    message = f"peer {what} is not installed (run {how})"
    if os.environ.get("CI"):
        pytest.fail(message + " and CI requires every peer", pytrace=False)
    pytest.skip(message)


def executable(name: str, *extra_dirs: str) -> str:
    """The path of program ``name`` (PATH first, then ``extra_dirs``), or ``missing()``."""
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra_dirs if (Path(d) / name).exists()), None
    )
    if found is None:
        missing(name)
    return found


def node_smpp_dir() -> Path:
    """``tests/peers/node`` when node and npm ``smpp`` are installed, else ``missing()``."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "smpp").is_dir():
        missing("npm smpp")
    return NODE_DIR
