"""A message's failed submit and webhook attempts on SQLite (private).

:class:`SQLiteAttempts` gives :class:`~herald.store.SQLiteStore`
``record_failed_submits`` and ``message_attempts``; the webhook attempts ride
in the outbox's own writes (:data:`G_OUTBOX_RETRY_ANSWERED`,
:data:`G_OUTBOX_DONE_ANSWERED`: one row feeds the outbox statement and the
attempt's insert, in the same ``executemany`` of the same transaction), so a
failed POST costs no write of its own. Every insert is bounded by
:data:`MAX_ATTEMPTS_KEPT` failures per message, counted on the
``attempts_message`` index (a message's rows, at most a few dozen).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Sequence
from typing import Any, Final

from herald.store._errors import InvalidRecord
from herald.store._model import Channel, EventKind, Status
from herald.store._model_attempts import (
    MAX_ANSWER_LENGTH,
    MAX_ATTEMPTS_KEPT,
    MAX_TARGET_LENGTH,
    Attempt,
    AttemptKind,
    SubmitFailure,
    WebhookAnswer,
)
from herald.store._sqlite_conn import Readers
from herald.store._sqlite_sql import OUTBOX_DONE, OUTBOX_RETRY, never
from herald.store._writer import Group, GroupCommitWriter

__all__ = [
    "G_OUTBOX_DONE_ANSWERED",
    "G_OUTBOX_RETRY_ANSWERED",
    "PURGE_ATTEMPTS",
    "SQLiteAttempts",
    "answer_text",
    "done_rows",
]

_SUBMIT, _WEBHOOK = int(AttemptKind.SUBMIT), int(AttemptKind.WEBHOOK)
_COLUMNS = "message_id, kind, at, number, target, answer, ok, part, reported"
_ROOM = ("(SELECT count(*) FROM attempts WHERE message_id = {id} AND ok = 0)"
         f" < {MAX_ATTEMPTS_KEPT}")

# ?1 message id, ?2 part, ?3 at, ?4 connector, ?5 answer. Numbered per part.
_INSERT_SUBMIT: Final = (
    f"INSERT INTO attempts ({_COLUMNS}) SELECT ?1, {_SUBMIT}, ?3, 1 + (SELECT count(*)"
    f" FROM attempts WHERE message_id = ?1 AND kind = {_SUBMIT} AND part = ?2),"
    f" ?4, ?5, 0, ?2, NULL WHERE {_ROOM.format(id='?1')}"
)
# ?1 outbox id, ?2 target, ?3 answer, ?4 at: an attempt of a message's webhook
# event, numbered by the event's claims (read before the outbox row changes).
_FROM_EVENT = (
    f"INSERT INTO attempts ({_COLUMNS}) SELECT o.subject_id, {_WEBHOOK}, ?4, o.attempts,"
    " ?2, ?3, {ok}, NULL, o.status FROM outbox o WHERE o.id = ?1"
    f" AND o.kind = {int(EventKind.STATUS)} AND o.channel = {int(Channel.WEBHOOK)}"
)
_INSERT_WEBHOOK_FAILURE: Final = (
    _FROM_EVENT.format(ok=0) + " AND " + _ROOM.format(id="o.subject_id"))
_INSERT_WEBHOOK_SUCCESS: Final = _FROM_EVENT.format(ok=1)

G_FAILED_SUBMITS: Final = Group("failed-submits", 10, (_INSERT_SUBMIT,), never, steps=False)
#: ``retry_outbox`` with an answer: row (id, next_attempt_at, error, id, target, answer, at).
G_OUTBOX_RETRY_ANSWERED: Final = Group(
    "outbox-retry-answered", 9, (OUTBOX_RETRY, _INSERT_WEBHOOK_FAILURE), never,
    columns=(slice(0, 3), slice(3, 7)), steps=False)
#: ``complete_outbox`` of an event that failed before: row (id, target, answer, at);
#: the attempt is read from the event before it is forgotten.
G_OUTBOX_DONE_ANSWERED: Final = Group(
    "outbox-done-answered", 8, (_INSERT_WEBHOOK_SUCCESS, OUTBOX_DONE), never,
    columns=(slice(0, 4), slice(0, 1)), steps=False)
#: Store.purge: attempts as old as the given-up outbox events it deletes.
PURGE_ATTEMPTS: Final = "DELETE FROM attempts WHERE at < ?"
_READ: Final = f"SELECT {_COLUMNS} FROM attempts WHERE message_id = ? ORDER BY at, rowid"


def answer_text(answer: WebhookAnswer) -> tuple[str, str]:
    """``answer``'s target and answer as stored: checked, and cut to their limits."""
    return _text("target", answer.target, MAX_TARGET_LENGTH), \
        _text("answer", answer.answer, MAX_ANSWER_LENGTH)


def _text(name: str, value: str, limit: int) -> str:
    if not value:
        raise InvalidRecord(name, "must not be empty")
    return value[:limit]


def done_rows(answers: dict[int, WebhookAnswer]) -> list[tuple[object, ...]]:
    """Rows of :data:`G_OUTBOX_DONE_ANSWERED`."""
    return [(event_id, *answer_text(a), a.at) for event_id, a in answers.items()]


class SQLiteAttempts:
    """The attempt methods of :class:`~herald.store.SQLiteStore`."""

    _readers: Readers
    _writer: GroupCommitWriter

    def record_failed_submits(self, failures: Sequence[SubmitFailure]) -> Awaitable[None]:
        rows = []
        for f in failures:
            if f.part < 0:
                raise InvalidRecord("part", "must be 0 or more")
            rows.append((f.message_id, f.part, f.at,
                         _text("connector", f.connector, MAX_TARGET_LENGTH),
                         _text("answer", f.answer, MAX_ANSWER_LENGTH)))
        if rows:  # queued now: it commits with the writes of the moment
            return self._writer.submit(G_FAILED_SUBMITS, rows, len(rows))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def message_attempts(self, message_id: str) -> tuple[Attempt, ...]:
        def read(conn: sqlite3.Connection) -> tuple[Attempt, ...]:
            return tuple(_attempt(r) for r in conn.execute(_READ, (message_id,)))

        return await self._readers.run(read)


def _attempt(r: Any) -> Attempt:
    _, kind, at, number, target, answer, ok, part, reported = r
    return Attempt(AttemptKind(kind), at, number, target, answer, bool(ok), part,
                   None if reported is None else Status(reported))
