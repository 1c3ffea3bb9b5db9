"""Errors of the training stages, in the SDK's hierarchy so the ``ranker`` CLI reports them alike.

Both are :class:`~ranker_sdk.errors.InputError` (so also ``RankerError`` and ``ValueError``):
the fix is in what the caller gave, never in the code.

- :class:`ConfigError`: a config file or value that does not fit its dataclass: a file that is
  not YAML/JSON, an unknown key, a wrong type, a value out of range, a model path that is not a
  local checkpoint folder. The message names the file (and line) or the key.
- :class:`DataError`: a data file the stage cannot read: a click-log or scores line that is not
  what the format says, a run file with a non-numeric score, a scores file that is missing. The
  message names the file and, for a bad line, its number (``clicks.jsonl:12: ...``).

A BEIR folder is read by :mod:`ranker_eval.beir`, whose problems are the SDK's ``InputError``
(the parent of both classes here). A failure that is not the caller's (a bug) is never one of
these: it stays a traceback to report.

>>> from ranker_sdk.errors import InputError, RankerError
>>> issubclass(DataError, InputError) and issubclass(ConfigError, ValueError)
True
"""

from __future__ import annotations

from ranker_sdk.errors import InputError

__all__ = ["ConfigError", "DataError"]


class ConfigError(InputError):
    """A config file or value that does not fit its dataclass (also a ``ValueError``)."""


class DataError(InputError):
    """A training or evaluation data file that cannot be read as its format says (also a ``ValueError``)."""
