"""The refusals of :mod:`herald.admin`: each knows its HTTP status; the CLI prints them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = ["AdminError", "Conflict", "FieldProblem", "InvalidInput", "NotFound"]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One refused field: its name (``rate_limit``, ``lines[3]``), a stable code, a sentence."""

    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class AdminError(Exception):
    """Base of the admin service's refusals. Nothing was changed."""

    http_status: ClassVar[int] = 400


class InvalidInput(AdminError):
    """Fields are refused; ``problems`` names each (422)."""

    http_status = 422

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)

    @classmethod
    def one(cls, field: str, code: str, message: str) -> InvalidInput:
        return cls([FieldProblem(field, code, message)])


class NotFound(AdminError):
    """No such account, key, login or table (404)."""

    http_status = 404


class Conflict(AdminError):
    """The name or id is taken (409)."""

    http_status = 409
