"""The front fixture of test_front, for the other modules of this package."""

from .test_front import front  # noqa: F401
