"""An account's controls and opt-out list as the admin service takes and gives them.

One set of rules for ``herald accounts set``, ``herald optouts`` and the
admin API: :func:`apply_controls` checks each entry with
:data:`herald.intake.CONTROL_ENTRY_CHECKS` (what the intake parses them
with, so a list that was stored always parses) and names every refused one
(``countries[2]``); :func:`check_numbers` does the same for the numbers of
an opt-out change. The CSV of an opt-out export is written here too, in the
form ``herald optouts import`` and the API's import read back.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from herald.admin._errors import FieldProblem, InvalidInput
from herald.intake import CONTROL_ENTRY_CHECKS, opt_out_number
from herald.store import MAX_CONTROL_ENTRIES, MAX_CONTROL_ENTRY_LENGTH, AccountControls, OptOutEntry

__all__ = [
    "CONTROLS",
    "OPT_OUT_CSV_HEADER",
    "apply_controls",
    "check_numbers",
    "describe_controls",
    "opt_out_csv",
]

#: The controls by the name the CLI (with dashes) and the API give them, and
#: the :class:`~herald.store.AccountControls` field each sets.
CONTROLS: Final = {
    "daily_quota": "daily_quota",
    "quota_unit": "quota_segments",
    "senders": "senders",
    "sender_rules": "sender_rules",
    "countries": "countries",
    "api_allow": "api_networks",
    "smpp_allow": "smpp_networks",
}
#: The opt-out export's columns; an import reads the first column of each row.
OPT_OUT_CSV_HEADER: Final = ("number", "opted_out_at", "source")
_UNITS: Final = ("messages", "segments")


def _entries(name: str, value: Any, problems: list[FieldProblem]) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(e, str) for e in value):
        problems.append(FieldProblem(name, "wrong_type", "must be a list of strings"))
        return ()
    if len(value) > MAX_CONTROL_ENTRIES:
        problems.append(FieldProblem(name, "too_long",
                                     f"has at most {MAX_CONTROL_ENTRIES} entries"))
        return ()
    check = CONTROL_ENTRY_CHECKS[CONTROLS[name]]
    out = []
    for i, raw in enumerate(value):
        entry = raw.strip()
        entry = entry.upper() if name == "countries" else entry
        where = f"{name}[{i}]"
        if not entry:
            problems.append(FieldProblem(where, "not_valid", "is empty"))
        elif len(entry) > MAX_CONTROL_ENTRY_LENGTH:
            problems.append(FieldProblem(where, "too_long",
                                         f"has at most {MAX_CONTROL_ENTRY_LENGTH} characters"))
        else:
            try:
                check(entry)
            except ValueError as exc:
                problems.append(FieldProblem(where, "not_valid", str(exc)))
            out.append(entry)
    return tuple(out)


def apply_controls(controls: AccountControls, changes: Mapping[str, Any]) -> AccountControls:
    """``controls`` with ``changes`` (names of :data:`CONTROLS`): ``daily_quota``
    an integer >= 0 or ``None`` (no quota), ``quota_unit`` ``messages`` or
    ``segments``, the others lists of entries (an empty list restricts nothing).
    Raises :class:`InvalidInput` naming every refused field and entry."""
    problems: list[FieldProblem] = []
    fields: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in CONTROLS:
            problems.append(FieldProblem(name, "unknown_field", "is not a control; they are "
                                         + ", ".join(CONTROLS)))
        elif name == "daily_quota":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                problems.append(FieldProblem(name, "wrong_type", "must be an integer or null"))
            elif value is not None and value < 0:
                problems.append(FieldProblem(name, "out_of_range",
                                             "must be >= 0 (null: no quota)"))
            else:
                fields["daily_quota"] = value
        elif name == "quota_unit":
            if value not in _UNITS:
                problems.append(FieldProblem(name, "invalid_choice",
                                             "must be 'messages' or 'segments'"))
            else:
                fields["quota_segments"] = value == "segments"
        else:
            fields[CONTROLS[name]] = _entries(name, value, problems)
    if problems:
        raise InvalidInput(problems)
    return dataclasses.replace(controls, **fields)


def describe_controls(c: AccountControls) -> dict[str, Any]:
    """The controls under the names of :data:`CONTROLS` (what the API shows)."""
    return {"daily_quota": c.daily_quota,
            "quota_unit": "segments" if c.quota_segments else "messages",
            "senders": list(c.senders), "sender_rules": list(c.sender_rules),
            "countries": list(c.countries), "api_allow": list(c.api_networks),
            "smpp_allow": list(c.smpp_networks)}  # fmt: skip


def check_numbers(given: Sequence[Any], field: str = "numbers") -> list[str]:
    """Phone numbers as an opt-out list holds them (E.164 digits; ``+``, spaces
    and punctuation are dropped). Raises :class:`InvalidInput` naming each
    entry that is not one (``numbers[2]``)."""
    numbers: list[str] = []
    problems: list[FieldProblem] = []
    for i, value in enumerate(given):
        number = opt_out_number(value) if isinstance(value, str) else None
        if number is None:
            problems.append(FieldProblem(f"{field}[{i}]", "not_valid",
                                         f"{str(value)[:32]!r} is not a phone number"))
        else:
            numbers.append(number)
    if problems:
        raise InvalidInput(problems)
    return numbers


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def opt_out_csv(entries: Iterable[OptOutEntry], *, header: bool = True) -> str:
    """An opt-out list as CSV (``number,opted_out_at,source``; numbers with ``+``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(OPT_OUT_CSV_HEADER)
    writer.writerows((f"+{e.number}", _when(e.updated_at), e.source) for e in entries)
    return out.getvalue()
