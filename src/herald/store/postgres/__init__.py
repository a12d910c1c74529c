"""The PostgreSQL store (issue 10): several herald nodes on one PostgreSQL cluster.

Importing this package needs no driver; calls that reach the database import
asyncpg (``pip install 'herald[postgresql]'``).

What exists so far: the schema and its migrations (``herald db migrate``), the
dispatch loop's core (:class:`DispatchQueue`: accept, claim, complete,
release, requeue), the history's day partitions (:class:`HistoryPartitions`:
retention is a DROP), and the message lifecycle (triggers from
``store/lifecycle.py``) with the part of the :class:`~herald.store.Store` port
it needs (:class:`PostgresStore`). ``herald serve --store URL`` runs on it
once :class:`PostgresStore` has the whole port (:func:`serve_refusal` names
what it lacks until then).
"""

from __future__ import annotations

from herald.store.postgres._conn import (
    check_url,
    connect,
    connection,
    create_pool,
    is_postgres_url,
    migrate,
    redact,
    schema_version,
)
from herald.store.postgres._history import HISTORY_TABLES, HistoryPartitions, Maintenance
from herald.store.postgres._lifecycle import install as install_lifecycle
from herald.store.postgres._queue import (
    MAX_CLAIM,
    Claim,
    Completion,
    DispatchQueue,
    message_from_record,
)
from herald.store.postgres._schema import MIGRATIONS, SCHEMA_VERSION, TABLE_SETTINGS
from herald.store.postgres._serve import missing_methods, open_served, serve_refusal
from herald.store.postgres._store import PostgresStore

__all__ = [
    "HISTORY_TABLES",
    "MAX_CLAIM",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLE_SETTINGS",
    "Claim",
    "Completion",
    "DispatchQueue",
    "HistoryPartitions",
    "Maintenance",
    "PostgresStore",
    "check_url",
    "connect",
    "connection",
    "create_pool",
    "install_lifecycle",
    "is_postgres_url",
    "message_from_record",
    "migrate",
    "missing_methods",
    "open_served",
    "redact",
    "schema_version",
    "serve_refusal",
]
