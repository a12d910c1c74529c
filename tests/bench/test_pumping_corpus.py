"""bench/pumping/corpus.py: the same bytes per seed, the files issue 11's replay
reads (fields and types), every attack style and trap in the labels, and
pumped traffic that behaves as the docstring says."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from pumping.corpus import ATTACK_STYLES, TRAPS, generate, write
from pumping.replay import parse_ts, read_jsonl

SCALE = 0.03  # about 5,000 requests in 7 days: a second to generate
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
REQUIRED = {"id": str, "ts": str, "account": str, "use_case": str, "to": str}
OPTIONAL = {"country": str, "mcc_mnc": str, "network": str, "ip": str, "ip_country": str,
            "asn": str, "ip_type": str, "device_id": str, "platform": str}
FILES = ("requests.jsonl", "verifications.jsonl", "receipts.jsonl", "prices.json",
         "labels.jsonl")


def _corpus(directory: Path, seed: int) -> Path:
    write(generate(seed, 7, SCALE), directory, seed)
    return directory


@pytest.fixture(scope="module", params=[1, 2, 3])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _corpus(tmp_path_factory.mktemp(f"seed{request.param}"), request.param)


def test_a_seed_gives_the_same_bytes_and_another_seed_others(tmp_path: Path) -> None:
    first, again, other = (_corpus(tmp_path / name, seed)
                           for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    for name in FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (first / "requests.jsonl").read_bytes() != (other / "requests.jsonl").read_bytes()


def test_scale_sets_the_volume_about_200000_requests_a_week_at_one() -> None:
    assert 17_000 <= len(generate(1, 7, 0.1)) <= 23_000


def _in_time_order(rows: list[dict[str, Any]]) -> bool:
    times = [parse_ts(row["ts"]) for row in rows]
    return times == sorted(times)


def test_requests_have_the_issues_fields_and_types(corpus: Path) -> None:
    requests = read_jsonl(corpus / "requests.jsonl")
    assert _in_time_order(requests)
    assert len({r["id"] for r in requests}) == len(requests)
    missing: Counter[str] = Counter()
    for req in requests:
        for name, kind in REQUIRED.items():
            assert isinstance(req[name], kind), (name, req)
        assert set(req) <= set(REQUIRED) | set(OPTIONAL), req
        for name, kind in OPTIONAL.items():
            if name in req:
                assert isinstance(req[name], kind), (name, req)
            else:
                missing[name] += 1
        assert TS.match(req["ts"]), req
        assert E164.match(req["to"]), req
        assert req.get("ip_type", "mobile") in ("mobile", "residential", "vpn", "hosting")
        assert datetime.fromisoformat(req["ts"]).utcoffset() is not None
    # Every optional field is sometimes missing, and mostly present.
    assert set(missing) == set(OPTIONAL)
    assert all(count < len(requests) / 2 for count in missing.values())


def test_receipts_and_verifications_follow_their_requests(corpus: Path) -> None:
    requests = {r["id"]: parse_ts(r["ts"]) for r in read_jsonl(corpus / "requests.jsonl")}
    receipts = read_jsonl(corpus / "receipts.jsonl")
    verifications = read_jsonl(corpus / "verifications.jsonl")
    assert _in_time_order(receipts)
    assert _in_time_order(verifications)
    statuses = Counter(r["status"] for r in receipts)
    assert set(statuses) == {"DELIVRD", "UNDELIV", "EXPIRED"}
    assert statuses["DELIVRD"] > 0.8 * len(receipts)
    for row in receipts:
        assert set(row) == {"ts", "request_id", "status"}
        assert TS.match(row["ts"])
        assert parse_ts(row["ts"]) > requests[row["request_id"]]
    delivered = {r["request_id"] for r in receipts if r["status"] == "DELIVRD"}
    for row in verifications:
        assert set(row) == {"ts", "request_id"}
        assert parse_ts(row["ts"]) > requests[row["request_id"]]
        assert row["request_id"] in delivered  # nobody types a code that never came
    assert len({v["request_id"] for v in verifications}) == len(verifications)


def test_prices_name_every_country_and_network_of_the_labels(corpus: Path) -> None:
    prices = orjson.loads((corpus / "prices.json").read_bytes())
    assert set(prices) == {"currency", "country", "mcc_mnc"}
    assert prices["currency"] == "USD"
    for table in (prices["country"], prices["mcc_mnc"]):
        assert all(isinstance(k, str) and isinstance(v, float) and v > 0
                   for k, v in table.items())
    premium = set()
    for label in read_jsonl(corpus / "labels.jsonl"):
        country, network = prices["country"][label["country"]], prices["mcc_mnc"][label["mcc_mnc"]]
        if network > 2 * country:
            premium.add(label["mcc_mnc"])
    assert premium  # attacks go to premium-priced networks


def test_labels_name_every_attack_style_and_trap_after_the_warm_up(corpus: Path) -> None:
    requests = read_jsonl(corpus / "requests.jsonl")
    labels = read_jsonl(corpus / "labels.jsonl")
    assert [label["id"] for label in labels] == [r["id"] for r in requests]
    warm_end = parse_ts(requests[0]["ts"]) // 86_400_000 * 86_400_000 + 86_400_000
    styles: Counter[str] = Counter()
    traps: Counter[str] = Counter()
    for req, label in zip(requests, labels, strict=True):
        assert label["label"] in ("legit", "attack")
        assert ("style" in label) == (label["label"] == "attack")
        assert "trap" not in label or label["label"] == "legit"
        if "style" in label or "trap" in label:
            assert parse_ts(req["ts"]) >= warm_end, label
        styles[label.get("style", "")] += 1
        traps[label.get("trap", "")] += 1
    assert set(styles) - {""} == set(ATTACK_STYLES)
    assert set(traps) - {""} == set(TRAPS)


def test_pumped_numbers_acknowledge_delivery_and_only_bots_type_fast(corpus: Path) -> None:
    requests = {r["id"]: parse_ts(r["ts"]) for r in read_jsonl(corpus / "requests.jsonl")}
    labels = {label["id"]: label for label in read_jsonl(corpus / "labels.jsonl")}
    delivered: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    for row in read_jsonl(corpus / "receipts.jsonl"):
        style = labels[row["request_id"]].get("style")
        if style and style != "sweep":
            sent[style] += 1
            delivered[style] += row["status"] == "DELIVRD"
    assert all(delivered[s] >= 0.85 * sent[s] for s in sent)
    typed: Counter[str] = Counter()
    for row in read_jsonl(corpus / "verifications.jsonl"):
        label = labels[row["request_id"]]
        delay = parse_ts(row["ts"]) - requests[row["request_id"]]
        if label["label"] == "attack":
            assert label["style"] == "self_verify"
            assert delay <= 1_200
            typed["self_verify"] += 1
        else:
            assert 5_000 <= delay <= 60_000
    assert typed["self_verify"] > 0


def test_the_sweep_hits_unallocated_numbers_in_sequence(corpus: Path) -> None:
    labels = read_jsonl(corpus / "labels.jsonl")
    sweep_ids = {label["id"] for label in labels if label.get("style") == "sweep"}
    numbers = [int(r["to"]) for r in read_jsonl(corpus / "requests.jsonl")
               if r["id"] in sweep_ids]
    steps = [b - a for a, b in pairwise(numbers)]
    assert all(step in (1, 2) for step in steps)
    failed = [r for r in read_jsonl(corpus / "receipts.jsonl")
              if r["request_id"] in sweep_ids and r["status"] != "DELIVRD"]
    assert len(failed) >= 0.3 * len(sweep_ids)


def test_legit_traffic_follows_local_daily_curves_and_converts_by_country(corpus: Path) -> None:
    requests = read_jsonl(corpus / "requests.jsonl")
    labels = read_jsonl(corpus / "labels.jsonl")
    typed = {v["request_id"] for v in read_jsonl(corpus / "verifications.jsonl")}
    by_hour: Counter[tuple[str, int]] = Counter()
    sent: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    for req, label in zip(requests, labels, strict=True):
        if label["label"] != "legit" or "trap" in label:
            continue
        hour = datetime.fromisoformat(req["ts"]).hour
        by_hour[label["country"], hour] += 1
        if req["use_case"] == "login":
            sent[label["country"]] += 1
            converted[label["country"]] += req["id"] in typed
    # Night is quiet in local time: 03:00 in London, 03:00 in Jakarta is 20:00 UTC.
    assert by_hour["GB", 3] * 3 < by_hour["GB", 12]
    assert by_hour["ID", 20] * 3 < by_hour["ID", 5]
    assert converted["GB"] / sent["GB"] > converted["NG"] / sent["NG"] + 0.05


def test_the_command_line_writes_the_files_and_refuses_a_bad_scale(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pumping.corpus import main

    assert main(["--seed", "3", "--days", "3", "--scale", "0.01", "--out", str(tmp_path)]) == 0
    assert all((tmp_path / name).stat().st_size > 0 for name in FILES)
    assert "burst" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--seed", "3", "--scale", "0", "--out", str(tmp_path)])
