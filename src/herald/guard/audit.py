"""The guard's audit log: append-only, hash-chained JSON lines.

Every block and alert, and every policy change, is one record::

    {"seq": 7, "time": 1764040000.25, "kind": "verdict", "content": {...},
     "prev": "<hash of record 6>", "hash": "<hash of this record>"}

``hash`` is SHA-256 (or HMAC-SHA256 when the log has a key) over the canonical
JSON of ``[seq, time, kind, content, prev]``; the first record's ``prev`` is 64
zeros. Each record thus commits to everything before it: editing, deleting,
inserting or reordering records breaks the chain somewhere, and
:func:`verify` says where and what. Removing records from the *end* leaves a
valid shorter chain; to catch that, each append also rewrites a small sidecar
``<log>.head`` holding the last seq and hash (MACed with the key, if any), which
:func:`verify` compares with the log. Without a key, someone who can write the
file can also rebuild the whole chain: use a key (kept apart from the log) when
the log's readers are not its only writers.

Records carry what a :class:`~herald.signaling.policy.Verdict` publishes (rule,
action, reason, salted hashes): never an IMSI, a node address or a location.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from herald.signaling.policy import Verdict

__all__ = [
    "GENESIS",
    "Appended",
    "AuditError",
    "AuditLog",
    "Finding",
    "Report",
    "record_hash",
    "verify",
    "verify_appended",
]

GENESIS = "0" * 64

# A record line longer than this is not one the guard wrote (a verdict record
# is a few hundred bytes; a policy diff is capped by MAX_DIFF_CHARS).
MAX_LINE_BYTES = 1 << 20
MAX_DIFF_CHARS = 200_000

KINDS = frozenset({"verdict", "policy-change", "note"})


class AuditError(Exception):
    """The audit log cannot be opened or appended to (I/O, or the existing
    file is not a log this module wrote). The caller must stop recording
    decisions it cannot audit: refuse to start, or fail the command."""


def _canonical(seq: int, t: float, kind: str, content: Any, prev: str) -> bytes:
    return json.dumps(
        [seq, t, kind, content, prev], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def record_hash(
    seq: int, t: float, kind: str, content: Any, prev: str, key: bytes | None = None
) -> str:
    data = _canonical(seq, t, kind, content, prev)
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def _head_mac(seq: int, head: str, key: bytes | None) -> str:
    if not key:
        return ""
    return hmac.new(key, f"head:{seq}:{head}".encode(), hashlib.sha256).hexdigest()


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


class AuditLog:
    """Appends records to ``path`` (created if absent), continuing its chain.

    ``clock`` gives each record's wall-clock time (seconds since the epoch).
    Opening an existing log reads its last record to continue the chain; it
    does not verify the whole file (run :func:`verify` for that).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._key = key or None
        self._clock = clock
        self._seq, self._head = self._read_tail()
        try:
            self._file: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc}") from exc

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def head(self) -> str:
        return self._head

    def _read_tail(self) -> tuple[int, str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - MAX_LINE_BYTES))
                tail = f.read().splitlines()
        except FileNotFoundError:
            return 0, GENESIS
        except OSError as exc:
            raise AuditError(f"cannot read audit log {self.path}: {exc}") from exc
        for line in reversed(tail):
            if line.strip():
                try:
                    last = json.loads(line)
                    return int(last["seq"]), str(last["hash"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuditError(
                        f"{self.path} does not end with an audit record; verify it"
                    ) from exc
        return 0, GENESIS

    def append(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        """Append one record and return it. Raises :class:`AuditError` on I/O failure."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit record kind {kind!r}")
        seq = self._seq + 1
        t = self._clock()
        digest = record_hash(seq, t, kind, content, self._head, self._key)
        record = {
            "seq": seq,
            "time": t,
            "kind": kind,
            "content": content,
            "prev": self._head,
            "hash": digest,
        }
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            self._file.write(line + "\n")
            self._file.flush()
            self._write_head(seq, digest)
        except OSError as exc:
            raise AuditError(f"cannot append to audit log {self.path}: {exc}") from exc
        self._seq, self._head = seq, digest
        return record

    def _write_head(self, seq: int, digest: str) -> None:
        head = _head_path(self.path)
        tmp = head.with_name(head.name + ".tmp")
        tmp.write_text(
            json.dumps({"seq": seq, "hash": digest, "mac": _head_mac(seq, digest, self._key)})
            + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, head)

    def verdict(self, verdict: Verdict, **context: Any) -> dict[str, Any]:
        """Record a block or alert (``context``: e.g. the capture and message index)."""
        content = verdict.as_dict()
        content.update(context)
        return self.append("verdict", content)

    def verdicts(self, verdicts: Iterable[Verdict], **context: Any) -> int:
        n = 0
        for v in verdicts:
            self.verdict(v, **context)
            n += 1
        return n

    def policy_change(
        self, who: str, diff: str, old_sha256: str, new_sha256: str, name: str = ""
    ) -> dict[str, Any]:
        """Record who changed the policy, and the (redacted) diff of what changed."""
        if len(diff) > MAX_DIFF_CHARS:
            diff = diff[:MAX_DIFF_CHARS] + "\n[diff truncated]\n"
        return self.append(
            "policy-change",
            {
                "who": who,
                "policy": name,
                "old_sha256": old_sha256,
                "new_sha256": new_sha256,
                "diff": diff,
            },
        )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ verify


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with a log: ``kind`` is ``malformed``, ``edited``,
    ``deleted``, ``inserted``, ``reordered``, ``chain`` (a record rewritten with
    a recomputed hash) or ``truncated`` (records missing at the end)."""

    kind: str
    message: str
    line: int | None = None
    seq: int | None = None


@dataclass(slots=True)
class Report:
    records: int = 0
    last_seq: int = 0
    head: str = GENESIS
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(slots=True)
class _Rec:
    line: int
    seq: int
    prev: str
    hash: str
    intact: bool  # stored hash equals the recomputed one


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _parse(lines: list[bytes], key: bytes | None, report: Report) -> list[_Rec]:
    records: list[_Rec] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            r = json.loads(raw)
            seq, t, kind, content = r["seq"], r["time"], r["kind"], r["content"]
            prev, digest = r["prev"], r["hash"]
            if not (
                isinstance(seq, int)
                and isinstance(t, int | float)
                and isinstance(kind, str)
                and isinstance(prev, str)
                and isinstance(digest, str)
            ) or set(r) != {"seq", "time", "kind", "content", "prev", "hash"}:
                raise TypeError("fields")
        except (ValueError, KeyError, TypeError):
            report.findings.append(
                Finding("malformed", f"line {number} is not an audit record", line=number)
            )
            continue
        intact = hmac.compare_digest(record_hash(seq, t, kind, content, prev, key), digest)
        records.append(_Rec(number, seq, prev, digest, intact))
    return records


def verify(path: str | os.PathLike[str], key: bytes | None = None) -> Report:
    """Check a log's chain; the report lists every finding (empty: intact).

    Raises :class:`AuditError` only when the file cannot be read at all.
    """
    p = Path(path)
    report = Report()
    try:
        lines = p.read_bytes().splitlines()
    except OSError as exc:
        raise AuditError(f"cannot read audit log {p}: {exc}") from exc
    records = _parse(lines, key, report)
    report.records = len(records)
    findings = report.findings

    for r in records:
        if not r.intact:
            findings.append(
                Finding(
                    "edited",
                    f"record seq {r.seq} (line {r.line}) was edited: its hash does not match",
                    r.line,
                    r.seq,
                )
            )

    # Inserted: a second record claiming an existing seq. The genuine one is the
    # one the chain continues from (some record's prev is its hash).
    linked = {r.prev for r in records}
    by_seq: dict[int, list[_Rec]] = {}
    for r in records:
        by_seq.setdefault(r.seq, []).append(r)
    inserted: set[int] = set()
    for seq, group in by_seq.items():
        if len(group) < 2:
            continue
        genuine = next((r for r in group if r.hash in linked and r.intact), group[0])
        for r in group:
            if r is not genuine:
                inserted.add(r.line)
                findings.append(
                    Finding(
                        "inserted",
                        f"line {r.line} is an inserted record (seq {seq} already at line "
                        f"{genuine.line})",
                        r.line,
                        seq,
                    )
                )
    kept = [r for r in records if r.line not in inserted]

    # Reordered: records whose seq is lower than one before them in the file.
    highest = 0
    for r in kept:
        if r.seq < highest:
            findings.append(
                Finding(
                    "reordered",
                    f"record seq {r.seq} (line {r.line}) is out of order (after seq {highest})",
                    r.line,
                    r.seq,
                )
            )
        highest = max(highest, r.seq)

    # Deleted: seqs missing from 1..highest.
    present = {r.seq for r in kept}
    missing = [s for s in range(1, highest + 1) if s not in present]
    for lo, hi in _ranges(missing):
        what = f"record seq {lo}" if lo == hi else f"records seq {lo}-{hi}"
        findings.append(Finding("deleted", f"{what} deleted", None, lo))

    # Chain: consecutive records must link; an intact record that does not
    # follow its predecessor was rewritten with a recomputed hash (or the
    # predecessor was).
    ordered = sorted(kept, key=lambda r: r.seq)
    previous: _Rec | None = None
    for r in ordered:
        if r.seq == 1 and r.prev != GENESIS:
            findings.append(Finding("chain", "record seq 1 does not start the chain", r.line, 1))
        if previous is not None and r.seq == previous.seq + 1 and r.prev != previous.hash:
            findings.append(
                Finding(
                    "chain",
                    f"record seq {r.seq} does not follow record seq {previous.seq}: one of them "
                    "was rewritten",
                    r.line,
                    r.seq,
                )
            )
        previous = r
    if previous is not None:
        report.last_seq, report.head = previous.seq, previous.hash

    _check_head(p, key, report, {r.seq: r.hash for r in kept})
    findings.sort(key=lambda f: (f.seq if f.seq is not None else 0, f.line or 0))
    return report


def _check_head(path: Path, key: bytes | None, report: Report, hashes: dict[int, str]) -> None:
    head_file = _head_path(path)
    try:
        head = json.loads(head_file.read_text(encoding="utf-8"))
        seq, digest, mac = int(head["seq"]), str(head["hash"]), str(head.get("mac", ""))
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        report.findings.append(Finding("malformed", f"{head_file.name} is not a head record"))
        return
    if key and not hmac.compare_digest(mac, _head_mac(seq, digest, key)):
        report.findings.append(Finding("edited", f"{head_file.name} was edited (bad MAC)"))
        return
    if seq > report.last_seq:
        report.findings.append(
            Finding(
                "truncated",
                f"records seq {report.last_seq + 1}-{seq} deleted from the end "
                f"(the head file says the log reached seq {seq})",
                None,
                report.last_seq + 1,
            )
        )
    elif seq < report.last_seq:
        # Records the writer never acknowledged (or a crash between writing a
        # record and its head: then exactly one record is past the head).
        report.findings.append(
            Finding(
                "inserted",
                f"records seq {seq + 1}-{report.last_seq} are past the head file's seq {seq}",
                None,
                seq + 1,
            )
        )
    elif hashes.get(seq) != digest:
        report.findings.append(
            Finding("chain", f"record seq {seq} does not match the head file", None, seq)
        )


@dataclass(frozen=True, slots=True)
class Appended:
    """What :func:`verify_appended` checked: the records, the last seq and hash,
    and the offset after the last whole line."""

    records: int
    last_seq: int
    head: str
    offset: int


def verify_appended(
    path: str | os.PathLike[str], key: bytes | None, offset: int, last_seq: int, head: str
) -> Appended | None:
    """Check the records appended to a log after ``offset``, where a check ended
    at record ``last_seq`` with hash ``head``: each must be intact and follow the
    one before, and the head file must name the last. ``None`` when anything
    differs (run :func:`verify` for the findings). Costs the appended part only:
    it does not look again at what is before ``offset``. Raises
    :class:`AuditError` when the file cannot be read."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as exc:
        raise AuditError(f"cannot read audit log {p}: {exc}") from exc
    end = data.rfind(b"\n") + 1
    report = Report()
    records = _parse(data[:end].splitlines(), key, report)
    if report.findings:
        return None
    for r in records:
        if not r.intact or r.seq != last_seq + 1 or r.prev != head:
            return None
        last_seq, head = r.seq, r.hash
    try:
        found = json.loads(_head_path(p).read_text(encoding="utf-8"))
        seq, digest, mac = int(found["seq"]), str(found["hash"]), str(found.get("mac", ""))
    except FileNotFoundError:
        return Appended(len(records), last_seq, head, offset + end)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (key and not hmac.compare_digest(mac, _head_mac(seq, digest, key))) or (
            seq, digest) != (last_seq, head):  # fmt: skip
        return None
    return Appended(len(records), last_seq, head, offset + end)
