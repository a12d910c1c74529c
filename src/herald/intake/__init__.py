"""Intake validation shared by the HTTP API and the SMPP intake.

Theory of operation
-------------------
A customer's submission becomes a :class:`~herald.store.NewMessage` in four
independent checks, each a function of its input (and of ``now`` where time
matters; this package reads no clock and does no I/O), one module each:

- ``_numbers``: the destination, normalised to E.164 digits without ``+``
  (:func:`normalize_destination`, with ``phonenumbers``), then checked
  against the rules that change while herald runs (:class:`DestinationRules`:
  the operator's numbering plan and the route table); ``_networks`` holds
  those number tables (plan and ported numbers: :class:`NumberIndex`, the
  network of a number) and reads them from CSV;
- ``_sender``: an alphanumeric name, a short code or an E.164 number
  (:func:`validate_sender`);
- ``_body``: text in the cheapest (or the requested) encoding, or opaque
  octets, cut into at most 255 parts by :mod:`herald.text`
  (:func:`prepare_text`, :func:`prepare_binary`, :func:`prepare_encoded` for
  SMPP's already-coded ``short_message``);
- ``_schedule``: ``send_at`` and the expiry that follows from the validity
  period (:func:`schedule`).

``_policy`` holds the operator's settings (:class:`IntakePolicy`), ``_message``
the remaining fields and the record (:func:`build_message`), ``_errors`` the
refusals.

Every refusal is an :class:`IntakeError` naming the field it is about (in the
caller's vocabulary: ``field=`` is ``"to"`` for HTTP and may be
``"destination_addr"`` for SMPP), a stable machine-readable ``code`` and a
sentence for a human. Each subclass knows how to answer: ``http_status`` and
the SMPP 3.4 ``smpp_status`` (§5.1.3) for a submit_sm_resp.
A caller that checks several fields reports every refusal at once with
:class:`InvalidSubmission`; :func:`build_message` makes the record.

Stored forms: ``to`` is E.164 digits (``"14155552671"``), the form route
prefixes are written in. A sender is stored as the customer will see it and
its kind is recoverable from that form alone (:func:`sender_kind`): ``+``
and digits for an international number, digits for a short code, anything
else is alphanumeric.
"""

from herald.intake._account import (
    CONTROL_ENTRY_CHECKS,
    DAY_SECONDS,
    NO_ACCOUNT_RULES,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    SENDER_RULE_KINDS,
    AccountRules,
    next_quota_day,
    opt_out_keyword,
    opt_out_number,
    parse_opt_out_rows,
    quota_day,
)
from herald.intake._body import (
    Body,
    EncodingChoice,
    decode_base64,
    prepare_binary,
    prepare_encoded,
    prepare_text,
)
from herald.intake._errors import (
    IntakeError,
    InvalidBody,
    InvalidDestination,
    InvalidField,
    InvalidSchedule,
    InvalidSource,
    InvalidSubmission,
    InvalidValidity,
    TooLong,
)
from herald.intake._message import (
    build_message,
    check_callback_events,
    check_callback_url,
    check_priority,
    check_reference,
    check_tag,
    serialize_metadata,
)
from herald.intake._networks import (
    EMPTY_INDEX,
    MAX_E164_DIGITS,
    MAX_NETWORK_NAME,
    MAX_NETWORKS,
    MAX_PLAN_PREFIXES,
    MAX_PORTED_NUMBERS,
    MAX_REPORTED_PROBLEMS,
    PLAN_COLUMNS,
    PORTED_COLUMNS,
    LineProblem,
    Network,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
    Resolution,
    TableFileError,
    parse_plan,
    parse_ported,
    plan_csv,
    ported_csv,
)
from herald.intake._numbers import (
    MAX_NUMBER_INPUT_LENGTH,
    NO_RULES,
    NUMBER_CACHE_SIZE,
    DestinationRules,
    RouteCheck,
    country_of,
    normalize_destination,
)
from herald.intake._policy import (
    DEFAULT_POLICY,
    DEFAULT_VALIDITY_PERIOD,
    MAX_SCHEDULE_AHEAD,
    MAX_VALIDITY_PERIOD,
    MIN_VALIDITY_PERIOD,
    SEND_AT_SKEW,
    IntakePolicy,
)
from herald.intake._schedule import Schedule, parse_time, schedule
from herald.intake._sender import (
    MAX_ALPHANUMERIC_SEPTETS,
    MAX_SHORT_CODE_DIGITS,
    MIN_SHORT_CODE_DIGITS,
    Sender,
    SenderKind,
    sender_kind,
    validate_sender,
)

__all__ = [
    "CONTROL_ENTRY_CHECKS",
    "DAY_SECONDS",
    "DEFAULT_POLICY",
    "DEFAULT_VALIDITY_PERIOD",
    "EMPTY_INDEX",
    "MAX_ALPHANUMERIC_SEPTETS",
    "MAX_E164_DIGITS",
    "MAX_NETWORKS",
    "MAX_NETWORK_NAME",
    "MAX_NUMBER_INPUT_LENGTH",
    "MAX_PLAN_PREFIXES",
    "MAX_PORTED_NUMBERS",
    "MAX_REPORTED_PROBLEMS",
    "MAX_SCHEDULE_AHEAD",
    "MAX_SHORT_CODE_DIGITS",
    "MAX_VALIDITY_PERIOD",
    "MIN_SHORT_CODE_DIGITS",
    "MIN_VALIDITY_PERIOD",
    "NO_ACCOUNT_RULES",
    "NO_RULES",
    "NUMBER_CACHE_SIZE",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "PLAN_COLUMNS",
    "PORTED_COLUMNS",
    "SENDER_RULE_KINDS",
    "SEND_AT_SKEW",
    "AccountRules",
    "Body",
    "DestinationRules",
    "EncodingChoice",
    "IntakeError",
    "IntakePolicy",
    "InvalidBody",
    "InvalidDestination",
    "InvalidField",
    "InvalidSchedule",
    "InvalidSource",
    "InvalidSubmission",
    "InvalidValidity",
    "LineProblem",
    "Network",
    "NumberIndex",
    "NumberingPlan",
    "PortedNumbers",
    "Resolution",
    "RouteCheck",
    "Schedule",
    "Sender",
    "SenderKind",
    "TableFileError",
    "TooLong",
    "build_message",
    "check_callback_events",
    "check_callback_url",
    "check_priority",
    "check_reference",
    "check_tag",
    "country_of",
    "decode_base64",
    "next_quota_day",
    "normalize_destination",
    "opt_out_keyword",
    "opt_out_number",
    "parse_opt_out_rows",
    "parse_plan",
    "parse_ported",
    "parse_time",
    "plan_csv",
    "ported_csv",
    "prepare_binary",
    "prepare_encoded",
    "prepare_text",
    "quota_day",
    "schedule",
    "sender_kind",
    "serialize_metadata",
    "validate_sender",
]
