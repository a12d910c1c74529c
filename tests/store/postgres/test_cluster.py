"""The private PostgreSQL cluster the PostgreSQL tests run on (tests/peers/postgres.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peers.postgres import OS_USER, PgCluster, PgMissing, find_bin_dir


def _name(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_gets_a_fresh_empty_database(
    pg_cluster: PgCluster, pg_dsn: str, turn: int
) -> None:
    db = _name(pg_dsn)
    # The other turn created a table; a shared database would show it here.
    tables = pg_cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db)
    assert tables.strip() == "0"
    pg_cluster.psql(f"CREATE TABLE left_behind_{turn} (x int)", db)


def test_cluster_listens_on_loopback_with_its_socket_in_its_own_directory(
    pg_cluster: PgCluster,
) -> None:
    settings = pg_cluster.psql(
        "SELECT current_setting('listen_addresses') || ' ' || "
        "current_setting('unix_socket_directories') || ' ' || current_setting('fsync')"
    ).split()
    assert settings == ["127.0.0.1", str(pg_cluster.root), "on"]
    assert pg_cluster.dsn("x").startswith(f"postgresql://herald@127.0.0.1:{pg_cluster.port}/")


def test_server_never_runs_as_root(pg_cluster: PgCluster) -> None:
    # initdb refuses root; under uid 0 the data directory belongs to Debian's postgres user.
    owner = (pg_cluster.root / "data").stat().st_uid
    if os.geteuid() == 0:
        import pwd

        assert owner == pwd.getpwnam(OS_USER).pw_uid
    else:
        assert owner == os.geteuid()


def test_missing_binaries_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERALD_PG_BIN", str(tmp_path))
    with pytest.raises(PgMissing, match="scripts/peers"):
        find_bin_dir()
    with pytest.raises(PgMissing):
        PgCluster.start()


def test_stop_removes_the_directory_and_the_server() -> None:
    cluster = PgCluster.start()
    root = cluster.root
    assert cluster.running
    cluster.stop()
    assert not cluster.running
    assert not root.exists()


def test_a_root_only_temporary_directory_is_not_used_for_another_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peers.postgres import _RunAs, _temp_parent

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr("tempfile.tempdir", str(private))
    assert _temp_parent(_RunAs()) == str(private)  # the server runs as us: fine
    assert _temp_parent(_RunAs(uid=12345, gid=12345)) == "/tmp"


def test_a_postgres_test_fails_not_skips_without_postgresql(tmp_path: Path) -> None:
    # Run one real PostgreSQL test in a child pytest that cannot find the binaries.
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "HERALD_PG_BIN": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"{Path(__file__).relative_to(root)}::test_server_never_runs_as_root"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout
    assert "run scripts/peers" in result.stdout
