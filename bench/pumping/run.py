"""Issue 11's goal table for several seeds: generate, replay every engine, score.

    .venv/bin/python bench/pumping/run.py --seeds 1 2 3
    .venv/bin/python bench/pumping/run.py --quick --seeds 1 --keep /tmp/pumping
    .venv/bin/python bench/pumping/run.py --seeds 1 2 3 --engines herald

For each seed: ``corpus.py``'s corpus (``--days``, ``--scale``), each
engine's decisions, and one table with a column per engine and the issue's
goals. Engines: ``conversion`` and ``budget`` (``baselines.py``, in this
process) and ``herald``, which runs ``herald fraud replay`` on the corpus
files (the defence, docs/fraud.md). The replay time of each engine is printed
under its table.
Corpora live in a temporary directory unless ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pumping import baselines, corpus, score
from pumping.replay import write_decisions

ROOT = Path(__file__).resolve().parents[2]


def _baseline(rule: str) -> Callable[[Path, Path], None]:
    def run(corpus_dir: Path, out: Path) -> None:
        write_decisions(baselines.run(corpus_dir, rule), out)
    return run


def herald_replay(corpus_dir: Path, out: Path) -> None:
    """The defence itself, through its CLI (issue 11's "Offline replay")."""
    subprocess.run(
        [sys.executable, "-m", "herald", "fraud", "replay",
         "--requests", str(corpus_dir / "requests.jsonl"),
         "--verifications", str(corpus_dir / "verifications.jsonl"),
         "--receipts", str(corpus_dir / "receipts.jsonl"),
         "--prices", str(corpus_dir / "prices.json"),
         "--out", str(out)],
        check=True, cwd=ROOT, env=None)


ENGINES: dict[str, Callable[[Path, Path], None]] = {
    "conversion": _baseline("conversion"),
    "budget": _baseline("budget"),
    "herald": herald_replay,
}
DEFAULT_ENGINES = ("conversion", "budget", "herald")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--engines", nargs="+", choices=sorted(ENGINES),
                        default=list(DEFAULT_ENGINES))
    parser.add_argument("--keep", type=Path, help="write corpora and decisions here")
    parser.add_argument("--quick", action="store_true", help="--scale 0.1")
    parser.add_argument("--networks-differ", action="store_true",
                        help="corpus.py --networks-differ")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale = 0.1
    with tempfile.TemporaryDirectory(prefix="pumping-") as tmp:
        base = args.keep or Path(tmp)
        for seed in args.seeds:
            directory = base / f"seed{seed}"
            started = time.perf_counter()
            requests = corpus.generate(seed, args.days, args.scale,
                                       networks_differ=args.networks_differ)
            corpus.write(requests, directory, seed)
            attacks = sum(r.label == "attack" for r in requests)
            print(f"\nseed {seed}: {len(requests):,} requests, {attacks:,} attack "
                  f"(generated in {time.perf_counter() - started:.1f} s)")
            columns = []
            timings = []
            for name in args.engines:
                out = directory / f"decisions-{name}.jsonl"
                started = time.perf_counter()
                ENGINES[name](directory, out)
                timings.append(f"{name} {time.perf_counter() - started:.1f} s")
                columns.append((name, score.score_corpus(directory, out)))
            print(score.format_table(columns))
            print("replay: " + ", ".join(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
