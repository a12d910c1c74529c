"""Fixtures for the store contract suite.

``store`` yields every shipped :class:`~herald.store.Store` implementation,
opened on a fresh, real database: SQLite files in a tmp dir, and a fresh
database on the session's private PostgreSQL cluster for the modules in
:data:`POSTGRES_MODULES` (the PostgreSQL store implements the port part by
part; a module joins when its part is done). Contract tests use only the
Protocol. A missing PostgreSQL fails those tests (tests/conftest.py).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import Account, NewMessage, Source, SQLiteConfig, SQLiteStore, Store

T0 = 1_800_000_000.0  # a fixed "now" for tests; the store never reads a clock

#: Test modules whose part of the port the PostgreSQL store implements.
POSTGRES_MODULES = frozenset({
    "test_contract_accounts", "test_contract_admin", "test_contract_backlog",
    "test_contract_batches", "test_contract_billing", "test_contract_chat",
    "test_contract_fraud", "test_contract_numbers", "test_contract_priority",
    "test_contract_receipt_checks", "test_contract_routing", "test_contract_verify",
    "test_lifecycle",
})
#: And tests of other modules that use only what it implements, by module.
POSTGRES_TESTS: dict[str, frozenset[str]] = {
    "test_contract_cancel": frozenset({
        "test_a_cancel_is_reported_by_webhook_and_smpp_receipt",
        "test_only_the_accounts_own_messages_can_be_cancelled",
        "test_cancel_matching_by_reference",
        "test_cancel_matching_narrows_by_tag",
        "test_replace_keeps_what_it_does_not_name_and_refuses_an_empty_validity",
        "test_a_scheduled_message_is_cancelled_and_never_claimed",
        "test_a_claimed_message_is_in_progress_until_its_claim_ends",
        "test_a_single_reschedule_releases_the_claim",
        "test_a_claim_and_a_cancel_never_both_win",
    }),
    # All of the module (quotas at acceptance: _messages calls _controls.count_quota).
    "test_contract_controls": frozenset({
        "test_the_quota_at_its_boundary",
        "test_concurrent_accepts_never_pass_the_quota",
        "test_the_quota_counts_segments_and_days_apart",
        "test_an_idempotent_replay_counts_nothing",
        "test_controls_round_trip_and_default",
        "test_controls_records_check_their_bounds",
        "test_opt_outs_change_and_are_followed_by_seq",
        "test_opt_outs_are_listed_in_pages_by_number",
        "test_each_change_in_a_batch_counts_and_the_last_one_stays",
        "test_an_inbound_stop_is_stored_with_its_opt_out",
    }),
    "test_contract_messages": frozenset({
        "test_accepted_message_reads_back_as_written",
        "test_unknown_or_foreign_message_is_not_found",
        "test_many_messages_read_back_at_once",
        "test_accept_is_all_or_nothing",
        "test_concurrent_writers_are_answered_only_after_commit",
        "test_status_never_moves_backwards_whatever_the_order",
        "test_concurrent_updates_to_one_message_keep_the_first_final",
        "test_each_stage_keeps_its_own_timestamp",
        "test_a_message_cannot_be_moved_back_to_accepted",
        "test_a_message_is_sent_then_delivered_when_all_its_segments_are",
        "test_one_undelivered_segment_ends_the_message",
        "test_a_receipt_that_beats_the_submit_response_is_parked_then_applied",
        "test_parked_receipts_apply_in_arrival_order",
        "test_a_non_final_receipt_changes_nothing",
        "test_receipts_match_within_their_connector_only",
        "test_a_resent_segment_takes_its_new_upstream_id",
        "test_a_segment_index_beyond_the_count_is_not_recorded",
        "test_sent_messages_without_a_receipt_expire_after_the_cutoff",
        "test_listing_pages_through_an_accounts_messages_newest_first",
        "test_listing_filters_by_status_number_reference_and_time",
        "test_a_forged_cursor_is_refused",
        "test_a_cursor_says_nothing_about_other_accounts",
        "test_inbound_messages_are_stored_once",
        "test_recent_messages_look_only_at_the_newest_window",
        "test_claim_hands_out_ready_messages_once_per_lease",
        "test_claim_respects_its_limit_and_due_order",
        "test_concurrent_claims_never_share_a_message",
        "test_sent_and_test_messages_are_never_claimed",
        "test_reschedule_returns_a_claim_for_later",
        "test_a_stale_claimer_cannot_release_a_newer_claim",
        "test_a_message_past_its_validity_expires_instead_of_being_claimed",
        "test_an_idempotency_key_replays_the_first_answer_for_a_day",
        "test_idempotency_keys_belong_to_one_account",
    }),
    "test_contract_outbox": frozenset({  # all but inbound messages' (add_inbound)
        "test_webhook_events_for_sent_and_final_statuses",
        "test_account_subscription_settings_round_trip",
        "test_outbox_claims_lease_retry_and_complete",
        "test_outbox_claims_can_be_limited_to_one_account",
        "test_inbound_messages_raise_webhook_and_smpp_events",
        "test_a_claimed_event_carries_its_subject",
        "test_a_new_account_hears_of_final_statuses_only",
        "test_a_message_overrides_its_accounts_subscription",
        "test_webhooks_fall_back_to_the_accounts_url",
        "test_segment_receipts_raise_the_events_of_their_message",
        "test_smpp_receipts_follow_registered_delivery",
        "test_purge_forgets_what_is_no_longer_needed",
        "test_commits_that_write_events_wake_their_watchers",
        "test_commits_that_end_messages_count_them_by_status",
        "test_failed_deliveries_are_the_events_with_an_error_still_kept",
    }),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" not in metafunc.fixturenames:
        return
    kinds: list[Any] = ["sqlite", "sqlite-loop-writer"]
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in POSTGRES_MODULES or metafunc.function.__name__ in POSTGRES_TESTS.get(
            module, ()):
        kinds.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    metafunc.parametrize("store", kinds, indirect=True)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Any
    if request.param == "sqlite":
        opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    elif request.param == "sqlite-loop-writer":  # commits on the event loop (herald serve's)
        opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop"))
    elif request.param == "postgresql":  # the port's part it implements (POSTGRES_MODULES)
        from herald.store.postgres import PostgresStore

        opened = await PostgresStore.open(request.getfixturevalue("pg_store_dsn"))
    else:  # pragma: no cover - new implementations add a branch here
        raise AssertionError(request.param)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def account(store: Store) -> Account:
    return await store.create_account("acme", T0, rate_limit=100.0, bind_limit=2)


MessageFactory = Callable[..., NewMessage]


@pytest.fixture
def make_message(account: Account) -> MessageFactory:
    ids = SortableIdGenerator()
    counter = itertools.count()

    def make(**fields: Any) -> NewMessage:
        n = next(counter)
        accepted_at = fields.pop("accepted_at", T0 + n * 0.001)
        values: dict[str, Any] = {
            "id": ids.new_id(accepted_at),
            "account_id": account.id,
            "source": Source.HTTP,
            "to": f"+4477009{n:05d}",
            "sender": "ACME",
            "body": f"code {n}".encode(),
            "encoding": "gsm7",
            "data_coding": 0,
            "segments": 1,
            "accepted_at": accepted_at,
            "expires_at": accepted_at + 3600,
        }
        values.update(fields)
        return NewMessage(**values)

    return make
