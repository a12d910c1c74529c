"""The PostgreSQL store (issue 10): several herald nodes on one PostgreSQL cluster.

Importing this package needs no driver; the modules that talk to the database
import asyncpg (``pip install 'herald[postgresql]'``).
"""

from __future__ import annotations

from herald.store.postgres._schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]
