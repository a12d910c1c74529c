"""Provider codes map to herald's error codes and to the class dispatch acts on."""

from __future__ import annotations

from herald.channels import (
    WHATSAPP_ERRORS,
    WHATSAPP_STATUSES,
    ChannelErrorCode,
    ErrorClass,
    LegEvent,
    whatsapp_error,
)
from herald.dispatch import ErrorCode
from herald.smpp.constants import CommandStatus


def test_window_closed_and_throughput_are_what_the_issue_names() -> None:
    assert whatsapp_error(131047).code is ChannelErrorCode.WINDOW_CLOSED
    assert whatsapp_error(131047).permanent
    assert whatsapp_error(130429).klass is ErrorClass.THROTTLED
    assert whatsapp_error(131026).code is ChannelErrorCode.NOT_ON_CHANNEL
    assert whatsapp_error(132001).code is ChannelErrorCode.TEMPLATE_REJECTED


def test_an_unknown_code_is_transient_not_a_lost_message() -> None:
    meaning = whatsapp_error(999_999)
    assert meaning.code is ChannelErrorCode.PROVIDER_ERROR
    assert meaning.klass is ErrorClass.TRANSIENT


def test_channel_codes_never_collide_with_smpp_or_dispatch_codes() -> None:
    ours = {int(c) for c in ChannelErrorCode}
    assert not ours & {int(c) for c in ErrorCode}
    assert not ours & {int(c) for c in CommandStatus}
    assert min(ours) > max(int(c) for c in ErrorCode)


def test_every_whatsapp_status_word_maps_to_a_provider_event() -> None:
    assert WHATSAPP_STATUSES["read"] is LegEvent.READ
    assert set(WHATSAPP_STATUSES.values()) <= {
        LegEvent.SENT, LegEvent.DELIVERED, LegEvent.READ, LegEvent.FAILED}
    assert "deleted" not in WHATSAPP_STATUSES
    assert all(isinstance(code, int) for code in WHATSAPP_ERRORS)
