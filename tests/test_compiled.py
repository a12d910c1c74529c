"""The optional compiled build (``scripts/compile``) never runs stale code.

A mypyc-compiled module (a ``.so`` beside its source) is imported instead of
the ``.py``, and does not follow later edits of it. ``scripts/compile``
records each compiled source's SHA-256; these tests fail while a compiled
module no longer matches its source, and check that what is compiled is what
is imported. Without compiled modules herald is pure Python, the default.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from types import FrameType

import pytest

from herald.guard.corpus import big_capture
from herald.guard.inspector import Inspector
from herald.signaling.policy import Engine, InMemoryPendingMessages, parse_policy

SRC = Path(__file__).resolve().parents[1] / "src"
STAMP = SRC / "herald" / ".compiled-sources"


def compiled(root: Path) -> dict[str, Path]:
    """Compiled modules under ``root``: source path (relative) -> extension."""
    return {
        str(so.with_name(so.name.split(".", 1)[0] + ".py").relative_to(root)): so
        for so in (root / "herald").rglob("*.so")
    }


def stale(root: Path, stamp: Path) -> list[str]:
    """Compiled modules whose source changed since ``scripts/compile`` (or
    that it did not record)."""
    found = compiled(root)
    if not found:
        return []
    recorded: dict[str, str] = {}
    if stamp.exists():
        for line in stamp.read_text().splitlines():
            digest, path = line.split(maxsplit=1)
            recorded[path] = digest
    return sorted(
        path for path in found
        if recorded.get(path) != hashlib.sha256((root / path).read_bytes()).hexdigest()
    )  # fmt: skip


def test_no_compiled_module_is_stale() -> None:
    assert stale(SRC, STAMP) == [], "re-run scripts/compile, or scripts/compile --clean"


def test_compiled_modules_are_the_ones_imported() -> None:
    for source, extension in compiled(SRC).items():
        module = importlib.import_module(source.removesuffix(".py").replace("/", "."))
        assert module.__file__ == str(extension)


def test_an_edited_source_makes_its_compiled_module_stale(tmp_path: Path) -> None:
    package = tmp_path / "herald" / "signaling"
    package.mkdir(parents=True)
    source = package / "tcap.py"
    source.write_text("X = 1\n")
    (package / "tcap.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    stamp = tmp_path / "herald" / ".compiled-sources"
    assert stale(tmp_path, stamp) == ["herald/signaling/tcap.py"]  # never recorded
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    stamp.write_text(f"{digest}  herald/signaling/tcap.py\n")
    assert stale(tmp_path, stamp) == []
    source.write_text("X = 2\n")
    assert stale(tmp_path, stamp) == ["herald/signaling/tcap.py"]


def test_the_compiled_hot_path_runs_no_interpreted_herald_code() -> None:
    """With the compiled build, judging a mixed capture calls no herald
    function that runs interpreted, but for the reason texts of findings and
    the pending-messages port (the platform's adapter) and an application
    context's first sight (then cached). A hot-path module
    left out of ``scripts/compile`` shows here: the engine's state module
    was, and its ``bounded_put`` ran interpreted on every message."""
    if not compiled(SRC):
        pytest.skip("pure Python: scripts/compile has not run")
    capture = big_capture(3_000)
    inspector = Inspector(
        Engine(parse_policy(capture.policy), InMemoryPendingMessages(capture.pending))
    )
    records = capture.records()
    interpreted: set[str] = set()

    def calls(frame: FrameType, event: str, arg: object) -> None:
        path = frame.f_code.co_filename
        if event == "call" and "/herald/" in path:
            interpreted.add(f"{path.split('/herald/', 1)[1]}:{frame.f_code.co_name}")

    sys.setprofile(calls)
    try:
        for first in range(0, len(records), 64):
            for _ in inspector.judged(records[first : first + 64]):
                pass
    finally:
        sys.setprofile(None)
    allowed = {"signaling/policy/categories.py:operation_name",
               "signaling/policy/egress.py:has_pending",
               "signaling/map_ops.py:map_ac"}  # fmt: skip
    assert interpreted <= allowed, sorted(interpreted - allowed)
