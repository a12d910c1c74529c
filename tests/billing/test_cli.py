"""``herald prices``, ``herald balance`` and ``herald cdr`` on a real data directory."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from herald.cli import main
from herald.ids import SortableIdGenerator
from herald.rating import parse_price_list
from herald.store import (
    NewMessage,
    PriceSide,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusUpdate,
)

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def _run(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"

    async def create() -> None:  # no credentials needed (argon2 would cost a second)
        store = SQLiteStore.open(SQLiteConfig(data_dir=path))
        for name in ("shop", "other"):
            await store.create_account(name, T0, rate_limit=100.0, bind_limit=1)
        await store.aclose()

    asyncio.run(create())
    return path


def test_price_lists_import_show_list_and_remove(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sell = tmp_path / "sell.csv"
    sell.write_text("destination,price,comment\n# Germany\n26201,0.040,Telekom\n"
                    "+49,0.05,\ndefault,0.0900,\n")  # fmt: skip
    code, out, _ = _run(capsys, data, "prices", "import", "--account", "shop", str(sell))
    assert code == 0 and "3 entries" in out and "balance is 0.000000" in out
    code, out, _ = _run(capsys, data, "prices", "show", "--account", "shop")
    assert out == "destination,price\n26201,0.04\n+49,0.05\ndefault,0.09\n"
    shown = tmp_path / "shown.csv"
    shown.write_text(out)
    assert _run(capsys, data, "prices", "import", "--connector", "sim", str(shown))[0] == 0
    code, out, _ = _run(capsys, data, "prices", "list")
    assert [line.split()[:3] for line in out.splitlines()] == [
        ["kind", "owner", "entries"], ["account", "shop", "3"], ["connector", "sim", "3"]]
    assert _run(capsys, data, "prices", "remove", "--account", "shop")[0] == 0
    code, _, err = _run(capsys, data, "prices", "show", "--account", "shop")
    assert code == 1 and "has no price list" in err


def test_a_bad_price_file_is_refused_line_by_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"destination,price\n+49,0.05\n+49,0.06\n4917,1\nde,0.1\n+44,\xff\n")
    code, _, err = _run(capsys, data, "prices", "import", "--account", "shop", str(bad))
    assert code == 1
    assert "line 6: is not UTF-8" in err
    bad.write_text("destination,price\n+49,0.05\n+49,0.06\n4917,1\n")
    code, _, err = _run(capsys, data, "prices", "import", "--account", "shop", str(bad))
    assert code == 1 and "2 problems" in err
    assert "line 3: destination +49 is already given on line 2" in err
    assert "line 4: destination '4917' is not an MCC/MNC" in err
    code, _, err = _run(capsys, data, "prices", "import", "--account", "nobody", str(bad))
    assert code == 1 and "no account named 'nobody'" in err


def test_balances(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, data, "balance", "top-up", "shop", "12.5")
    assert code == 0 and "balance:        12.500000" in out and "not charged" in out
    code, out, _ = _run(capsys, data, "balance", "set", "shop", "--credit-limit", "2.25",
                        "--refund-policy", "rejected")  # fmt: skip
    assert "available:      14.750000" in out and "refund policy:  rejected" in out
    code, out, _ = _run(capsys, data, "balance", "top-up", "shop", "-0.5")
    assert "balance:        12.000000" in out
    for bad in (("top-up", "shop", "0.0000001"), ("top-up", "shop", "1e3"),
                ("set", "shop", "--credit-limit", "-1")):  # fmt: skip
        code, _, err = _run(capsys, data, "balance", *bad)
        assert code == 1 and err.startswith("herald balance: "), bad
    assert _run(capsys, data, "balance", "set", "shop")[0] == 2


def test_cdr_export_and_margin(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def charge() -> list[str]:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data))
        try:
            shop = await store.get_account_by_name("shop")
            sell = parse_price_list(["destination,price\n", "+49,0.05\n", "default,0.1\n"])
            await store.put_price_list(sell.stored(PriceSide.SELL, str(shop.id), T0))
            buy = parse_price_list(["destination,price\n", "+49,0.02\n"])
            await store.put_price_list(buy.stored(PriceSide.BUY, "sim", T0))
            await store.adjust_balance(shop.id, add=10**6)
            ids = SortableIdGenerator()
            made = []
            for n, to in enumerate(("491701234567", "491701234568", "447911123456")):
                m = NewMessage(id=ids.new_id(T0 + n), account_id=shop.id, source=Source.HTTP,
                               to=to, sender="SHOP", body=b"hi", encoding="gsm7",
                               data_coding=0, segments=1, accepted_at=T0 + n,
                               expires_at=T0 + 3600)  # fmt: skip
                rating = sell.rate(to, None, 1)
                assert rating is not None
                await store.accept([m], charges=[rating.charge()])
                made.append(m.id)
            await store.claim(10, T0 + 5, 30)
            await store.record_segments([SegmentRecord(made[0], 0, "sim", "A", "a", T0 + 6)])
            await store.record_segments([SegmentRecord(made[2], 0, "sim", "B", "b", T0 + 6)])
            await store.update_statuses([StatusUpdate(made[1], Status.FAILED, T0 + 6)])
            return made
        finally:
            await store.aclose()

    made = asyncio.run(charge())
    code, out, _ = _run(capsys, data, "cdr", "export", "--from", "2027-01-15",
                        "--to", "2027-01-16T00:00:00Z")  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["message_id"], r["account"], r["country"], r["priced_by"], r["sell"],
             r["connector"], r["buy"], r["status"]) for r in rows] == [
        (made[0], "shop", "+49", "+49", "0.050000", "sim", "0.020000", "sent"),
        (made[1], "shop", "+49", "+49", "0.050000", "", "", "failed"),
        (made[2], "shop", "+44", "default", "0.100000", "sim", "", "sent"),
    ]  # fmt: skip
    assert rows[0]["accepted_at"] == "2027-01-15T08:00:00.000Z"
    code, out, _ = _run(capsys, data, "cdr", "export", "--from", str(T0 + 1),
                        "--to", str(T0 + 2), "--account", "other")  # fmt: skip
    assert out.splitlines()[1:] == []
    code, out, _ = _run(capsys, data, "cdr", "margin", "--from", "2027-01-15",
                        "--to", "2027-01-16", "--by", "country")  # fmt: skip
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["+44", "1", "0.100000", "0.000000", "0.100000", "100.0", "1"],
        ["+49", "2", "0.100000", "0.020000", "0.080000", "80.0", "0"],
        ["total", "3", "0.200000", "0.020000", "0.180000", "90.0", "1"],
    ]
    code, out, _ = _run(capsys, data, "cdr", "margin", "--from", "2027-01-15",
                        "--to", "2027-01-16", "--by", "connector")  # fmt: skip
    assert [line.split()[:2] for line in out.splitlines()[1:3]] == [
        ["(not", "sent)"], ["sim", "2"]]
    with pytest.raises(SystemExit):
        main(["cdr", "export", "--from", "yesterday", "--to", "2027-01-16"])
    assert "not YYYY-MM-DD" in capsys.readouterr().err


def test_every_change_is_in_the_audit_log(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    sell = tmp_path / "sell.csv"
    sell.write_text("destination,price\n+49,0.05\n")
    for argv in (("prices", "import", "--account", "shop", str(sell)),
                 ("prices", "import", "--connector", "sim", str(sell)),
                 ("balance", "top-up", "shop", "2.5"),
                 ("balance", "set", "shop", "--credit-limit", "1", "--refund-policy",
                  "undelivered"),
                 ("balance", "set", "shop", "--credit-limit", "1.0"),  # no change: no entry
                 ("prices", "remove", "--connector", "sim")):  # fmt: skip
        assert _run(capsys, data, *argv)[0] == 0, argv
    code, out, _ = _run(capsys, data, "admin", "audit", "--json")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [(e["action"], e["target"], e["changes"]) for e in entries] == [
        ("prices.import", "account:shop", {"list": "sell", "entries": 1, "generation": 1}),
        ("prices.import", "connector:sim", {"list": "buy", "entries": 1, "generation": 2}),
        ("balance.top_up", "account:shop", {"add": "2.500000", "balance": "2.500000"}),
        ("balance.set", "account:shop", {"credit_limit": "1.000000",
                                         "refund_policy": "undelivered"}),
        ("prices.remove", "connector:sim", {"list": "buy", "generation": 3}),
    ]  # fmt: skip
    assert all(e["actor"].startswith("cli:") for e in entries)
