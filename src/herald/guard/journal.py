"""The guard's audit log, read for the admin API and the console (docs/guard.md).

Theory of operation
-------------------
The guard (``herald guard scan|proxy --audit FILE``) appends its blocks,
alerts and policy changes to a hash-chained log (:mod:`herald.guard.audit`);
``herald serve`` reads that file, read-only, to show them. A
:class:`GuardJournal` follows the file as it grows: each :meth:`~GuardJournal.read`
reads only the lines appended since the last one (the log is append-only; a
file that shrank or was replaced is read again from its start) and keeps, in
bounded memory, verdict counts per hour, rule and action for
:data:`KEPT_HOURS`, the latest :data:`KEPT_RECENT` blocks and alerts and the
latest :data:`KEPT_CHANGES` policy changes. The chain's verification
(:func:`herald.guard.audit.verify`) reads the whole file: it is run again only
when the log or its head file changed, and its report is kept.

The red line: a record is published only through :func:`published`, which
keeps named fields whose values it checks (enumerations, salted hashes of
:data:`HASH_DIGITS` hex digits, a reason with any long run of digits cut), and
drops everything else. A log edited to carry an IMSI, a node address, a cell
id or a location therefore shows none of them: the guard never writes them,
and a log that does is not repeated.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from herald.guard.audit import MAX_LINE_BYTES, AuditError, Report, verify, verify_appended
from herald.signaling.policy import Category
from herald.signaling.policy.verdict import Action, Origin, Rule
from herald.signaling.privacy import HASH_HEX_CHARS

__all__ = [
    "FRESH_WITHIN",
    "FULL_CHECK_INTERVAL",
    "HASH_DIGITS",
    "KEPT_CHANGES",
    "KEPT_HOURS",
    "KEPT_RECENT",
    "WITHHELD",
    "AuditError",
    "GuardJournal",
    "Snapshot",
    "Verification",
    "audit_key",
    "hourly",
    "published",
]

#: Hours of verdict counts kept (the console shows the last day; the API up to a week).
KEPT_HOURS: Final = 7 * 24
#: Latest blocks and alerts kept.
KEPT_RECENT: Final = 500
#: Latest policy changes kept.
KEPT_CHANGES: Final = 20
#: A subscriber or sender in the log: HMAC-SHA256 with the policy's salt, cut to
#: this many hex digits (herald.signaling.privacy).
HASH_DIGITS: Final = HASH_HEX_CHARS
#: Seconds a check of the appended records stands in for a check of the whole log
#: (an edit to records already checked is found within this).
FULL_CHECK_INTERVAL: Final = 600.0
#: Seconds the admin API waits for the log's news before answering with what it
#: has: a small log is read and checked by then, a large one (100,000 records:
#: about 3 s) goes on in the background and the answer says so.
FRESH_WITHIN: Final = 0.2
#: Octets read per step when following the log (the state is locked for a step:
#: a snapshot waits for one step at most, a few milliseconds).
_CHUNK: Final = 64 * 1024
_HASH = re.compile(f"[0-9a-f]{{{HASH_DIGITS}}}")
#: An operation's name as the guard writes it (``sendRoutingInfoForSM``, ``opcode-99``).
_OPERATION = re.compile(r"[A-Za-z][A-Za-z-]{0,47}(-[0-9]{1,3})?")
#: Numbers of 4 characters or more (an IMSI, an MSISDN, a global title, a cell or
#: area id, a coordinate) are cut from a reason: the guard's own reasons hold
#: short figures (seconds, counts, rates).
_LONG_DIGITS = re.compile(r"\d[\d.:/-]{2,}\d")
_RULES: Final = frozenset(r.value for r in Rule)
_CATEGORIES: Final = frozenset(c.value for c in Category)
_ORIGINS: Final = frozenset(o.value for o in Origin)
_ACTIONS: Final = frozenset(a.value for a in Action)
_MODES: Final = frozenset({"scan", "proxy", "egress"})
WITHHELD: Final = "withheld"


def _hash(value: object) -> str:
    """A salted hash as written, or :data:`WITHHELD` (never the value itself)."""
    if value == "" or value is None:
        return ""
    if isinstance(value, str) and _HASH.fullmatch(value) and not value.isdigit():
        return value  # an all-digit value may be a number: not shown
    return WITHHELD


def _text(value: object, limit: int = 300) -> str:
    if not isinstance(value, str):
        return ""
    return _LONG_DIGITS.sub("[cut]", value[:limit])


def _choice(value: object, allowed: frozenset[str], default: str = "unknown") -> str:
    return value if isinstance(value, str) and value in allowed else default


def published(record: dict[str, Any]) -> dict[str, Any] | None:
    """What may be shown of one audit record, or ``None`` for a record that is
    not a verdict or a policy change. See the module docstring (the red line)."""
    content = record.get("content")
    if not isinstance(content, dict):
        return None
    seq = record.get("seq")
    at = record.get("time")
    base = {"seq": seq if isinstance(seq, int) else None,
            "at": float(at) if isinstance(at, int | float) else None}  # fmt: skip
    kind = record.get("kind")
    if kind == "verdict":
        operation = content.get("operation")
        return {
            **base,
            "action": _choice(content.get("action"), _ACTIONS),
            "rule": _choice(content.get("rule"), _RULES),
            "category": _choice(content.get("category"), _CATEGORIES),
            "operation": operation if isinstance(operation, str)
            and _OPERATION.fullmatch(operation) else "",
            "origin": _choice(content.get("origin"), _ORIGINS),
            "reason": _text(content.get("reason")),
            "subscriber": _hash(content.get("subscriber")),
            "sender": _hash(content.get("sender")),
            "late": content.get("late") is True,
            "mode": _choice(content.get("mode"), _MODES, ""),
        }  # fmt: skip
    if kind == "policy-change":
        return {**base, "who": _text(content.get("who"), 100),
                "policy": _text(os.path.basename(str(content.get("policy") or "")), 100),
                "old_sha256": _sha(content.get("old_sha256")),
                "new_sha256": _sha(content.get("new_sha256"))}  # fmt: skip
    return None


def _sha(value: object) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else ""


@dataclass(frozen=True, slots=True)
class Verification:
    """The chain's check: ``ok`` (no finding), how many records, the last seq,
    when it was checked, and the findings (kind and sentence: seq and line numbers)."""

    ok: bool
    records: int
    last_seq: int
    checked_at: float
    findings: tuple[tuple[str, str], ...]
    keyed: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a :class:`GuardJournal` holds at one moment (copies: safe to read
    while the journal goes on reading)."""

    present: bool
    records: int
    malformed: int
    counts: dict[tuple[int, str, str], int]
    recent: tuple[dict[str, Any], ...]
    changes: tuple[dict[str, Any], ...]


