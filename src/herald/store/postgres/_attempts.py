"""A message's failed submit and webhook attempts on PostgreSQL (private).

:class:`PostgresAttempts` gives :class:`~herald.store.postgres.PostgresStore`
``record_failed_submits`` and ``message_attempts``; the webhook attempts ride
in the outbox's own statements (:data:`RETRY_ANSWERED`, :data:`DONE_ANSWERED`:
the outbox change and the attempt's insert are one statement, one round
trip), as the SQLite store's do (``store/_sqlite_attempts.py``). The bound of
:data:`MAX_ATTEMPTS_KEPT` failures per message is counted by each insert: two
nodes inserting for one message at once may pass it by one each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
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
from herald.store.postgres._part import StorePart

__all__ = ["DONE_ANSWERED", "PURGE_ATTEMPTS", "RETRY_ANSWERED", "PostgresAttempts",
           "done_arrays", "retry_args"]

_SUBMIT, _WEBHOOK = int(AttemptKind.SUBMIT), int(AttemptKind.WEBHOOK)
_COLUMNS = "message_id, kind, at, number, target, answer, ok, part, reported"
_ROOM = ("(SELECT count(*) FROM attempts a WHERE a.message_id = {id} AND NOT a.ok)"
         f" < {MAX_ATTEMPTS_KEPT}")
_EVENT = f"{{e}}.kind = {int(EventKind.STATUS)} AND {{e}}.channel = {int(Channel.WEBHOOK)}"

# $1 message id, $2 part, $3 at, $4 connector, $5 answer. Numbered per part.
_INSERT_SUBMIT: Final = f"""
INSERT INTO attempts ({_COLUMNS})
SELECT $1::text, {_SUBMIT}, $3::float8, 1 + (SELECT count(*) FROM attempts
    WHERE message_id = $1::text AND kind = {_SUBMIT} AND part = $2::integer),
    $4::text, $5::text, false, $2::integer, NULL
WHERE {_ROOM.format(id="$1::text")}
"""
#: ``retry_outbox`` with an answer: $1 id, $2 next attempt, $3 error, $4 target,
#: $5 answer, $6 at. The attempt's number is the event's claim count.
RETRY_ANSWERED: Final = f"""
WITH o AS (
    UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1
    RETURNING subject_id, kind, channel, status, attempts
)
INSERT INTO attempts ({_COLUMNS})
SELECT o.subject_id, {_WEBHOOK}, $6::float8, o.attempts, $4::text, $5::text, false, NULL,
    o.status
FROM o WHERE {_EVENT.format(e="o")} AND {_ROOM.format(id="o.subject_id")}
"""
#: ``complete_outbox`` with answers: $1 every id; $2..$5 the answered ones' ids,
#: targets, answers and times, read from each event as it is deleted.
DONE_ANSWERED: Final = f"""
WITH d AS (
    DELETE FROM outbox WHERE id = ANY ($1::bigint[])
    RETURNING id, subject_id, kind, channel, status, attempts
)
INSERT INTO attempts ({_COLUMNS})
SELECT d.subject_id, {_WEBHOOK}, a.at, d.attempts, a.target, a.answer, true, NULL, d.status
FROM d JOIN unnest($2::bigint[], $3::text[], $4::text[], $5::float8[])
    AS a (id, target, answer, at) ON a.id = d.id
WHERE {_EVENT.format(e="d")}
"""
#: Store.purge: attempts as old as the given-up outbox events it deletes.
PURGE_ATTEMPTS: Final = "DELETE FROM attempts WHERE at < $1"
_READ: Final = f"SELECT {_COLUMNS} FROM attempts WHERE message_id = $1 ORDER BY at, id"


def _text(name: str, value: str, limit: int) -> str:
    if not value:
        raise InvalidRecord(name, "must not be empty")
    return value[:limit]


def retry_args(answer: WebhookAnswer) -> tuple[str, str, float]:
    """:data:`RETRY_ANSWERED`'s $4..$6."""
    return (_text("target", answer.target, MAX_TARGET_LENGTH),
            _text("answer", answer.answer, MAX_ANSWER_LENGTH), answer.at)


def done_arrays(event_ids: Sequence[int],
                answers: Mapping[int, WebhookAnswer]) -> list[list[Any]]:
    """:data:`DONE_ANSWERED`'s $2..$5 for the events among ``event_ids`` answered."""
    arrays: list[list[Any]] = [[], [], [], []]
    for i in event_ids:
        a = answers.get(i)
        if a is not None:
            for array, value in zip(arrays, (i, *retry_args(a)), strict=True):
                array.append(value)
    return arrays


class PostgresAttempts(StorePart):
    """The attempt methods of :class:`~herald.store.postgres.PostgresStore`."""

    def record_failed_submits(self, failures: Sequence[SubmitFailure]) -> Awaitable[None]:
        rows = []
        for f in failures:  # checked at the call, as the SQLite store does
            if f.part < 0:
                raise InvalidRecord("part", "must be 0 or more")
            rows.append((f.message_id, f.part, f.at,
                         _text("connector", f.connector, MAX_TARGET_LENGTH),
                         _text("answer", f.answer, MAX_ANSWER_LENGTH)))
        return self._insert_submits(rows)

    async def _insert_submits(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:  # one by one in one transaction: each counts the ones before it
            await self._run(lambda c: c.executemany(_INSERT_SUBMIT, rows))

    async def message_attempts(self, message_id: str) -> tuple[Attempt, ...]:
        rows = await self._one(lambda c: c.fetch(_READ, message_id))
        return tuple(
            Attempt(AttemptKind(r["kind"]), r["at"], r["number"], r["target"], r["answer"],
                    r["ok"], r["part"], None if r["reported"] is None else Status(r["reported"]))
            for r in rows)
