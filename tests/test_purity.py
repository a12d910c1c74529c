"""The pure core does no I/O and reads no clock (ARCHITECTURE.md, layer 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "herald"
PURE_PACKAGES = ("smpp", "text", "signaling", "intake", "routing", "rating", "verify",
                 "fraud")
#: Pure modules inside packages that also hold adapters (dotted, below herald).
PURE_MODULES: tuple[str, ...] = ("cluster.leases",)
PURE = (*PURE_PACKAGES, *PURE_MODULES)
#: Outside the pure core, what it may import: the store's port and values (the
#: package face; its SQLite adapter loads only when named, which the
#: subprocess test below checks).
VALUES = frozenset({"herald.store"})
FORBIDDEN = {
    "asyncio", "socket", "selectors", "ssl", "time", "threading", "subprocess",
    "sqlite3", "asyncpg", "psycopg", "psycopg2", "aiosqlite", "httpx", "requests",
}


def _pure_modules() -> list[Path]:
    return sorted(
        [p for pkg in PURE_PACKAGES for p in (SRC / pkg).rglob("*.py")]
        + [SRC / f"{name.replace('.', '/')}.py" for name in PURE_MODULES]
    )


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports by absolute name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports_no_io(path: Path) -> None:
    imported = imports_of(path)
    bad = {name for name in imported if name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.name} imports I/O or clock modules: {sorted(bad)}"
    upward = {
        name for name in imported
        if name.startswith("herald.")
        and not any(f"{name}.".startswith(f"herald.{p}.") for p in PURE)
        and name not in VALUES
    }
    assert not upward, f"{path.name} imports from outside the pure core: {sorted(upward)}"


def test_importing_the_pure_core_loads_no_io_module() -> None:
    code = (
        "import sys\n"
        + "".join(f"import herald.{name}\n" for name in PURE)
        + "import pkgutil, importlib\n"
        + "for pkg in " + repr(PURE_PACKAGES) + ":\n"
        + "    mod = importlib.import_module('herald.' + pkg)\n"
        + "    for info in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.'):\n"
        + "        importlib.import_module(info.name)\n"
        + "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        + repr(sorted(FORBIDDEN - {"time", "threading"}))
        + ")))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"pure core pulled in: {out.stdout.strip()}"


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import asyncio\nfrom time import monotonic\n")
    assert imports_of(probe) >= {"asyncio", "time"}
