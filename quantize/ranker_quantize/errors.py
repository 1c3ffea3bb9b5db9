"""Errors of the packager, in the SDK's hierarchy so the ``ranker`` CLI reports them alike.

- :class:`ExportError`: the checkpoint cannot be turned into a ranker graph (wrong head, an
  architecture the exporter does not know, a graph without the inputs the runtime feeds).
- :class:`FidelityError`: the INT8 model ranks too differently from the fp32 model; the message
  carries the measured figures and the thresholds. ``--force`` packages it anyway.

Bad arguments (a missing checkpoint, an ``--out`` that is not empty) are the SDK's
:class:`~ranker_sdk.errors.InputError`.
"""

from __future__ import annotations

from ranker_sdk.errors import RankerError

__all__ = ["ExportError", "FidelityError"]


class ExportError(RankerError):
    """The checkpoint cannot be exported to a ranker ONNX graph."""


class FidelityError(RankerError):
    """The quantized model fails the fidelity thresholds against the fp32 model."""
