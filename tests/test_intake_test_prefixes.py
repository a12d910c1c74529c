"""An operator's test range skips the numbering-plan checks, and only it does."""

from __future__ import annotations

import pytest

from herald.intake import IntakePolicy, InvalidDestination, normalize_destination

POLICY = IntakePolicy(test_prefixes=("999",))


def test_a_test_range_number_is_accepted_as_digits() -> None:
    assert normalize_destination("+999 0123 4567", policy=POLICY) == "99901234567"
    with pytest.raises(InvalidDestination):  # the default policy refuses the same number
        normalize_destination("+99901234567")


@pytest.mark.parametrize("value", ["9991234567890123", "999abc", "+99"])
def test_the_test_range_still_needs_1_to_15_digits(value: str) -> None:
    with pytest.raises(InvalidDestination):
        normalize_destination(value, policy=POLICY)


def test_other_numbers_are_checked_as_usual() -> None:
    with pytest.raises(InvalidDestination):
        normalize_destination("+99812345678", policy=POLICY)
    assert normalize_destination("+447911123456", policy=POLICY) == "447911123456"


def test_prefixes_must_be_digits() -> None:
    with pytest.raises(ValueError, match="digits"):
        IntakePolicy(test_prefixes=("+999",))
