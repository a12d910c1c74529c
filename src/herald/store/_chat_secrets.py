"""The one-time codes a chain's legs hold, and their erasure (private; both stores).

A leg may carry a one-time code: an authentication template's ``code`` (its
content, :func:`herald.chat.content_json`), and the SMS a Verify chain falls
back to (its prepared message, tagged :data:`~herald.store.VERIFY_TAG`: the
text holds the code) until the leg starts. Both are needed only until the
chain is final; then ``Store.purge`` empties them (the code becomes ``""``,
the SMS's body empty; the rest of the leg stays), as it empties the text of a
final Verify SMS. A chain's view never shows either.

Each store has a partial index of the legs not yet erased (SQLite
``_V25_CHAT_SECRETS``, PostgreSQL ``_V16_CHAT_SECRETS``), so the purge reads
those, not the history; the predicates here are the indexes' own.
"""

from __future__ import annotations

from typing import Final

from herald.store._model import VERIFY_TAG

__all__ = ["ERASE_CHAT_SECRETS_PG", "ERASE_CHAT_SECRETS_SQLITE", "PG_CHAT_SECRET",
           "SQLITE_CHAT_SECRET"]

_SQLITE_CODE: Final = "json_extract(content, '$.code') <> ''"
_SQLITE_SMS: Final = (f"(channel = 'sms' AND json_extract(sms, '$.tag') = '{VERIFY_TAG}'"
                      " AND json_extract(sms, '$.body') <> '')")
#: A leg that holds a code not yet erased (SQLite; the index's predicate).
SQLITE_CHAT_SECRET: Final = f"({_SQLITE_CODE} OR {_SQLITE_SMS})"
#: Erase the codes of the legs of final chains; its row count is the legs erased.
ERASE_CHAT_SECRETS_SQLITE: Final = (
    f"UPDATE chat_legs SET content = CASE WHEN {_SQLITE_CODE}"
    " THEN json_set(content, '$.code', '') ELSE content END,"
    f" sms = CASE WHEN {_SQLITE_SMS} THEN json_set(sms, '$.body', '') ELSE sms END"
    " WHERE (chain_seq, leg) IN (SELECT l.chain_seq, l.leg FROM chat_legs l"
    " INDEXED BY chat_legs_secret JOIN chat_chains c ON c.seq = l.chain_seq"
    f" WHERE {SQLITE_CHAT_SECRET} AND c.done_at IS NOT NULL)")  # chat_chains has no such columns

_PG_CODE: Final = "(content::jsonb ->> 'code') <> ''"
_PG_SMS: Final = (f"(channel = 'sms' AND (sms::jsonb ->> 'tag') = '{VERIFY_TAG}'"
                  " AND (sms::jsonb ->> 'body') <> '')")
#: A leg that holds a code not yet erased (PostgreSQL; the index's predicate).
PG_CHAT_SECRET: Final = f"({_PG_CODE} OR {_PG_SMS})"
#: As :data:`ERASE_CHAT_SECRETS_SQLITE`, on PostgreSQL.
ERASE_CHAT_SECRETS_PG: Final = (
    f"UPDATE chat_legs SET content = CASE WHEN {_PG_CODE}"
    " THEN jsonb_set(content::jsonb, '{code}', '\"\"')::text ELSE content END,"
    f" sms = CASE WHEN {_PG_SMS} THEN jsonb_set(sms::jsonb, '{{body}}', '\"\"')::text"
    " ELSE sms END"
    f" FROM chat_chains c WHERE c.seq = chat_legs.chain_seq AND c.done_at IS NOT NULL"
    f" AND {PG_CHAT_SECRET}")
