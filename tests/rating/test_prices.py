"""Price lists: the most specific entry wins, charges round half to even to
micro-units, CSV files are refused line by line (docs/billing.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from herald.rating import (
    KeyKind,
    PriceKey,
    PriceList,
    TableFileError,
    charge,
    country_code,
    from_micros,
    parse_amount,
    parse_price_list,
    price_list_csv,
    to_micros,
)

LIST = parse_price_list([
    "destination,price\n",
    "# Germany: Telekom cheaper than the rest of the country\n",
    "26201,0.04\n",
    "+49,0.05\n",
    "+1,0.0075\n",
    "default,0.09\n",
])  # fmt: skip


@pytest.mark.parametrize(
    ("to", "network", "key", "per_segment"),
    [
        ("491701234567", "26201", "26201", "0.04"),  # network beats country
        ("491701234567", "26202", "+49", "0.05"),  # unpriced network: its country
        ("491701234567", None, "+49", "0.05"),  # no number tables: the country
        ("14155552671", None, "+1", "0.0075"),
        ("447911123456", "23410", "default", "0.09"),  # neither: the default
        ("420601123456", None, "default", "0.09"),  # +420, not +42 or +4
    ],
)
def test_the_most_specific_entry_prices_a_message(
    to: str, network: str | None, key: str, per_segment: str
) -> None:
    rating = LIST.rate(to, network, 1)
    assert rating is not None
    assert (str(rating.key), rating.per_segment) == (key, Decimal(per_segment))


def test_a_list_without_a_default_prices_only_its_entries() -> None:
    prices = PriceList.of([(PriceKey(KeyKind.COUNTRY, "49"), Decimal("0.05"))])
    assert prices.rate("447911123456", None, 1) is None
    assert prices.rate("491701234567", None, 1) is not None
    assert PriceList().rate("491701234567", "26201", 1) is None


@pytest.mark.parametrize(
    ("per_segment", "segments", "amount", "micros"),
    [
        ("0.05", 1, "0.050000", 50_000),
        ("0.05", 3, "0.150000", 150_000),  # multi-segment: price x parts
        ("0.0075", 255, "1.912500", 1_912_500),  # the most parts a message has
        ("0.0000005", 1, "0.000000", 0),  # half a micro-unit: to the even 0
        ("0.0000015", 1, "0.000002", 2),  # 1.5 micro-units: to the even 2
        ("0.0000025", 1, "0.000002", 2),  # 2.5 micro-units: to the even 2
        ("0.0000025", 3, "0.000008", 8),  # 7.5 rounds after multiplying, to 8
        ("0.00000049", 7, "0.000003", 3),  # 3.43 micro-units
        ("0.1234567891", 2, "0.246914", 246_914),  # 0.2469135782
        ("0", 10, "0.000000", 0),  # free
        ("1000000", 255, "255000000.000000", 255_000_000_000_000),  # the largest charge
    ],
)
def test_a_charge_is_price_times_segments_rounded_half_even(
    per_segment: str, segments: int, amount: str, micros: int
) -> None:
    got = charge(Decimal(per_segment), segments)
    assert str(got) == amount
    assert to_micros(got) == micros
    assert from_micros(micros) == got
    rating = PriceList(default=Decimal(per_segment)).rate("491701234567", None, segments)
    assert rating is not None and (rating.amount, rating.micros) == (got, micros)


def test_rounding_ignores_the_threads_decimal_context() -> None:
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec, ctx.rounding = 3, decimal.ROUND_UP
        assert charge(Decimal("0.1234567891"), 2) == Decimal("0.246914")


def test_an_amount_with_more_than_six_places_is_not_micro_units() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        to_micros(Decimal("0.0000001"))


@pytest.mark.parametrize(
    ("digits", "code"),
    [
        ("14155552671", "1"), ("79161234567", "7"), ("491701234567", "49"),
        ("201001234567", "20"), ("212612345678", "212"), ("420601123456", "420"),
        ("351912345678", "351"), ("861381234567", "86"), ("971501234567", "971"),
    ],
)  # fmt: skip
def test_a_numbers_country_code(digits: str, code: str) -> None:
    assert country_code(digits) == code


@pytest.mark.parametrize(
    ("text", "value"),
    [("10", "10"), ("-5.5", "-5.5"), ("0.000001", "0.000001"), (" 7 ", "7")],
)
def test_amounts(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["0.0000001", "1e3", "NaN", "", "1,5", "1000000000000"])
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_a_bad_file_is_refused_naming_every_line() -> None:
    with pytest.raises(TableFileError) as info:
        parse_price_list([
            "destination,price,comment\n",
            "26201,0.04,fine\n",
            "2620,0.04,too short\n",
            "+49,-0.05,negative\n",
            "+49,0.05,fine\n",
            "26201,0.03,again\n",
            "DEFAULT,1e-2,exponent\n",
            "default,0.12345678901,eleven places\n",
            "+0,0.1,no country code 0\n",
            "default,2000000,too dear\n",
            "+1,0.1\n",
        ])  # fmt: skip
    problems = [(p.line, p.message) for p in info.value.problems]
    assert [line for line, _ in problems] == [3, 4, 6, 7, 8, 9, 10, 11]
    assert "destination '2620' is not an MCC/MNC" in problems[0][1]
    assert "price '-0.05' is not a plain decimal" in problems[1][1]
    assert "destination 26201 is already given on line 2" in problems[2][1]
    assert "more than 10 decimal places" in problems[4][1]
    assert "more than 1000000" in problems[6][1]
    assert "has 2 fields; the header has 3" in problems[7][1]
    assert info.value.count == 8


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "has no header row"),
        (["destination,price\n"], "has no entries"),
        (["prefix,price\n", "49,1\n"], "missing: destination"),
    ],
)
def test_a_file_without_entries_is_refused(lines: list[str], message: str) -> None:
    with pytest.raises(TableFileError, match=message):
        parse_price_list(lines)


def test_a_list_survives_its_csv_form() -> None:
    text = list(price_list_csv(LIST))
    assert text == [
        "destination,price\n", "26201,0.04\n", "+1,0.0075\n", "+49,0.05\n", "default,0.09\n",
    ]  # fmt: skip
    assert parse_price_list(text) == LIST
    assert len(LIST) == 4


def test_a_list_survives_its_stored_form() -> None:
    from herald.rating import MAX_PRICE_PLACES, from_price_units, to_price_units
    from herald.store import PRICE_SCALE, PriceSide

    assert 10**MAX_PRICE_PLACES == PRICE_SCALE
    stored = LIST.stored(PriceSide.SELL, "7", 1.0)
    assert [(e.kind, e.key, e.price) for e in stored.entries][:2] == [
        (KeyKind.NETWORK, "26201", 400_000_000), (KeyKind.COUNTRY, "1", 75_000_000),
    ]  # fmt: skip
    assert PriceList.from_stored(stored) == LIST
    assert list(price_list_csv(PriceList.from_stored(stored))) == list(price_list_csv(LIST))
    for text in ("100", "0", "0.0000000001", "1000000", "12.5"):
        assert f"{from_price_units(to_price_units(Decimal(text))):f}" == text


@pytest.mark.parametrize("name", ["prices-sell.csv", "buy-operator-a.csv", "buy-operator-b.csv"])
def test_the_example_price_lists_load(name: str) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / name
    with path.open(newline="", encoding="utf-8") as fh:
        prices = parse_price_list(fh)
    assert prices.default is not None and len(prices) >= 6
    rating = prices.rate("491701234567", "26201", 2)
    assert rating is not None and rating.amount == charge(rating.per_segment, 2)
