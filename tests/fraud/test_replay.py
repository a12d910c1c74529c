"""``herald fraud replay``: causal order, and the command on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.cli import main
from herald.fraud import (
    Action,
    Decision,
    Engine,
    Prices,
    Receipt,
    Request,
    Verification,
    parse_ts,
    replay,
)

T0 = parse_ts("2026-01-05T10:00:00.000Z")


class Recorder(Engine):
    """The real engine, recording what it is shown and blocking ``deny``."""

    def __init__(self, deny: set[str]) -> None:
        super().__init__(Prices())
        self.deny = deny
        self.seen: list[tuple[str, str, int]] = []

    def request(self, req: Request) -> Decision:
        self.seen.append(("request", req.id, req.ts))
        action = Action.BLOCK if req.id in self.deny else Action.ALLOW
        return Decision(req.id, action, (), 0.0)

    def receipt(self, event: Receipt) -> None:
        self.seen.append(("receipt", event.request_id, event.ts))

    def verification(self, event: Verification) -> None:
        self.seen.append(("verification", event.request_id, event.ts))


def test_replay_is_causal_and_hides_what_followed_a_block() -> None:
    requests = [Request("a", T0, "acc", "login", "+447700900001"),
                Request("b", T0 + 5_000, "acc", "login", "+447700900002"),
                Request("c", T0 + 10_000, "acc", "login", "+447700900003")]
    receipts = [Receipt("a", T0 + 5_000, "DELIVRD"), Receipt("b", T0 + 7_000, "DELIVRD")]
    verifications = [Verification("a", T0 + 10_000), Verification("b", T0 + 12_000)]
    engine = Recorder(deny={"b"})
    decisions = list(replay(engine, requests, receipts, verifications))
    assert [(d.request_id, d.action) for d in decisions] == [
        ("a", Action.ALLOW), ("b", Action.BLOCK), ("c", Action.ALLOW)]
    # At equal times receipts and verifications come first; b's are never shown.
    assert engine.seen == [("request", "a", T0), ("receipt", "a", T0 + 5_000),
                           ("request", "b", T0 + 5_000), ("verification", "a", T0 + 10_000),
                           ("request", "c", T0 + 10_000)]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _write_json(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _corpus(tmp_path: Path) -> list[str]:
    requests = [{"id": f"r{i}", "ts": f"2026-01-05T10:{i:02d}:00.000Z", "account": "acc",
                 "use_case": "signup", "to": f"+29171500{i:02d}", "country": "ER",
                 "mcc_mnc": "65702"} for i in range(30)]
    requests.insert(0, {"id": "raw", "ts": "2026-01-05T09:59:00Z", "account": "acc",
                        "use_case": "login", "to": "+447700900123"})  # no country: fail open
    receipts = [{"ts": r["ts"].replace(":00.000Z", ":03.000Z"), "request_id": r["id"],
                 "status": "DELIVRD"} for r in requests[1:]]
    prices = {"currency": "USD", "country": {"ER": 0.38, "GB": 0.04},
              "mcc_mnc": {"65702": 0.95}}
    return ["fraud", "replay",
            "--requests", str(_write(tmp_path / "r.jsonl", requests)),
            "--verifications", str(_write(tmp_path / "v.jsonl", [])),
            "--receipts", str(_write(tmp_path / "d.jsonl", receipts)),
            "--prices", str(_write_json(tmp_path / "p.json", prices)),
            "--out", str(tmp_path / "out.jsonl")]


def test_the_command_writes_one_decision_per_request(tmp_path: Path) -> None:
    assert main(_corpus(tmp_path)) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [set(d) for d in lines] == [{"id", "action", "ts"}] * 31
    assert lines[0] == {"id": "raw", "action": "allow", "ts": "2026-01-05T09:59:00Z"}
    actions = [d["action"] for d in lines[1:]]
    # A sequential sweep of a premium range: the first code goes, the rest stop.
    assert actions[0] == "allow" and actions[-25:] == ["block"] * 25


def test_bad_input_names_the_file_and_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = _corpus(tmp_path)
    (tmp_path / "r.jsonl").write_text('{"id": "x", "ts": "2026-01-05T10:00:00Z"}\n')
    assert main(argv) == 2
    assert "r.jsonl:1: missing field 'to'" in capsys.readouterr().err


def test_a_throttled_request_is_written_block_with_its_step(tmp_path: Path) -> None:
    # One number asked again and again: a throttle first (not sent now), then a block.
    argv = _corpus(tmp_path)
    rows = [{"id": f"n{i}", "ts": f"2026-01-05T10:{i:02d}:00.000Z", "account": "acc",
             "use_case": "login", "to": "+2917150001", "country": "ER", "mcc_mnc": "65702"}
            for i in range(12)]
    _write(tmp_path / "r.jsonl", rows)
    _write(tmp_path / "d.jsonl", [{"ts": r["ts"].replace(":00.000Z", ":03.000Z"),
                                   "request_id": r["id"], "status": "DELIVRD"} for r in rows])
    assert main([*argv, "--reasons"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    steps = [(d["action"], d["step"]) for d in lines]
    assert ("block", "throttle") in steps and ("block", "block") in steps
    assert {a for a, s in steps if s == "throttle"} == {"block"}
    assert steps.index(("block", "throttle")) < steps.index(("block", "block"))


def test_monitor_mode_allows_everything_and_says_what_it_would_do(tmp_path: Path) -> None:
    assert main([*_corpus(tmp_path), "--mode", "monitor", "--reasons"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {d["action"] for d in lines} == {"allow"}
    assert sum(d["step"] == "block" for d in lines) >= 25
