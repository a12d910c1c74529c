"""An intake process's ``[[classes]]`` entries (:class:`LiveClasses`, real store), and
``herald routes list`` / ``explain`` showing them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.cli import main
from herald.intake import Network, NumberIndex, NumberingPlan
from herald.routes import LiveClasses
from herald.routing import RoutesFileError
from herald.store import Priority, SQLiteConfig, SQLiteStore, StoredRoutes

TELEKOM = Network("262", "01", "Telekom Deutschland")
ROUTES = """
[groups]
vip = ["acme"]

[[classes]]
name = "vip-login"
groups = ["vip"]
tags = ["login"]
priority = "otp"

[[classes]]
name = "telekom-news"
networks = ["26201"]
senders = ["NEWS"]
priority = "marketing"
"""
T0 = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


def _index() -> NumberIndex:
    return NumberIndex(NumberingPlan.build([("4917", TELEKOM)]))


#: Account ids by name (fixed: ``hash()`` of a str changes per process, and two
#: names may meet on one id, whose cached decision the other would then get).
IDS = {"acme": 1, "globex": 2}


async def test_entries_apply_once_read_and_a_refused_file_leaves_them(
    store: SQLiteStore
) -> None:
    classes = LiveClasses(store, index=_index)
    assert await classes.refresh()  # no routes: nothing but the defaults
    assert classes.of(1, "acme", "4917012345678", "X", "login", Priority.BULK, T0) \
        is Priority.BULK
    await store.put_routes(StoredRoutes(ROUTES, "routes.toml", T0))
    assert await classes.refresh() and not await classes.refresh()  # only when it moved
    cases = [  # (account, to, sender, tag, default) -> class
        (("acme", "4917012345678", "X", "login", Priority.BULK), Priority.OTP),
        (("globex", "4917012345678", "X", "login", Priority.BULK), Priority.BULK),
        (("globex", "4917012345678", "NEWS", None, None), Priority.MARKETING),
        (("globex", "4915212345678", "NEWS", None, None), None),  # no network known
    ]
    for _ in range(2):  # the second time from the cache
        for (account, to, sender, tag, default), expected in cases:
            got = classes.of(IDS[account], account, to, sender, tag, default, T0)
            assert got is expected, (account, to, sender, tag)
    await store.put_routes(StoredRoutes("[[classes]]\npriority = 3\n", "bad.toml", T0))
    with pytest.raises(RoutesFileError):
        await classes.refresh()
    assert not await classes.refresh()  # not tried again until the routes change
    assert classes.of(1, "acme", "4917012345678", "X", "login", None, T0) is Priority.OTP
    await store.remove_routes()
    assert await classes.refresh()
    assert classes.of(1, "acme", "4917012345678", "X", "login", None, T0) is None


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_list_and_explain_show_which_entry_decides_the_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES + '\n[[rule]]\nname = "otp-to-a"\npriorities = ["otp"]\n'
                               'failover = ["a"]\n[[rule]]\nname = "rest"\nfailover = ["b"]\n')
    out = _run(capsys, ["routes", "import", str(routes), "--data-dir", data])
    assert "Routes imported: 2 rules, 2 class entries (generation" in out
    out = _run(capsys, ["routes", "list", "--data-dir", data])
    assert "    1. vip-login: groups vip; tags login -> otp\n" in out
    assert "    2. telekom-news: networks 26201; senders NEWS -> marketing\n" in out
    explain = ["routes", "explain", "--account", "acme", "--to", "+4917012345678",
               "--data-dir", data]
    out = _run(capsys, [*explain, "--tag", "login"])
    assert "  1. vip-login  MATCH  every criterion matches: chosen\n" in out
    assert "Class: otp, from class entry vip-login\n" in out
    assert "Decision: a\n" in out  # the rule for otp, the class the entry gave
    out = _run(capsys, explain)
    assert "tag (none) is not among login" in out and "network unknown is not among" in out
    assert "Class: transactional, from the default (no class entry or account default)" in out
    out = _run(capsys, [*explain, "--tag", "otp"])
    assert "Class: otp, from the tag\n" in out and "Class entries" not in out
    out = _run(capsys, [*explain, "--tag", "login", "--priority", "bulk"])
    assert "Class:" not in out and "priority bulk" in out
