"""Reading a user's JSON Lines and numbers: every malformation is one error naming ``FILE:LINE``.

The one JSON-line reader of the project: the ``ranker rank`` docs here, the BEIR files of
:mod:`ranker_eval.beir`, the click logs and scores files of :mod:`ranker_training`. A user's file
can hold anything, and each of these is turned into the caller's ``error`` class (an
:class:`~ranker_sdk.errors.InputError` by default) with the file and line in the message, never a
raw Python exception:

- a byte sequence that is not UTF-8 (``UnicodeDecodeError``),
- a line that is not JSON, or nested deeper than the parser's stack (``RecursionError``),
- ``NaN`` / ``Infinity`` (not JSON; Python's parser accepts them), a number too large for a float
  (``1e400`` parses as inf, ``10**400`` as an int that ``float()`` refuses with ``OverflowError``),
- a line that is not an object.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["decode_line", "parse_line", "iter_jsonl", "read_jsonl", "read_lines", "finite_float"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_line(raw: bytes, where: str, error: type[Exception] = InputError) -> str:
    """``raw`` as UTF-8 text, or ``error`` naming ``where`` and the first bad byte's column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 text (byte {exc.start + 1} of the line); convert the file to UTF-8") from exc


def parse_line(
    line: str, where: str, *, error: type[Exception] = InputError, expect: str = "one JSON object a line"
) -> dict:
    """The JSON object on ``line``; ``error`` naming ``where`` (``FILE:LINE``) for anything else."""
    try:
        obj = json.loads(line, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise error(f"{where}: JSON nested too deeply to read; expected {expect}") from exc
    except ValueError as exc:
        raise error(f"{where}: not valid JSON ({exc}); expected {expect}") from exc
    if not isinstance(obj, dict):
        raise error(f"{where}: expected {expect}, got {type(obj).__name__}")
    return obj


def iter_jsonl(
    lines: Iterable[str], name: str, *, error: type[Exception] = InputError, expect: str = "one JSON object a line"
) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of already decoded text."""
    for n, line in enumerate(lines, 1):
        if line.strip():
            yield n, parse_line(line, f"{name}:{n}", error=error, expect=expect)


def read_jsonl(
    path: str | Path, *, error: type[Exception] = InputError, kind: str = "file", expect: str = "one JSON object a line"
) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of the JSONL file ``path``.

    Read line by line (memory does not grow with the file); a file that cannot be opened raises
    ``error`` too (``kind`` says what the file should have been).
    """
    for n, line in read_lines(path, error=error, kind=kind):
        if line.strip():
            yield n, parse_line(line, f"{path}:{n}", error=error, expect=expect)


def read_lines(
    path: str | Path, *, error: type[Exception] = InputError, kind: str = "file"
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of a UTF-8 text file (runs, qrels), errors naming ``FILE:LINE``."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise error(f"cannot read {kind} {path}: {exc.strerror}") from exc
    with fh:
        for n, raw in enumerate(fh, 1):
            yield n, decode_line(raw, f"{path}:{n}", error).rstrip("\r\n")


def finite_float(value: object, where: str, what: str, error: type[Exception] = InputError) -> float:
    """``value`` (a JSON number or numeric text) as a finite float, else ``error`` naming ``where``.

    Refuses bools, NaN, infinities and numbers beyond float range (``10**400``, ``"1e400"``).
    """
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise error(f"{where}: {what} {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{where}: {what} must be a number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise error(f"{where}: {what} {_short(value)} is not a finite number within float range")
    return out


def _short(value: object) -> str:
    try:
        text = str(value)
    except ValueError:  # an int of more digits than Python will print
        return "(an integer of thousands of digits)"
    return text if len(text) <= 24 else text[:20] + "..."
