"""The simulator's errors. Each is a ``ValueError`` too: they are all about
bad input (a setting, a record file), never about the network."""

from __future__ import annotations

__all__ = ["RecordFormatError", "SimConfigError", "SimError"]


class SimError(Exception):
    """Base of the errors ``herald.sim`` raises."""


class SimConfigError(SimError, ValueError):
    """A setting is invalid. ``setting`` names it (the CLI option without its
    dashes, or the SimConfig field); fix it and start again."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class RecordFormatError(SimError, ValueError):
    """A line of a ``--record`` file cannot be read. ``line`` is its 1-based
    number; a file cut short by a crash ends with a partial line: read it with
    ``strict=False`` to skip that one."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"record line {line}: {message}")
        self.line = line
