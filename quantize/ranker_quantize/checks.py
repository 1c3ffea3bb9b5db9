"""The value checks of the option dataclasses (``PackageOptions``, ``QuantizeOptions``, ``VerifyOptions``).

Each option dataclass checks its own fields in ``__post_init__`` with these, so an options
object that exists is one the pipeline can run: the CLI (``ranker package --set KEY=VALUE``)
and a Python caller get the same rule and the same message, which names the field as the
``--set`` key does. Every failure is an :class:`~ranker_sdk.errors.InputError`.

>>> positive_int("max_queries", 0)
Traceback (most recent call last):
...
ranker_sdk.errors.InputError: max_queries must be a positive integer, got 0
"""

from __future__ import annotations

from collections.abc import Sequence

from ranker_sdk.errors import InputError

__all__ = ["positive_int", "number", "one_of"]


def positive_int(name: str, value: object, *, optional: bool = False) -> None:
    """``value`` is an int >= 1 (or None, when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        none = " or None" if optional else ""
        raise InputError(f"{name} must be a positive integer{none}, got {value!r}")


def number(name: str, value: object) -> None:
    """``value`` is an int or a float (not a bool): a threshold, whose range is the caller's choice."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {value!r}")


def one_of(name: str, value: object, choices: Sequence[str]) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
