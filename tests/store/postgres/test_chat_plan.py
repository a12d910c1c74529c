"""The chat polls' plans with many finished chains: each reads its partial index.

The send loop (``claim_chat_legs``) and the SMS-leg loop (``sms_leg_changes``)
run every few hundred milliseconds on every node; with a long history of
finished chains a scan of ``chat_legs`` would make each poll cost the
history's size. This test fills finished chains (one ``INSERT ... SELECT
generate_series``, a few seconds), some of them live, and reads the plan of
each statement, as planned for these values and as the generic plan of a
prepared statement (asyncpg's). (``chat_timers`` holds only live timers: a
change that consumes or cancels one deletes it.)
"""

from __future__ import annotations

import json
from typing import Any

from herald.store import Status
from herald.store.postgres import connection
from herald.store.postgres._chat import _CLAIM_LEGS, _SMS_LEG_CHANGES

from .history import fill_finished

FINISHED = 100_000
LIVE = 50
T0 = 1_800_000_000.0

#: Finished chains: a WhatsApp leg read, an SMS leg whose message (history.py's
#: ids) ended; but LIVE of them with a WhatsApp leg to send and an SMS leg to follow.
_FILL = f"""
WITH c AS (
    INSERT INTO chat_chains (id, account_id, to_addr, status, created_at)
    SELECT 'c' || g, 1, '+447700900123', {int(Status.DELIVERED)}, {T0}
    FROM generate_series(1, $1::int) AS g
    RETURNING seq
)
INSERT INTO chat_legs (chain_seq, leg, channel, sender, content, success, state,
                           message_id, sms_status)
    SELECT seq, 0, 'whatsapp', '1065550001', '{{}}', 'read',
        CASE WHEN seq % ($1 / {LIVE}) = 0 THEN 'pending' ELSE 'read' END, NULL, 0 FROM c
    UNION ALL
    SELECT seq, 1, 'sms', 'ACME', NULL, 'delivered', 'pending', seq::text,
        CASE WHEN seq % ($1 / {LIVE}) = 0 THEN 0 ELSE {int(Status.DELIVERED)} END FROM c
"""


def _scans(plan: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(node type, relation, index) of every scan in a JSON plan; a bitmap
    heap scan names the index of its bitmap index scan."""
    found = []
    if "Relation Name" in plan and plan["Node Type"] != "ModifyTable":
        index = plan.get("Index Name")
        if plan["Node Type"] == "Bitmap Heap Scan":
            index = next((p.get("Index Name") for p in plan.get("Plans", ())), None)
        found.append((plan["Node Type"], plan["Relation Name"], index))
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


async def test_the_chat_polls_read_their_indexes_not_the_history(pg_store_dsn: str) -> None:
    async with connection(pg_store_dsn) as conn:
        await conn.execute("INSERT INTO accounts (id, name, created_at, rate_limit, bind_limit)"
                           f" VALUES (1, 'acme', {T0}, 100, 2)")  # fmt: skip
        await fill_finished(conn, FINISHED, T0)
        await conn.execute(_FILL, FINISHED)
        await conn.execute("ANALYZE messages; ANALYZE chat_chains; ANALYZE chat_legs")
        await conn.execute("PREPARE legs(float8, float8, int) AS " + _CLAIM_LEGS)
        await conn.execute("PREPARE sms(int) AS " + _SMS_LEG_CHANGES)
        polls = {
            f"legs({T0}, 60, 50)": ("chat_legs", "chat_legs_to_submit"),
            "sms(50)": ("chat_legs", "chat_legs_sms_live"),
        }
        read_by_key = {"chat_chains", "messages", "dispatch_queue"}
        for plan_mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {plan_mode}")
            for call, (table, index) in polls.items():
                explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {call}")
                every = _scans(json.loads(explained)[0]["Plan"])
                scans = [s for s in every if s[1] == table]
                assert any(s[2] == index for s in scans), (plan_mode, call, every)
                # The rest by key, never a scan of a table as big as the history.
                assert not any(s[0] == "Seq Scan" for s in every), (plan_mode, call, every)
                assert all(s[2] is not None for s in every if s[1] in read_by_key), every
