"""docs/guard.md stays true: its example policy parses, its field table is complete."""

from __future__ import annotations

import re
from pathlib import Path

from herald.signaling.policy import Rule, parse_policy

DOC = Path(__file__).resolve().parents[2] / "docs" / "guard.md"


def _toml_block() -> str:
    found = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, "docs/guard.md has no ```toml example"
    return found.group(1)


def test_the_documented_example_policy_is_valid() -> None:
    policy = parse_policy(_toml_block())
    assert policy.home.mcc == "001" and len(policy.partners) == 2
    assert policy.proxy.on_block == "udts"


def test_every_rule_is_documented() -> None:
    text = DOC.read_text()
    missing = [r.value for r in Rule if f"| `{r.value}` |" not in text]
    assert not missing, f"rules missing from the table in docs/guard.md: {missing}"
