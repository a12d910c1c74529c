"""Tests of the benchmarks' own logic: ``bench/`` on ``sys.path``, as its scripts have it."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
