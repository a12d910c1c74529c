"""The network of a number: the operator's numbering plan and number portability.

Theory of operation
-------------------
Two tables, each imported whole from CSV (:func:`parse_plan`,
:func:`parse_ported`; formats in ``docs/numbers.md``):

- the **numbering plan**: number-range prefixes (E.164 digits) -> the network
  the range is assigned to (MCC/MNC, ITU-T E.212, and a name);
- **number portability**: single numbers that moved to another network -> its
  MCC/MNC.

A number's network is its ported network if it has one, else the network of
the longest plan prefix it starts with (:meth:`NumberIndex.network_of`). With
a plan loaded, a number no prefix covers (and that is not ported) is
*unassigned*.

Both indexes are immutable sorted ``array``s searched with ``bisect``: a
``dict`` of a million ported numbers costs some 150 MB, these arrays 10
octets a number. E.164 numbers never begin with 0, so a digit string's
integer value identifies it. The plan is flattened when it is built: a prefix
of length L covers an interval of the 15-digit space (a number padded with
zeros to 15 digits); the nested intervals are cut into disjoint segments,
each owned by the deepest prefix covering it, so a lookup is one bisect. One
case needs more: a number shorter than its segment's owner ("4917" pads like
"49170" but does not start with it) walks up the owner's parents (the next
shorter prefixes that cover it) to the first no longer than the number.

Tables are built once, where they are imported (``herald numbers``), and
stored in that built form (:meth:`NumberingPlan.to_bytes`); a running herald
loads them with ``from_bytes``, which copies arrays and checks their shape
(milliseconds for a million numbers), so a reload never rebuilds an index.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_E164_DIGITS",
    "MAX_NETWORKS",
    "MAX_NETWORK_NAME",
    "MAX_PLAN_PREFIXES",
    "MAX_PORTED_NUMBERS",
    "MAX_REPORTED_PROBLEMS",
    "PLAN_COLUMNS",
    "PORTED_COLUMNS",
    "LineProblem",
    "Network",
    "NumberIndex",
    "NumberingPlan",
    "PortedNumbers",
    "Resolution",
    "TableFileError",
    "parse_plan",
    "parse_ported",
    "plan_csv",
    "ported_csv",
]

#: ITU-T E.164 §6.1: at most 15 digits including the country code.
MAX_E164_DIGITS: Final = 15
#: Networks a table may name: indexes are stored as 16-bit integers (the world
#: has about 2,000 MCC/MNC pairs).
MAX_NETWORKS: Final = 65_535
#: Characters of a network's name.
MAX_NETWORK_NAME: Final = 64
#: Prefixes a plan may have: the world's number ranges at their finest are a
#: few hundred thousand; more is a mistaken file, not a plan (10 MB in memory).
MAX_PLAN_PREFIXES: Final = 1_000_000
#: Ported numbers a table may have: 10 octets each in every herald process
#: (200 MB at this bound).
MAX_PORTED_NUMBERS: Final = 20_000_000
#: Problems a refused file's error lists (it counts them all).
MAX_REPORTED_PROBLEMS: Final = 20
#: The CSV columns (header row), in the order export writes them.
PLAN_COLUMNS: Final = ("prefix", "mcc", "mnc", "network")
PORTED_COLUMNS: Final = ("number", "mcc", "mnc")

_POW: Final = tuple(10**k for k in range(MAX_E164_DIGITS + 1))
_NUMBER = re.compile(r"\+?([1-9][0-9]{0,14})")  # E.164: no leading 0, at most 15 digits
_MCC = re.compile(r"[0-9]{3}")
_MNC = re.compile(r"[0-9]{2,3}")  # E.212: two or three digits; "01" and "001" differ
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAGIC: Final = b"HRLDNUM1"
_PLAN_KIND: Final = b"P"
_PORTED_KIND: Final = b"N"


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Network:
    """A mobile network: MCC and MNC (ITU-T E.212, as digit strings) and a name."""

    mcc: str
    mnc: str
    name: str = ""

    def __post_init__(self) -> None:
        if not (_MCC.fullmatch(self.mcc) and _MNC.fullmatch(self.mnc)):
            raise ValueError(f"MCC/MNC {self.mcc}/{self.mnc}: 3 and 2-3 digits")
        if len(self.name) > MAX_NETWORK_NAME or _CONTROL.search(self.name):
            raise ValueError(f"network name {self.name!r}: at most {MAX_NETWORK_NAME} "
                             "characters, no control characters")  # fmt: skip

    @property
    def mccmnc(self) -> str:
        """``"26202"``: how routes and price lists name a network."""
        return self.mcc + self.mnc


@dataclass(frozen=True, slots=True)
class Resolution:
    """Everything the tables say about a number (``herald numbers lookup``)."""

    ported: Network | None  # the network it was ported to
    plan: Network | None  # the network of its plan range
    prefix: str | None  # that range's prefix

    @property
    def network(self) -> Network | None:
        """Where the number is now: ported first, then the plan."""
        return self.ported or self.plan


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why one line of a CSV file was refused (lines count from 1, the header's)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class TableFileError(ValueError):
    """A CSV file was refused: nothing of it is used. ``problems`` lists the first
    :data:`MAX_REPORTED_PROBLEMS` with their line numbers; ``count`` counts all.
    Fix the lines named and import again."""

    def __init__(self, what: str, problems: list[LineProblem], count: int) -> None:
        shown = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... and {count - len(problems)} more" if count > len(problems) else ""
        super().__init__(f"{what}: {count} problem{'s' if count != 1 else ''}\n{shown}{more}")
        self.problems = tuple(problems)
        self.count = count


def _digits_value(digits: str) -> int:
    """The integer of E.164 digits; ``ValueError`` for anything else."""
    if not (0 < len(digits) <= MAX_E164_DIGITS and digits.isascii() and digits.isdigit()):
        raise ValueError(f"not 1..{MAX_E164_DIGITS} digits: {digits!r}")
    return int(digits)


# -- serialised form ----------------------------------------------------------------
# magic, kind, uint32 little-endian header length, header (JSON: networks and
# the arrays' typecodes and lengths), then each array's items, little-endian.


def _dump(kind: bytes, networks: tuple[Network, ...], arrays: list[array[int]]) -> bytes:
    header = json.dumps({
        "networks": [[n.mcc, n.mnc, n.name] for n in networks],
        "arrays": [[a.typecode, len(a)] for a in arrays],
    }, ensure_ascii=False, separators=(",", ":")).encode()  # fmt: skip
    parts = [_MAGIC, kind, struct.pack("<I", len(header)), header]
    for a in arrays:
        if sys.byteorder != "little":
            a = array(a.typecode, a)
            a.byteswap()
        parts.append(a.tobytes())
    return b"".join(parts)


def _load(data: bytes, kind: bytes, typecodes: str) -> tuple[tuple[Network, ...], list[array[int]]]:
    """The networks and arrays of :func:`_dump`'s output; ``ValueError`` if it is not that."""
    start = len(_MAGIC) + 1 + 4
    if len(data) < start or data[: len(_MAGIC) + 1] != _MAGIC + kind:
        raise ValueError("not a herald number table of this kind (or of another version)")
    (size,) = struct.unpack_from("<I", data, start - 4)
    try:
        header = json.loads(data[start : start + size])
        networks = tuple(Network(*n) for n in header["networks"])
        shapes = [(str(code), int(count)) for code, count in header["arrays"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"a number table's header is damaged: {exc}") from None
    if "".join(code for code, _ in shapes) != typecodes:
        raise ValueError("a number table has other arrays than this herald expects")
    arrays: list[array[int]] = []
    offset = start + size
    view = memoryview(data)
    for code, count in shapes:
        a = array(code)
        end = offset + count * a.itemsize
        if count < 0 or end > len(data):
            raise ValueError("a number table is cut short")
        a.frombytes(view[offset:end])  # one copy, straight from the stored octets
        if sys.byteorder != "little":
            a.byteswap()
        arrays.append(a)
        offset = end
    if offset != len(data):
        raise ValueError("a number table has trailing bytes")
    return networks, arrays


#: Items ``from_bytes`` checks per call: ``min``/``max`` of a million items hold
#: the GIL for some 20 ms in one call, and a reload runs beside the event loop
#: (bench/number_tables.py measures the loop's longest stall during one).
_CHECK_CHUNK: Final = 65_536


def _check_indexes(values: array[int], low: int, bound: int, what: str) -> None:
    """Every item is in ``low..bound-1``; checked in chunks (see :data:`_CHECK_CHUNK`)."""
    for at in range(0, len(values), _CHECK_CHUNK):
        chunk = values[at : at + _CHECK_CHUNK]
        if not low <= min(chunk) <= max(chunk) < bound:
            raise ValueError(f"a number table's {what} point outside it")


# -- the numbering plan ------------------------------------------------------------


class NumberingPlan:
    """Prefixes -> networks, longest prefix wins. Build with :meth:`build` or
    :func:`parse_plan`; store with :meth:`to_bytes`, load with :meth:`from_bytes`."""

    __slots__ = ("_bounds", "_length", "_network", "_owner", "_parent", "_prefix", "networks")

    def __init__(
        self,
        networks: tuple[Network, ...],
        prefix: array[int],  # 'Q': each prefix's value, in lexicographic order
        length: array[int],  # 'B': its digits
        network: array[int],  # 'H': its network (index into networks)
        parent: array[int],  # 'i': the longest shorter prefix covering it, or -1
        bounds: array[int],  # 'Q': segment starts in the padded 15-digit space
        owner: array[int],  # 'i': each segment's deepest prefix, or -1
    ) -> None:
        self.networks = networks
        self._prefix, self._length, self._network, self._parent = prefix, length, network, parent
        self._bounds, self._owner = bounds, owner

    @classmethod
    def build(cls, entries: Iterable[tuple[str, Network]]) -> NumberingPlan:
        """The plan of (prefix digits, network) pairs. Raises ``ValueError`` for a
        prefix that is not 1..15 digits, begins with 0 or comes twice, and for
        more than :data:`MAX_NETWORKS` networks."""
        ids: dict[Network, int] = {}
        rows: list[tuple[int, int, int, int]] = []  # padded start, length, value, network
        for prefix, net in entries:
            value = _digits_value(prefix)
            if prefix[0] == "0":
                raise ValueError(f"prefix {prefix!r} begins with 0 (no E.164 number does)")
            net_id = ids.setdefault(net, len(ids))
            if net_id >= MAX_NETWORKS:
                raise ValueError(f"more than {MAX_NETWORKS} networks")
            size = len(prefix)
            rows.append((value * _POW[MAX_E164_DIGITS - size], size, value, net_id))
        rows.sort()  # lexicographic order of the prefixes; a prefix before those it covers
        for a, b in itertools.pairwise(rows):
            if a[:2] == b[:2]:
                raise ValueError(f"prefix {a[2]} is given twice")
        return cls._flatten(tuple(ids), rows)

    @classmethod
    def _flatten(
        cls, networks: tuple[Network, ...], rows: list[tuple[int, int, int, int]]
    ) -> NumberingPlan:
        parent = array("i", bytes(4 * len(rows)))
        bounds, owner = array("Q", [0]), array("i", [-1])

        def cut(at: int, who: int) -> None:  # from ``at`` on, ``who`` owns the space
            if bounds[-1] == at:
                owner[-1] = who
            elif owner[-1] != who:
                bounds.append(at)
                owner.append(who)

        open_: list[int] = []  # the prefixes covering the sweep's position, outermost first
        ends = [start + _POW[MAX_E164_DIGITS - size] for start, size, _, _ in rows]
        for k, (start, _, _, _) in enumerate(rows):
            while open_ and ends[open_[-1]] <= start:
                cut(ends[open_.pop()], open_[-1] if open_ else -1)
            parent[k] = open_[-1] if open_ else -1
            open_.append(k)
            cut(start, k)
        while open_:
            cut(ends[open_.pop()], open_[-1] if open_ else -1)
        return cls(
            networks, array("Q", (r[2] for r in rows)), array("B", (r[1] for r in rows)),
            array("H", (r[3] for r in rows)), parent, bounds, owner,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._prefix)

    def find(self, digits: str) -> int:
        """The index of the longest prefix of ``digits`` (E.164 digits, as
        :func:`normalize_destination` returns them), or -1. Raises ``ValueError``
        for input that is not 1..15 digits."""
        value = _digits_value(digits)
        return -1 if digits[0] == "0" else self._find(value, len(digits))

    def _find(self, value: int, size: int) -> int:
        at = self._owner[bisect_right(self._bounds, value * _POW[MAX_E164_DIGITS - size]) - 1]
        length, parent = self._length, self._parent
        while at >= 0 and length[at] > size:
            at = parent[at]
        return at

    def entry(self, index: int) -> tuple[str, Network]:
        """The prefix and network of :meth:`find`'s answer."""
        return str(self._prefix[index]), self.networks[self._network[index]]

    def entries(self) -> Iterator[tuple[str, Network]]:
        """Every (prefix, network), in the prefixes' lexicographic order."""
        networks = self.networks
        for value, net in zip(self._prefix, self._network, strict=True):
            yield str(value), networks[net]

    def to_bytes(self) -> bytes:
        arrays = [self._prefix, self._length, self._network, self._parent, self._bounds,
                  self._owner]  # fmt: skip
        return _dump(_PLAN_KIND, self.networks, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> NumberingPlan:
        """The plan :meth:`to_bytes` wrote. Raises ``ValueError`` for anything else."""
        networks, arrays = _load(data, _PLAN_KIND, "QBHiQi")
        prefix, length, network, parent, bounds, owner = arrays
        if not len(prefix) == len(length) == len(network) == len(parent):
            raise ValueError("a numbering plan's arrays differ in length")
        if len(bounds) != len(owner) or not bounds or bounds[0] != 0:
            raise ValueError("a numbering plan's segments are damaged")
        _check_indexes(network, 0, len(networks), "networks")
        _check_indexes(parent, -1, len(prefix), "parents")
        _check_indexes(owner, -1, len(prefix), "segments")
        return cls(networks, prefix, length, network, parent, bounds, owner)


# -- ported numbers ----------------------------------------------------------------


class PortedNumbers:
    """Single numbers -> the network they were ported to (MCC/MNC; the name is
    the plan's). Build with :meth:`build` or :func:`parse_ported`."""

    __slots__ = ("_network", "_numbers", "networks")

    def __init__(
        self, networks: tuple[Network, ...], numbers: array[int], network: array[int]
    ) -> None:
        self.networks = networks  # names empty: the plan names networks
        self._numbers = numbers  # 'Q', ascending, each once
        self._network = network  # 'H', index into networks

    @classmethod
    def build(cls, entries: Iterable[tuple[str, str, str]]) -> PortedNumbers:
        """The table of (number digits, MCC, MNC) triples. Raises ``ValueError``
        for a bad number or MCC/MNC, a number given twice, or too many networks."""
        ids: dict[tuple[str, str], int] = {}
        numbers, network = array("Q"), array("H")
        for number, mcc, mnc in entries:
            if number[:1] == "0":
                raise ValueError(f"number {number!r} begins with 0 (no E.164 number does)")
            numbers.append(_digits_value(number))
            network.append(_network_id(ids, mcc, mnc))
        table, duplicates, _ = cls._sorted(ids, numbers, network)
        if duplicates:
            raise ValueError(f"number {numbers[duplicates[0][0]]} is given twice")
        return table

    @classmethod
    def _sorted(
        cls, ids: dict[tuple[str, str], int], numbers: array[int], network: array[int]
    ) -> tuple[PortedNumbers, list[tuple[int, int]], int]:
        """The table; the first :data:`MAX_REPORTED_PROBLEMS` duplicates as (earlier,
        later) positions in the input, and how many there are."""
        order = sorted(range(len(numbers)), key=numbers.__getitem__)  # stable: earlier first
        ordered = array("Q", map(numbers.__getitem__, order))
        duplicates: list[tuple[int, int]] = []
        count = 0
        for k in range(1, len(ordered)):
            if ordered[k] == ordered[k - 1]:
                count += 1
                if len(duplicates) < MAX_REPORTED_PROBLEMS:
                    duplicates.append((order[k - 1], order[k]))
        nets = tuple(Network(mcc, mnc) for mcc, mnc in ids)
        return cls(nets, ordered, array("H", map(network.__getitem__, order))), duplicates, count

    def __len__(self) -> int:
        return len(self._numbers)

    def find(self, digits: str) -> int:
        """The index (into :attr:`networks`) of the network ``digits`` was ported
        to, or -1. Raises ``ValueError`` for input that is not 1..15 digits."""
        value = _digits_value(digits)
        return -1 if digits[0] == "0" else self._find(value)

    def _find(self, value: int) -> int:
        numbers = self._numbers
        at = bisect_left(numbers, value)
        if at < len(numbers) and numbers[at] == value:
            return int(self._network[at])
        return -1

    def entries(self) -> Iterator[tuple[str, Network]]:
        """Every (number, network), in ascending order of the numbers."""
        networks = self.networks
        for value, net in zip(self._numbers, self._network, strict=True):
            yield str(value), networks[net]

    def to_bytes(self) -> bytes:
        return _dump(_PORTED_KIND, self.networks, [self._numbers, self._network])

    @classmethod
    def from_bytes(cls, data: bytes) -> PortedNumbers:
        """The table :meth:`to_bytes` wrote. Raises ``ValueError`` for anything else."""
        networks, (numbers, network) = _load(data, _PORTED_KIND, "QH")
        if len(numbers) != len(network):
            raise ValueError("a ported-number table's arrays differ in length")
        _check_indexes(network, 0, len(networks), "networks")
        return cls(networks, numbers, network)


def _network_id(ids: dict[tuple[str, str], int], mcc: str, mnc: str) -> int:
    key = (mcc, mnc)
    found = ids.get(key)
    if found is None:
        Network(mcc, mnc)  # checks the codes
        if len(ids) >= MAX_NETWORKS:
            raise ValueError(f"more than {MAX_NETWORKS} networks")
        found = ids[key] = len(ids)
    return found


# -- both --------------------------------------------------------------------------


class NumberIndex:
    """The plan and the ported numbers together (either may be absent)."""

    __slots__ = ("_ported_networks", "plan", "ported")

    def __init__(
        self, plan: NumberingPlan | None = None, ported: PortedNumbers | None = None
    ) -> None:
        self.plan = plan
        self.ported = ported
        names: dict[tuple[str, str], str] = {}
        for net in plan.networks if plan is not None else ():
            names.setdefault((net.mcc, net.mnc), net.name)
        self._ported_networks = tuple(
            Network(n.mcc, n.mnc, names.get((n.mcc, n.mnc), ""))
            for n in (ported.networks if ported is not None else ())
        )

    @property
    def has_plan(self) -> bool:
        """Whether a plan is loaded: then a number it does not cover is unassigned."""
        return self.plan is not None

    def network_of(self, digits: str) -> Network | None:
        """The network ``digits`` (E.164 digits) belongs to now, or ``None``
        (neither ported nor in a plan range). Raises ``ValueError`` for input
        that is not 1..15 digits."""
        value = _digits_value(digits)
        if digits[0] == "0":
            return None
        ported, plan = self.ported, self.plan
        if ported is not None:
            found = ported._find(value)
            if found >= 0:
                return self._ported_networks[found]
        if plan is not None:
            at = plan._find(value, len(digits))
            if at >= 0:
                return plan.networks[plan._network[at]]
        return None

    def resolve(self, digits: str) -> Resolution:
        """What each table says about ``digits``."""
        ported = prefix = plan = None
        if self.ported is not None:
            found = self.ported.find(digits)
            ported = self._ported_networks[found] if found >= 0 else None
        if self.plan is not None:
            at = self.plan.find(digits)
            if at >= 0:
                prefix, plan = self.plan.entry(at)
        return Resolution(ported, plan, prefix)


EMPTY_INDEX: Final = NumberIndex()


# -- CSV ---------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.shown: list[LineProblem] = []
        self.count = 0

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_REPORTED_PROBLEMS:
            self.shown.append(LineProblem(line, message))


def _csv_rows(
    lines: Iterable[str], columns: tuple[str, ...], what: str, limit: int, problems: _Problems
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields in ``columns`` order) of each data row; the header
    row names the columns (in any order; other columns are ignored). Blank
    lines and lines whose first field begins with ``#`` are skipped."""
    reader = csv.reader(_without_bom(lines), strict=True)
    where: list[int] | None = None
    width = rows = 0
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip()[:1] == "#":
                continue
            if where is None:
                names = [name.strip().lower() for name in row]
                missing = [c for c in columns if c not in names]
                twice = sorted({n for n in names if n and names.count(n) > 1})
                if missing or twice:
                    problems.add(line, f"the header row must name the columns {', '.join(columns)}"
                                 + (f"; missing: {', '.join(missing)}" if missing else "")
                                 + (f"; given twice: {', '.join(twice)}" if twice else ""))
                    return
                where, width = [names.index(c) for c in columns], len(names)
                continue
            if len(row) != width:
                problems.add(line, f"has {len(row)} fields; the header has {width}")
                continue
            rows += 1
            if rows > limit:
                problems.add(line, f"{what} has more than {limit:,} entries")
                return
            yield line, [row[k].strip() for k in where]
    except csv.Error as exc:
        problems.add(reader.line_num, f"is not CSV: {exc}")
        return
    if where is None:
        problems.add(0, f"{what} has no header row ({','.join(columns)})")
    elif not rows:
        problems.add(0, f"{what} has no entries")


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    first = True
    for text in lines:
        yield text.removeprefix("\ufeff") if first else text
        first = False


def _number_field(value: str, name: str) -> str:
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise ValueError(f"{name} {value!r} is not an E.164 number: 1..15 digits, no leading 0,"
                         " an optional '+'")  # fmt: skip
    return match.group(1)


def _codes(mcc: str, mnc: str) -> None:
    if not _MCC.fullmatch(mcc):
        raise ValueError(f"mcc {mcc!r} is not 3 digits")
    if not _MNC.fullmatch(mnc):
        raise ValueError(f"mnc {mnc!r} is not 2 or 3 digits")


def parse_plan(lines: Iterable[str]) -> NumberingPlan:
    """A numbering plan from CSV text (``lines`` as a file opened with
    ``newline=""`` gives them). Columns: ``prefix,mcc,mnc,network``.

    Raises :class:`TableFileError` naming each refused line: a prefix that is
    not 1..15 digits (an optional ``+``; no leading 0) or is given twice, an
    MCC that is not 3 digits, an MNC that is not 2 or 3, an empty or too long
    network name, a row with another number of fields than the header, no
    header, no entries, more than :data:`MAX_PLAN_PREFIXES` entries.
    """
    problems = _Problems()
    seen: dict[str, int] = {}
    entries: list[tuple[str, Network]] = []
    networks: dict[Network, Network] = {}  # one object per network
    for line, (prefix, mcc, mnc, name) in _csv_rows(
        lines, PLAN_COLUMNS, "the plan", MAX_PLAN_PREFIXES, problems
    ):
        try:
            digits = _number_field(prefix, "prefix")
            _codes(mcc, mnc)
            if not name:
                raise ValueError("network name is empty")
            if len(name) > MAX_NETWORK_NAME or _CONTROL.search(name):
                raise ValueError(f"network name has more than {MAX_NETWORK_NAME} characters"
                                 " or a control character")  # fmt: skip
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        earlier = seen.setdefault(digits, line)
        if earlier != line:
            problems.add(line, f"prefix {digits} is already given on line {earlier}")
            continue
        net = Network(mcc, mnc, name)
        entries.append((digits, networks.setdefault(net, net)))
    if len(networks) > MAX_NETWORKS:
        problems.add(0, f"the plan names more than {MAX_NETWORKS} networks")
    if problems.count:
        raise TableFileError("numbering plan refused", problems.shown, problems.count)
    return NumberingPlan.build(entries)


def parse_ported(lines: Iterable[str]) -> PortedNumbers:
    """A ported-number table from CSV text. Columns: ``number,mcc,mnc``.

    Raises :class:`TableFileError` naming each refused line: a number that is
    not 1..15 digits (an optional ``+``; no leading 0) or is given twice, an
    MCC that is not 3 digits, an MNC that is not 2 or 3, a row with another
    number of fields than the header, no header, no entries, more than
    :data:`MAX_PORTED_NUMBERS` entries.
    """
    problems = _Problems()
    ids: dict[tuple[str, str], int] = {}
    numbers, network, lines_of = array("Q"), array("H"), array("I")
    for line, (number, mcc, mnc) in _csv_rows(
        lines, PORTED_COLUMNS, "the ported-number table", MAX_PORTED_NUMBERS, problems
    ):
        try:
            digits = _number_field(number, "number")
            _codes(mcc, mnc)
            net = _network_id(ids, mcc, mnc)
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        numbers.append(int(digits))
        network.append(net)
        lines_of.append(line)
    table, duplicates, count = PortedNumbers._sorted(ids, numbers, network)
    for first, again in duplicates:
        problems.add(lines_of[again],
                     f"number {numbers[again]} is already given on line {lines_of[first]}")
    problems.count += count - len(duplicates)  # every duplicate, not only those listed
    if problems.count:
        raise TableFileError("ported numbers refused", problems.shown, problems.count)
    return table


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def plan_csv(plan: NumberingPlan) -> Iterator[str]:
    """The plan as CSV lines (header first) that :func:`parse_plan` reads back."""
    yield ",".join(PLAN_COLUMNS) + "\n"
    for prefix, net in plan.entries():
        yield f"{prefix},{net.mcc},{net.mnc},{_csv_field(net.name)}\n"


def ported_csv(ported: PortedNumbers) -> Iterator[str]:
    """The ported numbers as CSV lines (header first) that :func:`parse_ported` reads back."""
    yield ",".join(PORTED_COLUMNS) + "\n"
    for number, net in ported.entries():
        yield f"{number},{net.mcc},{net.mnc}\n"

