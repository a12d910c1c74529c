"""Finding the independent peers that interop tests talk to.

Locally a missing peer skips its tests (with the command that installs it); in CI
(``CI`` set) a missing peer fails them, so an install step that broke is never
mistaken for a green run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "peers" / "node"


def missing(what: str, how: str = "scripts/peers") -> None:
    message = f"peer {what} is not installed (run {how})"
    if os.environ.get("CI"):
        pytest.fail(message + " and CI requires every peer", pytrace=False)
    pytest.skip(message)


def executable(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name) or next(
        (str(Path(d) / name) for d in extra_dirs if (Path(d) / name).exists()), None
    )
    if found is None:
        missing(name)
        raise AssertionError("unreachable")
    return found


def node_smpp_dir() -> Path:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "smpp").is_dir():
        missing("npm smpp")
    return NODE_DIR
