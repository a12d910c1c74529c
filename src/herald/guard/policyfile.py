"""Reading policy files, and describing a change between two of them.

The engine's policy is parsed by the pure :func:`herald.signaling.policy.parse_policy`;
this module adds the file I/O and the redacted diff that goes into the audit
log when the policy changes (the salt never appears in a diff: with it, anyone
reading the log could test guessed numbers against the hashes).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from herald.signaling.policy import Policy, PolicyError, parse_policy

__all__ = ["PolicyChange", "PolicyFileError", "diff_policies", "load_policy", "read_policy"]

# TOML keys whose values are secrets.
_SECRET = re.compile(r"""^(\s*"?(salt|hmac_key|key)"?\s*=\s*).*$""")
REDACTED = '"<redacted>"'


class PolicyFileError(Exception):
    """The policy file cannot be read or is invalid; the message says which
    file and field. Refuse to start (or keep the previous policy)."""


def read_policy(path: str | Path) -> tuple[Policy, str]:
    """Read and validate a policy file; returns the policy and the file's text."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{p}: cannot read policy: {exc}") from exc
    try:
        return parse_policy(text), text
    except PolicyError as exc:
        raise PolicyFileError(f"{p}: {exc}") from exc


def load_policy(path: str | Path) -> Policy:
    return read_policy(path)[0]


def redact(text: str) -> str:
    return "\n".join(
        _SECRET.sub(lambda m: m.group(1) + REDACTED, line) for line in text.splitlines()
    )


@dataclass(frozen=True, slots=True)
class PolicyChange:
    diff: str  # unified diff of the redacted texts
    old_sha256: str
    new_sha256: str
    secret_changed: bool  # the salt (or another secret) changed

    @property
    def changed(self) -> bool:
        return self.old_sha256 != self.new_sha256


def diff_policies(old: str, new: str, old_name: str = "old", new_name: str = "new") -> PolicyChange:
    """The redacted difference between two policy texts."""
    old_r, new_r = redact(old), redact(new)
    diff = "".join(
        difflib.unified_diff(
            (old_r + "\n").splitlines(keepends=True),
            (new_r + "\n").splitlines(keepends=True),
            fromfile=old_name,
            tofile=new_name,
        )
    )
    secrets_old = [line for line in old.splitlines() if _SECRET.match(line)]
    secrets_new = [line for line in new.splitlines() if _SECRET.match(line)]
    return PolicyChange(
        diff=diff,
        old_sha256=hashlib.sha256(old.encode()).hexdigest(),
        new_sha256=hashlib.sha256(new.encode()).hexdigest(),
        secret_changed=secrets_old != secrets_new,
    )
