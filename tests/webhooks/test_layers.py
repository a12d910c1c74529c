"""The webhook decisions (signature, payloads, retry and URL policy) do no I/O.

Only ``sender.py`` and its HTTP client ``_http.py`` touch the network, the
event loop and the clock; the rest
is pure (STYLE.md items 1-2), so receivers can import ``verify_signature``
without pulling in an HTTP client, and the tests of those modules need no loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "herald" / "webhooks"
PURE = ("_errors.py", "_signature.py", "_payload.py", "_policy.py")
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "threading", "sqlite3", "httpx", "httpcore",
             "httptools", "random", "herald.webhooks.sender", "herald.webhooks._http"}  # fmt: skip


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", PURE)
def test_decision_modules_import_no_io_clock_or_randomness(name: str) -> None:
    imported = _imports(PACKAGE / name)
    bad = {m for m in imported if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN}
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_pure_list_covers_every_module_but_the_sender() -> None:
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules - set(PURE) == {"__init__.py", "sender.py", "_http.py"}
