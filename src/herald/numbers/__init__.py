"""The operator's number tables in a running herald, and ``herald numbers``.

The tables themselves (numbering plan, ported numbers: CSV, index, lookup)
are pure and live in :mod:`herald.intake`; they are stored whole in the store
(:class:`~herald.store.NumberTableStore`). Here: :class:`NumberTables`, which
keeps a process's :class:`~herald.intake.DestinationRules` up to date with
the store, and the ``herald numbers`` command (``herald.numbers.cli``).
"""

from herald.numbers._tables import CHECK_INTERVAL, NumberTables, load_index, route_check

__all__ = ["CHECK_INTERVAL", "NumberTables", "load_index", "route_check"]
