"""Issue 11's goal table for one set of decisions on one labelled corpus.

    .venv/bin/python bench/pumping/score.py --corpus DIR --decisions decisions.jsonl

Definitions (every figure counts only requests at or after the end of the
warm-up: ``--warmup-hours``, 24 by default, from midnight UTC of the day of
the corpus's first request):

- *price* of a request: ``prices.json``'s ``mcc_mnc`` price of its true
  network (``labels.jsonl``), else its country's price; a code is one segment.
- *money* of a request: its price if the corpus delivered it (its receipt in
  ``receipts.jsonl`` is DELIVRD), else 0: what the sender pays when it is
  allowed. A blocked request is never sent and costs nothing, so the *money
  blocked* of an attack is the money of its blocked requests, its *stake* the
  money of all of them.
- *allowed*: a decision ``allow``, or no decision at all (a replay fails
  open; the table says how many requests had none).
- *attack styles detected*: styles whose money blocked is at least
  ``DETECTED_SHARE`` (half) of their stake. Each style is one attack.
- *money saved*: money blocked over stake, all attacks together.
- *money sent before the first block, worst attack*: per style, the money of
  its requests allowed before its first blocked request; the largest over
  styles, "never caught" when some style has no blocked request at all.
- *burst attacks stopped within*: for the short attacks (``BURST_STYLES``),
  the time from the attack's first request to its first blocked request
  after which at least ``STOPPED_SHARE`` (90 %) of its requests are
  blocked; the longest of them, "never" when one is not stopped.
- *real requests refused, after warm-up*: blocked legitimate requests over
  legitimate requests.
- *refusals inside the four legitimate traps*: blocked legitimate requests
  labelled with a trap.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from pumping.replay import parse_ts, read_jsonl

__all__ = ["BURST_STYLES", "Score", "format_table", "main", "score", "score_corpus"]

DETECTED_SHARE = 0.5
STOPPED_SHARE = 0.9
BURST_STYLES = ("burst", "sweep", "rare_countries")
DAY_MS = 86_400_000


@dataclass(slots=True)
class Score:
    styles: dict[str, tuple[float, float]] = field(default_factory=dict)  # stake, blocked
    before_first_block: dict[str, float | None] = field(default_factory=dict)
    stopped_after_ms: dict[str, int | None] = field(default_factory=dict)
    legit: int = 0
    legit_refused: int = 0
    trap_refused: dict[str, int] = field(default_factory=dict)
    undecided: int = 0
    currency: str = "USD"

    @property
    def detected(self) -> list[str]:
        return [s for s, (stake, blocked) in self.styles.items()
                if stake > 0 and blocked >= DETECTED_SHARE * stake]

    @property
    def saved(self) -> float:
        stake = sum(s for s, _ in self.styles.values())
        return sum(b for _, b in self.styles.values()) / stake if stake else 0.0

    @property
    def worst_before_block(self) -> float | None:
        """None: some attack was never blocked."""
        values = list(self.before_first_block.values())
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    @property
    def worst_stop_ms(self) -> int | None:
        values = list(self.stopped_after_ms.values())
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)


def score(requests: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]],
          receipts: Sequence[dict[str, Any]], prices: dict[str, Any],
          decisions: Sequence[dict[str, Any]], warmup_hours: float = 24) -> Score:
    """The table's figures; ``requests`` and ``labels`` are parallel, in time order."""
    result = Score(currency=prices.get("currency", "USD"))
    if not requests:
        return result
    first = parse_ts(requests[0]["ts"])
    warm_end = first - first % DAY_MS + int(warmup_hours * 3_600_000)
    delivered = {r["request_id"] for r in receipts if r["status"] == "DELIVRD"}
    action = {d["id"]: d["action"] for d in decisions}
    by_network, by_country = prices.get("mcc_mnc", {}), prices.get("country", {})
    attacks: dict[str, list[tuple[int, float, bool]]] = defaultdict(list)
    traps: dict[str, int] = defaultdict(int)
    for req, label in zip(requests, labels, strict=True):
        if label["id"] != req["id"]:
            raise ValueError(f"labels out of step with requests at {req['id']}")
        ts = parse_ts(req["ts"])
        if ts < warm_end:
            continue
        if req["id"] not in action:
            result.undecided += 1
        blocked = action.get(req["id"]) == "block"
        if label["label"] == "attack":
            price = by_network.get(label.get("mcc_mnc"), by_country.get(label.get("country"), 0))
            money = float(price) if req["id"] in delivered else 0.0
            attacks[label["style"]].append((ts, money, blocked))
        else:
            result.legit += 1
            result.legit_refused += blocked
            if trap := label.get("trap"):
                traps[trap] += blocked
    result.trap_refused = dict(traps)
    for style, rows in attacks.items():
        rows.sort(key=lambda row: row[0])
        result.styles[style] = (sum(m for _, m, _ in rows), sum(m for _, m, b in rows if b))
        first_block = next((i for i, (_, _, b) in enumerate(rows) if b), None)
        result.before_first_block[style] = (
            None if first_block is None else sum(m for _, m, _ in rows[:first_block]))
        if style in BURST_STYLES:
            result.stopped_after_ms[style] = _stop_ms(rows)
    return result


