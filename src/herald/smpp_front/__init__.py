"""herald as the SMSC of its SMPP customers (the SMPP "front door").

``CustomerSmpp`` is the ``ServerHandler`` behind herald's SMPP listener:
binds, submits (durably accepted before the answer), queries.
``SmppNotifier`` sends receipts and MO messages from the store's outbox to the
customers' receiver binds.
"""

from herald.smpp_front._handler import ACCOUNT_RECHECK, Binding, CustomerSmpp
from herald.smpp_front._messages import FrontLimits, Refused, messages_from
from herald.smpp_front._notifier import SmppNotifier, receipt_pdu
from herald.smpp_front._time import SmppTimeError, parse_smpp_time

__all__ = [
    "ACCOUNT_RECHECK",
    "Binding",
    "CustomerSmpp",
    "FrontLimits",
    "Refused",
    "SmppNotifier",
    "SmppTimeError",
    "messages_from",
    "parse_smpp_time",
    "receipt_pdu",
]
