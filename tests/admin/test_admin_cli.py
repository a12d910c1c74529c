"""``herald admin`` and the audit of every change the ``herald`` commands make."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from herald.accounts import InvalidCredentials
from herald.admin import AdminKeys, AdminPrincipal, cli_actor
from herald.cli import main
from herald.store import AdminScope, SQLiteConfig, SQLiteStore

EXAMPLES = Path(__file__).parents[2] / "examples"
KEY_RE = r"[hk][ka]_[a-z0-9]{12}_[A-Za-z0-9]{40}"


def _run(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> tuple[int, str, str]:
    status = main([*argv, "--data-dir", str(data)])
    out, err = capsys.readouterr()
    return status, out, err


def _ok(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> str:
    status, out, err = _run(capsys, data, *argv)
    assert (status, err) == (0, ""), err
    return out


def _verify(data: Path, key: str) -> AdminPrincipal:
    async def check() -> AdminPrincipal:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        keys = AdminKeys(store)
        try:
            return await keys.authenticate(key, 0)
        finally:
            keys.close()
            await store.aclose()

    return asyncio.run(check())


def _audit(capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> list[dict[str, Any]]:
    out = _ok(capsys, data, "admin", "audit", "--json", *argv)
    return [json.loads(line) for line in out.splitlines()]


def test_admin_keys_are_printed_once_listed_and_revoked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    out = _ok(capsys, data, "admin", "keys", "create", "ops")
    [key] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    assert _verify(data, key) == AdminPrincipal("ops", key.split("_")[1], AdminScope.WRITE)
    out = _ok(capsys, data, "admin", "keys", "create", "monitor", "--read-only")
    [reader] = re.findall(r"ha_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    assert _verify(data, reader).scope is AdminScope.READ
    status, _, err = _run(capsys, data, "admin", "keys", "create", "ops")
    assert status == 1 and "is active" in err
    listing = _ok(capsys, data, "admin", "keys", "list")
    assert "ops" in listing and "monitor" in listing and key.split("_")[2] not in listing
    _ok(capsys, data, "admin", "keys", "revoke", "ops")
    with pytest.raises(InvalidCredentials, match="revoked"):
        _verify(data, key)
    status, _, err = _run(capsys, data, "admin", "keys", "revoke", "ops")
    assert status == 1 and "no active admin key" in err
    stored = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert key.split("_")[2].encode() not in stored and reader.split("_")[2].encode() not in stored
    assert [(e["action"], e["target"]) for e in _audit(capsys, data)] == [
        ("admin_key.issue", "admin_key:ops"), ("admin_key.issue", "admin_key:monitor"),
        ("admin_key.revoke", "admin_key:ops")]


def test_every_cli_change_is_recorded_without_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    printed = _ok(capsys, data, "accounts", "create", "acme", "--rate-limit", "25")
    printed += _ok(capsys, data, "accounts", "set", "acme", "--bind-limit", "2",
                   "--callback-url", "https://acme.example/h", "--webhook-batch-wait", "250")
    printed += _ok(capsys, data, "accounts", "issue-key", "acme")
    key_id = re.findall(KEY_RE, printed)[-1].split("_")[1]
    printed += _ok(capsys, data, "accounts", "revoke-key", key_id)
    printed += _ok(capsys, data, "accounts", "add-smpp", "acme", "--system-id", "acme01")
    printed += _ok(capsys, data, "accounts", "reset-smpp", "acme01")
    printed += _ok(capsys, data, "accounts", "remove-smpp", "acme01")
    printed += _ok(capsys, data, "accounts", "disable", "acme")
    printed += _ok(capsys, data, "accounts", "enable", "acme")
    printed += _ok(capsys, data, "numbers", "import-plan", str(EXAMPLES / "numbering-plan.csv"))
    printed += _ok(capsys, data, "numbers", "import-ported", str(EXAMPLES / "ported.csv"))
    printed += _ok(capsys, data, "numbers", "clear", "ported")
    # A refused change records nothing; a "change" to the same value neither.
    assert _run(capsys, data, "accounts", "set", "acme", "--bind-limit", "-1")[0] == 1
    _ok(capsys, data, "accounts", "set", "acme", "--bind-limit", "2")
    entries = _audit(capsys, data)
    assert {e["actor"] for e in entries} == {cli_actor()}
    assert [(e["action"], e["target"]) for e in entries] == [
        ("account.create", "account:acme"), ("account.update", "account:acme"),
        ("api_key.issue", "account:acme"), ("api_key.revoke", "account:acme"),
        ("smpp.add", "account:acme"), ("smpp.reset", "account:acme"),
        ("smpp.remove", "account:acme"), ("account.disable", "account:acme"),
        ("account.enable", "account:acme"), ("numbers.import", "numbers:plan"),
        ("numbers.import", "numbers:ported"), ("numbers.clear", "numbers:ported"),
    ]
    assert entries[0]["changes"]["rate_limit"] == 25 and entries[0]["changes"]["id"] == 1
    assert entries[1]["changes"] == {"bind_limit": 2, "callback_url": "https://acme.example/h",
                                     "webhook_batch_wait_ms": 250}
    assert entries[5]["changes"] == {"system_id": "acme01", "password": "reset"}
    secrets = re.findall(KEY_RE, printed) + re.findall(r"password:\s+(\S+)", printed) \
        + re.findall(r"whsec_\S+", printed)
    assert len(secrets) == 5  # two keys, two passwords, the signing secret
    with sqlite3.connect(data / "herald.db") as conn:
        stored = json.dumps(conn.execute("SELECT * FROM admin_audit").fetchall())
    shown = _ok(capsys, data, "admin", "audit", "--limit", "100")
    for secret in secrets:
        # A key's or signing secret's random part (after "hk_<id>_" or "whsec_": the
        # random part may hold "_" itself); a password whole.
        if secret.startswith("hk_"):
            part = secret.split("_", 2)[2]
        elif secret.startswith("whsec_"):
            part = secret.removeprefix("whsec_")
        else:
            part = secret
        assert len(part) >= 8 and part not in stored and part not in shown  # SMPP: 8


def test_the_audit_command_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    _ok(capsys, data, "accounts", "create", "acme")
    _ok(capsys, data, "accounts", "create", "shop")
    _ok(capsys, data, "accounts", "disable", "shop")
    assert [e["action"] for e in _audit(capsys, data, "--target", "account:shop")] == [
        "account.create", "account.disable"]
    assert len(_audit(capsys, data, "--target", "account:*", "--since", "1h")) == 3
    assert _audit(capsys, data, "--since", "2999-01-01T00:00Z") == []
    assert [e["target"] for e in _audit(capsys, data, "--limit", "1")] == ["account:shop"]
    text = _ok(capsys, data, "admin", "audit")
    assert text.splitlines()[0].split()[2:5] == [cli_actor(), "account.create", "account:acme"]
    with pytest.raises(SystemExit):
        main(["admin", "audit", "--since", "last week", "--data-dir", str(data)])
    assert "neither an ISO 8601 time nor an age" in capsys.readouterr().err
