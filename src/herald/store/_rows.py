"""Rows read by column name (private): a statement's column list, and where each
named column lands in the rows it returns."""

from __future__ import annotations

__all__ = ["Columns"]


class Columns:
    """Columns of one table, in the order a statement selects them.

    ``sql`` is the select list; ``at[name]`` the position of ``name`` in a
    row (a statement may select more after ``width`` columns); ``prefixed(alias)``
    the list for a join.
    """

    __slots__ = ("at", "names", "sql", "width")

    def __init__(self, *names: str) -> None:
        if len(set(names)) != len(names):
            raise ValueError("a column is named twice")
        self.names = names
        self.sql = ", ".join(names)
        self.width = len(names)
        self.at: dict[str, int] = {name: i for i, name in enumerate(names)}

    def prefixed(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.names)