def _stop_ms(rows: list[tuple[int, float, bool]]) -> int | None:
    """Time from the first request to the first block after which STOPPED_SHARE are blocked."""
    blocked_after = 0
    stop: int | None = None
    for i in range(len(rows) - 1, -1, -1):  # suffixes, from the last request back
        ts, _, blocked = rows[i]
        blocked_after += blocked
        if blocked and blocked_after >= STOPPED_SHARE * (len(rows) - i):
            stop = ts
    return None if stop is None else stop - rows[0][0]


def score_corpus(corpus: Path, decisions: Path, warmup_hours: float = 24) -> Score:
    return score(read_jsonl(corpus / "requests.jsonl"), read_jsonl(corpus / "labels.jsonl"),
                 read_jsonl(corpus / "receipts.jsonl"),
                 orjson.loads((corpus / "prices.json").read_bytes()),
                 read_jsonl(decisions), warmup_hours)


def _money(value: float | None, currency: str, never: str) -> str:
    return never if value is None else f"{value:,.2f} {currency}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "never"
    return f"{ms / 1000:.0f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"


GOALS = ("7/7", ">= 96 %", "<= 15 USD", "1 min", "<= 0.1 %", "0")


def format_table(columns: Sequence[tuple[str, Score]]) -> str:
    """The goal table, one column per (name, score), the issue's goals last."""
    rows: list[list[str]] = [
        ["metric", *(name for name, _ in columns), "goal"],
        ["attack styles detected",
         *(f"{len(s.detected)}/{len(s.styles)}" for _, s in columns)],
        ["money saved", *(f"{100 * s.saved:.1f} %" for _, s in columns)],
        ["money sent before the first block, worst attack",
         *(_money(s.worst_before_block, s.currency, "never caught") for _, s in columns)],
        ["burst attacks stopped within", *(_duration(s.worst_stop_ms) for _, s in columns)],
        ["real requests refused, after warm-up",
         *(f"{100 * s.legit_refused / max(1, s.legit):.2f} %" for _, s in columns)],
        ["refusals inside the four legitimate traps",
         *(str(sum(s.trap_refused.values())) for _, s in columns)],
    ]
    for row, goal in zip(rows[1:], GOALS, strict=True):
        row.append(goal)
    styles = sorted({st for _, s in columns for st in s.styles})
    for style in styles:
        burst = style in BURST_STYLES
        rows.append([f"  {style}: saved / before first block{' / stopped' * burst}", *(
            _style_cell(s, style) for _, s in columns), ""])
    traps = sorted({t for _, s in columns for t in s.trap_refused})
    for trap in traps:
        rows.append([f"  {trap}: refused", *(str(s.trap_refused.get(trap, 0))
                                             for _, s in columns), ""])
    rows.append(["requests without a decision", *(str(s.undecided) for _, s in columns), ""])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _style_cell(s: Score, style: str) -> str:
    if style not in s.styles:
        return "-"
    stake, blocked = s.styles[style]
    share = 100 * blocked / stake if stake else 0.0
    before = s.before_first_block.get(style)
    cell = f"{share:.0f} % / {'never' if before is None else f'{before:,.2f}'}"
    if style in s.stopped_after_ms:
        cell += f" / {_duration(s.stopped_after_ms[style])}"
    return cell


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--decisions", type=Path, required=True)
    parser.add_argument("--warmup-hours", type=float, default=24)
    args = parser.parse_args(argv)
    result = score_corpus(args.corpus, args.decisions, args.warmup_hours)
    print(format_table([(args.decisions.stem, result)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
