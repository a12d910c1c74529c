"""PostgreSQL migrations and ``herald db migrate`` on a real server."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from herald.cli import main
from herald.store import SchemaError
from herald.store.postgres import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLE_SETTINGS,
    connection,
    migrate,
    redact,
    schema_version,
)
from herald.store.sqlite import DB_FILENAME
from peers.postgres import PgCluster, free_port


async def test_migrate_creates_the_schema_once(pg_dsn: str) -> None:
    async with connection(pg_dsn) as conn:
        assert await schema_version(conn) == 0
        assert await migrate(conn) == (0, SCHEMA_VERSION)
        assert await migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing to do
        assert await schema_version(conn) == SCHEMA_VERSION
        tables = {
            r["relname"]: r["reloptions"]
            for r in await conn.fetch(
                "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])",
                list(TABLE_SETTINGS),
            )
        }
    assert set(tables) == set(TABLE_SETTINGS)
    for table, settings in TABLE_SETTINGS.items():
        wanted = {s.replace(" ", "") for s in settings.split(",")}
        assert set(tables[table]) == wanted, table


async def test_a_database_from_before_v22_gets_messages_vacuumed_by_share(pg_dsn: str) -> None:
    # V22: a database made by V1's "every 20,000 changes" for messages is moved
    # to a share of the table (each vacuum passes over all its indexes).
    async with connection(pg_dsn) as conn:
        await migrate(conn, MIGRATIONS[:21])
        before = set(await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE relname = 'messages'"))
        assert "autovacuum_vacuum_scale_factor=0" in before
        await migrate(conn)
        after = set(await conn.fetchval(
            "SELECT reloptions FROM pg_class WHERE relname = 'messages'"))
    assert after == {s.replace(" ", "") for s in TABLE_SETTINGS["messages"].split(",")}
    assert "autovacuum_vacuum_scale_factor=0.05" in after
    assert "autovacuum_analyze_scale_factor=1" in after


async def test_nodes_migrating_at_once_apply_each_migration_once(pg_dsn: str) -> None:
    async def one() -> tuple[int, int]:
        async with connection(pg_dsn) as conn:
            return await migrate(conn)

    results = await asyncio.gather(*(one() for _ in range(4)))
    # Exactly one node found version 0; the others waited on the lock and found
    # the work done, or took over after a migration (each is its own
    # transaction): a migration applied twice would fail (CREATE TABLE).
    assert [before for before, _after in results].count(0) == 1
    assert {after for _before, after in results} == {SCHEMA_VERSION}


async def test_a_failed_migration_leaves_the_previous_version(pg_dsn: str) -> None:
    broken = (*MIGRATIONS, "CREATE TABLE half_done (x int); SELECT no_such_function();")
    async with connection(pg_dsn) as conn:
        with pytest.raises(SchemaError, match=f"migration {len(broken)} failed"):
            await migrate(conn, broken)
        assert await schema_version(conn) == SCHEMA_VERSION  # the good ones stayed
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None


async def test_a_newer_database_is_refused(pg_dsn: str) -> None:
    async with connection(pg_dsn) as conn:
        await migrate(conn)
        with pytest.raises(SchemaError, match="upgrade herald"):
            await migrate(conn, MIGRATIONS[:-1] if len(MIGRATIONS) > 1 else ())


def test_cli_migrates_and_says_from_what_to_what(
    pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "migrate", "--store", pg_dsn]) == 0
    assert f"schema version 0 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["db", "migrate", "--store", pg_dsn]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite:///var/lib/herald", "not a PostgreSQL URL"),
        ("postgresql://127.0.0.1:5", "names no database"),
    ],
)
def test_cli_refuses_a_url_it_cannot_migrate(
    url: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "migrate", "--store", url]) == 2
    assert error in capsys.readouterr().err


def test_cli_reports_an_unreachable_server_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://herald:s3cret-pw@127.0.0.1:{free_port()}/herald"
    assert main(["db", "migrate", "--store", url]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to postgresql://herald:***@127.0.0.1:" in err
    assert "s3cret-pw" not in err


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql://u:pw@h:5432/db?sslmode=require") == (
        "postgresql://u:***@h:5432/db?sslmode=require"
    )
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_connections_commit_synchronously(pg_store_dsn: str, pg_cluster: PgCluster) -> None:
    pg_cluster.psql(f"ALTER DATABASE {pg_store_dsn.rsplit('/', 1)[1]} SET synchronous_commit = off")
    async with connection(pg_store_dsn) as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


def test_serve_refuses_a_url_that_is_not_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    # (An incomplete port's refusal: tests/service/test_serve_postgres.py.)
    assert main(["serve", "--demo", "--store", "mysql://herald:pw@db/herald"]) == 2
    err = capsys.readouterr().err
    assert "is not a PostgreSQL URL" in err
    assert "pw@" not in err


async def test_no_index_on_messages_involves_status(pg_store_dsn: str) -> None:
    # An index on status, or a partial index whose predicate reads it, makes
    # every transition of a message a non-HOT update (every index rewritten).
    async with connection(pg_store_dsn) as conn:
        definitions = [
            r["def"]
            for r in await conn.fetch(
                "SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index"
                " WHERE indrelid = 'messages'::regclass"
            )
        ]
    assert definitions  # the table has indexes (the primary key at least)
    assert [d for d in definitions if "status" in d] == []


#: SQLite columns that PostgreSQL keeps in dispatch_queue instead (the claim state).
CLAIM_STATE = {"due_at", "lease_until"}


async def test_tables_mirror_the_sqlite_stores_columns(pg_store_dsn: str, tmp_path: Path) -> None:
    # One row mapper by name serves both stores only while the names agree.
    from herald.store import SQLiteConfig, SQLiteStore
    from herald.store._sqlite_sql import MESSAGE
    from herald.store.postgres._sql import MESSAGE_COLUMNS

    sqlite_store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path))
    await sqlite_store.aclose()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as db:
        lite = {
            table: {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for table in ("messages", "segments", "outbox")
        }
    async with connection(pg_store_dsn) as conn:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_name = ANY($1::text[])", list(lite)
        )
    pg: dict[str, set[str]] = {table: set() for table in lite}
    for r in rows:
        pg[r["table_name"]].add(r["column_name"])
    assert pg["messages"] == lite["messages"] - CLAIM_STATE
    assert pg["segments"] == lite["segments"]
    assert pg["outbox"] == lite["outbox"]
    assert MESSAGE.names == MESSAGE_COLUMNS
