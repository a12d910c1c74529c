"""The channel decisions (legs, codes, signatures, bodies, pacing) do no I/O.

Only ``clients.py`` touches the network, the loop and the clock (STYLE.md
items 1-2), so the decisions are tested without either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_purity import imports_of  # tests/ is on the path (pytest's prepend mode)

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "herald" / "channels"
PURE = ("_legs.py", "_codes.py", "_port.py", "_signature.py", "_whatsapp.py", "_viber.py",
        "_window.py", "_chain.py",
        "_pace.py", "_steps.py", "_view.py", "_templates.py")
FORBIDDEN = {"asyncio", "socket", "ssl", "time", "threading", "sqlite3", "httpx", "httpcore",
             "aiohttp", "random", "herald.channels.clients", "herald.store.sqlite"}


@pytest.mark.parametrize("name", PURE)
def test_decision_modules_import_no_io_clock_or_randomness(name: str) -> None:
    imported = imports_of(PACKAGE / name)
    bad = {m for m in imported if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN}
    assert not bad, f"{name} imports {sorted(bad)}"


def test_the_pure_list_covers_every_module_but_the_clients() -> None:
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert modules - set(PURE) <= {"__init__.py", "clients.py"}
