"""``herald accounts``: secrets printed once, usable, and stored nowhere in clear."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from pathlib import Path

import pytest

from herald.accounts import Accounts, InvalidCredentials, Principal
from herald.cli import main
from herald.store import Account, SQLiteConfig, SQLiteStore, StatusEvents


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["accounts", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _authenticate(
    data: Path, *, key: str | None = None, login: tuple[str, str] | None = None
) -> Principal:
    async def check() -> Principal:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        accounts = Accounts(store)
        try:
            if key is not None:
                return await accounts.authenticate_api_key(key, 0)
            assert login is not None
            return await accounts.authenticate_smpp(*login, 0)
        finally:
            accounts.close()
            await store.aclose()

    return asyncio.run(check())


def _stored_bytes(data: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())


def test_create_prints_a_working_api_key_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    status, out, err = _run(
        capsys, "create", "acme", "--data-dir", str(data), "--rate-limit", "25",
        "--callback-url", "https://acme.test/hook",
    )  # fmt: skip
    assert (status, err) == (0, "")
    [key] = re.findall(r"hk_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    assert re.search(r"whsec_[A-Za-z0-9_-]{43}", out)
    assert _authenticate(data, key=key).account_id == 1
    assert key.split("_")[2].encode() not in _stored_bytes(data)

    status, out, _ = _run(capsys, "list", "--data-dir", str(data))
    assert status == 0
    assert re.search(r"^1\s+acme\s+25\s+4\s+" + key.split("_")[1], out, re.M)
    assert "https://acme.test/hook" in out
    assert key not in out and "$argon2" not in out


def test_add_smpp_prints_a_working_password_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert _run(capsys, "create", "acme", "--data-dir", data)[0] == 0
    status, out, err = _run(
        capsys, "add-smpp", "acme", "--system-id", "acme_trx", "--data-dir", data
    )
    assert (status, err) == (0, "")
    password = re.search(r"password:\s+(\S+)", out)
    assert password is not None and len(password[1]) == 8
    assert _authenticate(Path(data), login=("acme_trx", password[1])).credential == "acme_trx"
    assert password[1].encode() not in _stored_bytes(Path(data))
    status, out, _ = _run(capsys, "list", "--data-dir", data)
    assert "acme_trx" in out and password[1] not in out

    status, out, _ = _run(
        capsys, "add-smpp", "acme", "--system-id", "long", "--password-length", "20",
        "--data-dir", data,
    )  # fmt: skip
    longer = re.search(r"password:\s+(\S+)", out)
    assert status == 0 and longer is not None and len(longer[1]) == 20


def test_keys_can_be_added_and_revoked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    _, first_out, _ = _run(capsys, "create", "acme", "--data-dir", data)
    status, out, _ = _run(capsys, "issue-key", "acme", "--data-dir", data)
    [first] = re.findall(r"hk_\S+", first_out)
    [second] = re.findall(r"hk_\S+", out)
    assert status == 0 and first != second
    status, out, _ = _run(capsys, "revoke-key", first.split("_")[1], "--data-dir", data)
    assert status == 0
    with pytest.raises(InvalidCredentials, match="revoked"):
        _authenticate(Path(data), key=first)
    assert _authenticate(Path(data), key=second).account_id == 1
    status, _, err = _run(capsys, "revoke-key", first.split("_")[1], "--data-dir", data)
    assert status == 1 and "no active API key" in err


def test_mistakes_get_a_message_and_a_failing_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    status, out, err = _run(capsys, "list", "--data-dir", data)
    assert status == 1 and "no herald database" in err
    assert not (tmp_path / "data").exists()  # looking did not create anything
    assert _run(capsys, "create", "acme", "--data-dir", data)[0] == 0
    cases = [
        (("create", "acme"), "exists"),
        (("create", "bad name"), "account name"),
        (("add-smpp", "nobody", "--system-id", "x"), "no account named"),
        (("add-smpp", "acme", "--system-id", "sixteen-chars-xx"), "system_id"),
        (("add-smpp", "acme", "--system-id", "ok", "--password-length", "4"), "password length"),
    ]
    for argv, message in cases:
        status, out, err = _run(capsys, *argv, "--data-dir", data)
        assert status == 1, argv
        assert message in err, (argv, err)
        assert "hk_" not in out


def test_list_without_accounts_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    SQLiteStore.open(SQLiteConfig(data_dir=tmp_path)).close()
    status, out, _ = _run(capsys, "list", "--data-dir", str(tmp_path))
    assert status == 0 and "herald accounts create NAME" in out


def _account(data: Path, name: str) -> Account:
    async def read() -> Account:
        store = SQLiteStore.open(SQLiteConfig(data_dir=data, create=False))
        try:
            return await store.get_account_by_name(name)
        finally:
            await store.aclose()

    return asyncio.run(read())


def test_set_changes_webhook_subscriptions_batching_and_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert _run(capsys, "create", "acme", "--data-dir", str(data))[0] == 0
    fresh = _account(data, "acme")
    assert (fresh.webhook_events, fresh.inbound_webhooks, fresh.webhook_batch_max) == (
        StatusEvents.FINAL, True, 1)  # the documented defaults

    status, out, err = _run(
        capsys, "set", "acme", "--data-dir", str(data), "--callback-url", "https://acme.test/h",
        "--callback-events", "sent,undelivered", "--inbound", "off",
        "--inbound-url", "https://acme.test/mo", "--webhook-batch", "100",
        "--webhook-batch-wait", "20", "--rate-limit", "unlimited", "--bind-limit", "3",
    )  # fmt: skip
    assert (status, err) == (0, ""), err
    assert "callback events: sent,undelivered" in out and "rate limit:      unlimited" in out
    changed = _account(data, "acme")
    assert changed == dataclasses.replace(
        fresh, callback_url="https://acme.test/h", inbound_url="https://acme.test/mo",
        webhook_events=StatusEvents.SENT | StatusEvents.UNDELIVERED, inbound_webhooks=False,
        webhook_batch_max=100, webhook_batch_wait=0.02, rate_limit=math.inf, bind_limit=3,
    )  # fmt: skip

    # Only what is given changes; "none" removes a URL.
    assert _run(capsys, "set", "acme", "--data-dir", str(data), "--callback-url", "none",
                "--callback-events", "all")[0] == 0  # fmt: skip
    assert _account(data, "acme") == dataclasses.replace(
        changed, callback_url=None, webhook_events=StatusEvents.ALL
    )
    status, out, _ = _run(capsys, "list", "--data-dir", str(data))
    assert re.search(r"^1\s+acme\s+unlimited\s+3\s.*\sall$", out, re.M), out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--callback-events", "read"), "'read' is not a status"),
        (("--callback-events", "accepted"), "never posted"),
        (("--callback-url", "ftp://x"), "http"),
        (("--inbound", "maybe"), "on or off"),
        (("--webhook-batch", "0"), "1..1000"),
        (("--webhook-batch-wait", "20000"), "0..10000 milliseconds"),
        (("--rate-limit", "0"), "positive"),
    ],
)
def test_set_refuses_bad_values_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    data = tmp_path / "data"
    assert _run(capsys, "create", "acme", "--data-dir", str(data))[0] == 0
    before = _account(data, "acme")
    with pytest.raises(SystemExit) as exit_:
        _run(capsys, "set", "acme", "--data-dir", str(data), *argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert _account(data, "acme") == before


def test_a_private_callback_url_needs_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert _run(capsys, "create", "acme", "--data-dir", str(data))[0] == 0
    for url in ("http://169.254.169.254/x", "http://localhost:6379/", "http://127.1/"):
        status, _, err = _run(capsys, "set", "acme", "--data-dir", str(data),
                              "--callback-url", url)  # fmt: skip
        assert status == 1 and "not allowed" in err, (url, err)
        assert _account(data, "acme").callback_url is None
    status, _, _ = _run(capsys, "set", "acme", "--data-dir", str(data), "--callback-url",
                        "http://127.0.0.1:9000/hook", "--allow-private-url")  # fmt: skip
    assert status == 0 and _account(data, "acme").callback_url == "http://127.0.0.1:9000/hook"


def test_logins_are_removed_reset_and_accounts_disabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    status, out, _ = _run(capsys, "create", "acme", "--data-dir", str(data))
    [key] = re.findall(r"hk_[a-z0-9]{12}_[A-Za-z0-9]{40}", out)
    _run(capsys, "add-smpp", "acme", "--system-id", "acme1", "--data-dir", str(data))
    status, out, _ = _run(capsys, "reset-smpp", "acme1", "--data-dir", str(data))
    [password] = re.findall(r"password:\s+(\S+)", out)
    assert status == 0 and _authenticate(data, login=("acme1", password)).account_id == 1
    assert _run(capsys, "remove-smpp", "acme1", "--data-dir", str(data))[0] == 0
    with pytest.raises(InvalidCredentials):
        _authenticate(data, login=("acme1", password))
    status, _, err = _run(capsys, "remove-smpp", "acme1", "--data-dir", str(data))
    assert status == 1 and "no SMPP login" in err

    assert _run(capsys, "disable", "acme", "--data-dir", str(data))[0] == 0
    assert _account(data, "acme").disabled
    assert _run(capsys, "enable", "acme", "--data-dir", str(data))[0] == 0
    assert not _account(data, "acme").disabled

    # revoke-key takes the key as it was printed
    assert _run(capsys, "revoke-key", key, "--data-dir", str(data))[0] == 0
    with pytest.raises(InvalidCredentials):
        _authenticate(data, key=key)
    status, _, err = _run(capsys, "revoke-key", "hk_bad", "--data-dir", str(data))
    assert status == 1 and "not an API key" in err
