"""The crash run's duplicate accounting, on hand-made records (the harness must be right
for the crash test to mean anything)."""

from __future__ import annotations

from herald.sim import SubmitRecord

from .verify import duplicates


def _record(at: float, content: str) -> SubmitRecord:
    return SubmitRecord(at, "herald", "submit_sm", "447911100000", 0, 0, content, "id", 0)


def test_each_extra_copy_goes_to_the_first_kill_after_the_copy_before_it() -> None:
    records = [
        _record(10.0, "a"), _record(30.0, "a"),  # in flight at the kill at 12: kill 0
        _record(12.2, "b"), _record(32.0, "b"),  # read by the sim just after that kill: kill 0
        _record(11.0, "c"), _record(33.0, "c"), _record(53.0, "c"),  # two kills, two extras
        _record(5.0, "d"), _record(6.0, "d"),  # no kill between: herald's own resend
        _record(7.0, "e"),  # sent once
        _record(8.0, "not ours"), _record(9.0, "not ours"),
    ]
    ours = {c: c for c in "abcde"}
    found = duplicates(records, ours, [12.0, 40.0])
    assert found.total == 5
    assert found.per_kill == [3, 1]
    assert found.without_kill == 1
    assert found.oldest == [2.0, 7.0]  # a: 12 - 10; c's second extra: 40 - 33
