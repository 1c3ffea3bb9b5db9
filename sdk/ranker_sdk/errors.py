"""The error types of ranker_sdk.

Every failure the SDK reports is a :class:`RankerError`; callers that only want to
know "did ranking work" catch that one class. The subclasses say whose fault it was:

- :class:`PackageError`: the model package is missing, corrupt, tampered with or of an
  unknown format. Fix: rebuild or re-download the package (``ranker verify PKG`` names
  the offending file).
- :class:`InputError`: what the caller gave is not acceptable: a query or document, a docs
  file, a path or an option (also a ``ValueError``). Fix: the caller's data or arguments.
- :class:`InternalError`: onnxruntime or tokenizers failed on input that passed
  validation. A bug: please report it with the message.

Exceptions raised by onnxruntime and tokenizers never escape raw; they are wrapped at the
boundary with :func:`wrap_backend_errors` so callers see one hierarchy.

The other packages of ranker-sdk raise subclasses of these, never a second hierarchy:

- ``ranker_training.errors``: ``ConfigError`` (a config file or value) and ``DataError`` (a
  click log, run or scores file that cannot be read; the message names ``file:line``), both
  ``InputError``;
- ``ranker_quantize.errors``: ``ExportError`` (a checkpoint that cannot be exported) and
  ``FidelityError`` (the INT8 model ranks too differently from fp32);
- ``ranker_bindings.build``: ``BuildError`` (the C library cannot be built here).

The ``ranker`` command prints any of them (and an ``OSError``, a path it cannot read or write)
as ``error: <message>`` and exits with status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["RankerError", "PackageError", "InputError", "InternalError", "wrap_backend_errors"]


class RankerError(Exception):
    """Base class of every error raised by ranker_sdk."""


class PackageError(RankerError):
    """The model package cannot be used: missing, corrupt, unsafe or of an unknown format."""


class InputError(RankerError, ValueError):
    """A query, document, file or option the caller gave that is not acceptable (also a ValueError)."""


class InternalError(RankerError):
    """A backend (onnxruntime, tokenizers) failed on validated input: a bug."""


@contextlib.contextmanager
def wrap_backend_errors(what: str) -> Iterator[None]:
    """Re-raise any non-RankerError exception from the block as an :class:`InternalError`.

    ``what`` names the step (``"tokenizing"``, ``"running the model"``) so the message
    says where it broke.
    """
    try:
        yield
    except RankerError:
        raise
    except Exception as exc:  # noqa: BLE001 - this is the one boundary that converts
        raise InternalError(
            f"{what} failed: {type(exc).__name__}: {exc}. This is a bug in ranker-sdk or "
            "its package; please report it with this message."
        ) from exc
