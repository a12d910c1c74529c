"""A causal replay of a corpus through a policy: the order ``herald fraud replay``
promises (issue 11), for the baselines in ``baselines.py``.

Theory of operation: every request, receipt and verification becomes one
event keyed by (time, kind, line): at equal times receipts and verifications
come before requests; equal keys keep file order. The policy sees the events
one by one, answers each request allow or block, and is never shown a receipt
or verification of a request it blocked (a blocked code is never sent). Only
``requests.jsonl``, ``receipts.jsonl`` and ``verifications.jsonl`` are read,
never ``labels.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = ["Corpus", "Decision", "Policy", "load", "parse_ts", "replay", "write_decisions"]

# Event kinds in their order at equal timestamps (issue 11).
_RECEIPT, _VERIFICATION, _REQUEST = 0, 1, 2


def parse_ts(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 UTC timestamp (``...Z`` or ``+00:00``)."""
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


@dataclass(frozen=True, slots=True)
class Corpus:
    requests: list[dict[str, Any]]
    verifications: list[dict[str, Any]]
    receipts: list[dict[str, Any]]


def load(directory: Path) -> Corpus:
    return Corpus(read_jsonl(directory / "requests.jsonl"),
                  read_jsonl(directory / "verifications.jsonl"),
                  read_jsonl(directory / "receipts.jsonl"))


@dataclass(frozen=True, slots=True)
class Decision:
    id: str
    action: str  # "allow" | "block"
    ts: str


class Policy(Protocol):
    """What a replayed rule implements; ``now`` is ms since the epoch."""

    def request(self, req: Mapping[str, Any], now: int) -> bool:
        """True: allow (the code is sent); False: block."""

    def receipt(self, request_id: str, status: str, now: int) -> None: ...

    def verification(self, request_id: str, now: int) -> None: ...


def replay(corpus: Corpus, policy: Policy) -> list[Decision]:
    """One decision per request, in event order."""
    events: list[tuple[int, int, int]] = []
    for kind, rows in ((_RECEIPT, corpus.receipts), (_VERIFICATION, corpus.verifications),
                       (_REQUEST, corpus.requests)):
        events.extend((parse_ts(row["ts"]), kind, n) for n, row in enumerate(rows))
    events.sort()
    blocked: set[str] = set()
    decisions: list[Decision] = []
    for now, kind, n in events:
        if kind == _REQUEST:
            req = corpus.requests[n]
            if policy.request(req, now):
                decisions.append(Decision(req["id"], "allow", req["ts"]))
            else:
                blocked.add(req["id"])
                decisions.append(Decision(req["id"], "block", req["ts"]))
        elif kind == _RECEIPT:
            row = corpus.receipts[n]
            if row["request_id"] not in blocked:
                policy.receipt(row["request_id"], row["status"], now)
        else:
            row = corpus.verifications[n]
            if row["request_id"] not in blocked:
                policy.verification(row["request_id"], now)
    return decisions


def write_decisions(decisions: Iterable[Decision], path: Path) -> None:
    with path.open("wb") as f:
        f.writelines(orjson.dumps({"id": d.id, "action": d.action, "ts": d.ts}) + b"\n"
                     for d in decisions)
