"""A decision of the pumping defence as the API shows it, and the answer to a
block (docs/fraud.md, "Live").

Why 403 and not 429 for a block: 429 means "this client sends too fast, retry
after a while", and clients (and SDKs) retry it by themselves, which is what
a pumping bot wants and a real user cannot fix. A block refuses this SMS to
this destination (the customer's deny list, a ceiling, or a range the
defence closed): the customer's app should tell the user that no code can be
sent, not retry. The problem names the reason and carries the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from herald.store import FraudDecision
from herald.webhooks import decision_view

from ._problems import ApiProblem, FieldError

__all__ = ["blocked", "decision_view", "fraud_error"]

#: What a block answers, by the code of its reason.
_DETAIL: Final[Mapping[str, str]] = {
    "deny_list": "the number is on the account's deny list",
    "country_ceiling": "the account's ceiling for the country is reached for today",
}


def _detail(d: FraudDecision) -> tuple[str, str]:
    reason = d.reasons[-1].code if d.reasons else "blocked"
    return reason, _DETAIL.get(reason, "the pumping defence refused an SMS to this destination"
                                       f" ({reason}); nothing was sent or charged")  # fmt: skip


def blocked(d: FraudDecision) -> ApiProblem:
    """The 403 of a blocked SMS (see the module docstring for why 403)."""
    reason, detail = _detail(d)
    return ApiProblem(403, "fraud-blocked", detail, extra={"reason": reason,
                                                           "decision": decision_view(d)})


def fraud_error(d: FraudDecision, path: tuple[str | int, ...]) -> FieldError:
    """A batch item's refusal by the defence (code ``fraud_blocked``, at ``path``)."""
    reason, detail = _detail(d)
    return FieldError(path, "fraud_blocked", f"{detail} [{reason}]")
