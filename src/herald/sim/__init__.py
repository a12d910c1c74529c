"""herald.sim: an SMSC simulator (``herald sim``) for tests, demos and benchmarks.

Usage in-process::

    async with Simulator(SimConfig(port=0, receipt_delay=(0.1, 0.1))) as sim:
        ... bind herald's SmppClient (or anything) to sim.port ...
        sim.counters.accepted, sim.records, sim.held("acme")

Modules: ``simulator`` (the server), ``config`` (``SimConfig`` and the CLI's
parsers), ``scheme`` (behaviours chosen by destination number), ``outcomes``
(outcome mix, receipt and MO PDUs), ``ids`` (message id forms), ``bucket``
(TPS limit), ``schedule`` (the receipt timer heap), ``record`` (the submit
record file), ``cli`` (``herald sim``). docs/sim.md is the user's page.
"""

from herald.sim.config import SimConfig, parse_delay, parse_listen, parse_outcomes
from herald.sim.errors import RecordFormatError, SimConfigError, SimError
from herald.sim.ids import IdStyle, ReceiptIdForm
from herald.sim.outcomes import Outcome, OutcomeMix
from herald.sim.record import RecordContent, SubmitRecord, read_records
from herald.sim.scheme import BEHAVIOURS, Behaviour, Plan, plan_for
from herald.sim.simulator import SimCounters, Simulator

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "IdStyle",
    "Outcome",
    "OutcomeMix",
    "Plan",
    "ReceiptIdForm",
    "RecordContent",
    "RecordFormatError",
    "SimConfig",
    "SimConfigError",
    "SimCounters",
    "SimError",
    "Simulator",
    "SubmitRecord",
    "parse_delay",
    "parse_listen",
    "parse_outcomes",
    "plan_for",
    "read_records",
]