class GuardJournal:
    """Follows a guard audit log (see the module docstring). :meth:`refresh`
    (read, then check) runs in a worker thread; :meth:`snapshot` and
    :attr:`checked` may be read from another thread meanwhile.

    ``path`` need not exist yet (the guard may start later): it reads as empty.
    ``fresh_within``: seconds a reader waits for a refresh before answering with
    what the journal holds (a large log is read and checked in the background).
    """

    def __init__(self, path: Path, key: bytes | None = None,
                 clock: Callable[[], float] = time.time,
                 fresh_within: float = FRESH_WITHIN) -> None:  # fmt: skip
        self.path = path
        self.fresh_within = fresh_within
        self._key = key or None
        self._clock = clock
        self._lock = threading.Lock()  # the state below
        self._reading = threading.Lock()  # one reader of the file at a time
        self._reset()
        self.present = False
        self._checked: _Checked | None = None
        #: Why the last check could not be made (the log unreadable), or None.
        self.check_error: str | None = None

    @property
    def checked(self) -> Verification | None:
        """The last check's outcome (``None``: not checked yet, or no log)."""
        c = self._checked
        return None if c is None else c.verification

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self.present, self.records, self.malformed, dict(self.counts),
                            tuple(self.recent), tuple(self.changes))  # fmt: skip

    def refresh(self) -> bool:
        """:meth:`read`, then :meth:`verification` (its failure kept in
        :attr:`check_error`); whether the log exists. Raises :class:`OSError`
        when the log cannot be read."""
        present = self.read()
        try:
            self.verification()
            self.check_error = None
        except AuditError as exc:
            self.check_error = str(exc)
        return present

    def _reset(self) -> None:
        self._identity: tuple[int, int] | None = None  # (device, inode) read
        self._offset = 0
        self._partial = b""
        self.records = 0
        self.malformed = 0
        self.counts: Counter[tuple[int, str, str]] = Counter()  # (hour, rule, action)
        self.recent: deque[dict[str, Any]] = deque(maxlen=KEPT_RECENT)
        self.changes: deque[dict[str, Any]] = deque(maxlen=KEPT_CHANGES)

    def read(self) -> bool:
        """Take in what was appended since the last read; whether the log exists."""
        with self._reading:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                with self._lock:
                    self._reset()
                    self._checked = None
                    self.present = False
                return False
            identity = (st.st_dev, st.st_ino)
            if identity != self._identity or st.st_size < self._offset:
                with self._lock:
                    self._reset()  # replaced or cut: read it again from its start
                    self._identity = identity
            self.present = True
            if st.st_size == self._offset:
                return True
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                while chunk := f.read(_CHUNK):
                    with self._lock:
                        self._offset += len(chunk)
                        self._take(chunk)
            return True

    def _take(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # a line still being written, or b""
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""  # not a record the guard wrote
            self.malformed += 1
        for line in lines:
            if line.strip():
                self._line(line)
        self._forget_old()

    def _line(self, line: bytes) -> None:
        self.records += 1
        try:
            record = json.loads(line)
        except ValueError:
            self.malformed += 1
            return
        shown = published(record) if isinstance(record, dict) else None
        if shown is None:
            return
        if "action" in shown:
            hour = int((shown["at"] or 0) // 3600)
            self.counts[(hour, shown["rule"], shown["action"])] += 1
            if shown["action"] != "allow":
                self.recent.append(shown)
        else:
            self.changes.append(shown)

    def _forget_old(self) -> None:
        oldest = int(self._clock() // 3600) - KEPT_HOURS
        if any(k[0] < oldest for k in self.counts):
            for k in [k for k in self.counts if k[0] < oldest]:
                del self.counts[k]

    def verification(self) -> Verification | None:
        """The chain's check (``None``: there is no log). Kept while the log and
        its head file are unchanged; a log that only grew has its new records
        checked (:func:`~herald.guard.audit.verify_appended`), the whole log at
        least every :data:`FULL_CHECK_INTERVAL` seconds and whenever anything
        else changed. Raises :class:`AuditError` when the log cannot be read."""
        head = self.path.with_name(self.path.name + ".head")
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        try:
            hs = os.stat(head)
            head_sig: tuple[int, ...] = (hs.st_size, hs.st_mtime_ns, hs.st_ino)
        except FileNotFoundError:
            head_sig = ()
        signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, *head_sig)
        now = self._clock()
        c = self._checked
        if c is not None and c.signature == signature:
            return c.verification
        v = c.verification if c is not None else None
        if (c is not None and v is not None and v.ok and c.signature[:2] == signature[:2]
                and st.st_size > c.offset and now - c.full_at < FULL_CHECK_INTERVAL):
            added = verify_appended(self.path, self._key, c.offset, v.last_seq, c.head)
            if added is not None:
                found = Verification(True, v.records + added.records, added.last_seq, now,
                                     (), self._key is not None)  # fmt: skip
                self._checked = _Checked(signature, found, added.offset, added.head, c.full_at)
                return found
        report: Report = verify(self.path, self._key)
        found = Verification(report.ok, report.records, report.last_seq, now,
                             tuple((f.kind, f.message) for f in report.findings[:50]),
                             self._key is not None)  # fmt: skip
        # the size seen before the check: records appended during it are checked
        # next time (or, if the check read them, the next check starts over)
        self._checked = _Checked(signature, found, st.st_size, report.head, now)
        return found


@dataclass(frozen=True, slots=True)
class _Checked:
    signature: tuple[int, ...]
    verification: Verification
    offset: int  # octets of the log checked
    head: str  # the hash of the last record checked
    full_at: float  # when the whole log was last checked


def audit_key(key_file: Path | None, env: Mapping[str, str]) -> bytes | None:
    """The audit log's HMAC key as ``herald guard`` reads it: the file's content,
    else ``$HERALD_AUDIT_KEY``, else none. Raises :class:`OSError` for a file it
    cannot read."""
    if key_file is not None:
        return key_file.read_bytes().strip() or None
    return env.get("HERALD_AUDIT_KEY", "").encode() or None


def hourly(counts: Counter[tuple[int, str, str]], since_hour: int, until_hour: int
           ) -> list[tuple[int, dict[str, int]]]:  # fmt: skip
    """Blocks and alerts per hour in ``[since_hour, until_hour]``, by rule."""
    out: list[tuple[int, dict[str, int]]] = [(h, {}) for h in range(since_hour, until_hour + 1)]
    for (hour, rule, action), n in counts.items():
        if since_hour <= hour <= until_hour and action != "allow":
            row = out[hour - since_hour][1]
            row[rule] = row.get(rule, 0) + n
    return out

