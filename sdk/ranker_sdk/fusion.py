"""First-stage fusion: combine the model's scores with the retriever's own scores.

A reranker sees the candidates a first stage (BM25, a dense retriever, a hybrid) has already
ranked, and that first stage knows things the cross-encoder does not (exact term statistics,
the whole collection). Throwing its scores away leaves quality on the table, so
:meth:`ranker_sdk.Ranker.score` and :meth:`~ranker_sdk.Ranker.rank` accept them as
``first_stage=`` and fuse them with the rule the package's ``ranker.json`` names.

The rule (``kind = "zscore-linear"``), per query::

    fused = z(model) + weight * z(first_stage)        z(x) = (x - mean(x)) / std(x)

- The z-score puts both lists on one scale whatever their units (logits, probabilities, BM25
  scores, ``-rank``); a constant list has no spread and becomes zeros, so it adds nothing.
- A single candidate keeps its model score unchanged (there is nothing to normalise against).
- ``weight`` is fitted on labelled dev data when the package is built
  (``ranker package --fit-fusion DIR[=SPLIT]``, :func:`ranker_quantize.fusion.fit_fusion`), and
  recorded in ``ranker.json`` beside the dev figures it was chosen on.
- A package without a fusion rule is the identity: ``first_stage`` is validated and then
  ignored, so the call returns the model's scores unchanged.

The fused score is comparable within one query only (it is centred per query). First-stage
scores are "higher is better"; pass ``-rank`` (e.g. ``[-1, -2, -3, ...]``) when only the order
is known.

Example:
    >>> import numpy as np
    >>> model = np.array([0.1, 0.9, 0.5], dtype=np.float32)    # the model prefers doc 1
    >>> first = check_first_stage([-1, -3, -2], 3)             # the retriever ranked doc 0 first
    >>> np.round(fuse(model, first, Fusion("zscore-linear", weight=0.5)), 3)   # doc 1 stays first
    array([-0.612,  0.612,  0.   ], dtype=float32)
    >>> np.round(fuse(model, first, Fusion("zscore-linear", weight=1.5)), 3)   # doc 0 wins
    array([ 0.612, -0.612,  0.   ], dtype=float32)
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, PackageError

__all__ = ["Fusion", "FUSION_KINDS", "check_first_stage", "zscore", "fuse"]

FUSION_KINDS = ("zscore-linear",)
# A z-score is at most sqrt(n) in size, so with |weight| up to this the fused score of any list a
# caller can hold stays far inside float32 (about 3e38); the fitter picks weights of a few units.
MAX_FUSION_WEIGHT = 1000.0


@dataclass(frozen=True)
class Fusion:
    """The ``fusion`` object of ``ranker.json``.

    Attributes:
        kind: the rule; only ``"zscore-linear"`` (see the module docstring).
        weight: the first stage's weight after both lists are z-scored per query.
        info: the packager's record, kept verbatim (``fitted_on``, ``metric``, ``dev`` figures
            before and after fusion, the weight ``grid``); the runtime does not read it.
    """

    kind: str
    weight: float
    info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: object) -> "Fusion":
        """Validate the JSON object; raises :class:`PackageError` naming ``ranker.json``."""
        if not isinstance(d, Mapping):
            raise PackageError(f"ranker.json: fusion must be a JSON object, got {type(d).__name__}")
        kind = d.get("kind")
        if kind not in FUSION_KINDS:
            raise PackageError(
                f"ranker.json: fusion.kind must be one of {list(FUSION_KINDS)}, got {kind!r}; "
                "the package was written by a newer or broken packager"
            )
        weight = d.get("weight")
        if not _is_real(weight) or not abs(float(weight)) <= MAX_FUSION_WEIGHT:
            raise PackageError(
                f"ranker.json: fusion.weight must be a number within +-{MAX_FUSION_WEIGHT:g}, got {weight!r}"
            )
        info = {k: v for k, v in d.items() if k not in ("kind", "weight")}
        return cls(kind=str(kind), weight=float(weight), info=info)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``ranker.json``."""
        return {"kind": self.kind, "weight": self.weight, **dict(self.info)}


def _is_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def check_first_stage(first_stage: object, n_docs: int) -> np.ndarray:
    """Validate the caller's first-stage scores; return them as float64.

    Accepts any one-dimensional sequence of real numbers (list, tuple, numpy array of ints or
    floats) with one score per doc.

    Raises:
        InputError: not a sequence, a length other than ``n_docs``, an element that is not a
            real number (a str, None, a bool), or a NaN / infinite score. The message names the
            first offending position.
    """
    if isinstance(first_stage, (str, bytes, Mapping)):
        raise InputError(f"first_stage must be a sequence of numbers (one per doc), got {type(first_stage).__name__}")
    try:
        arr = np.asarray(first_stage)
    except (TypeError, ValueError) as exc:
        raise InputError(f"first_stage must be a sequence of numbers (one per doc): {exc}") from exc
    if arr.ndim != 1:
        raise InputError(
            f"first_stage must be a flat sequence with one number per doc, got shape {arr.shape} "
            f"from {type(first_stage).__name__}"
        )
    if len(arr) != n_docs:
        raise InputError(f"first_stage has {len(arr)} scores but there are {n_docs} docs; pass one score per doc")
    if arr.dtype.kind not in "iuf":
        # numpy turns [1.0, "2"] into strings throughout, and ints beyond int64 (10**400) into
        # objects: look at the caller's own elements.
        items = first_stage if isinstance(first_stage, Sequence) else arr.tolist()
        for i, x in enumerate(items):
            if not _is_real(x):
                raise InputError(f"first_stage[{i}] must be a number, got {type(x).__name__} {x!r}")
            try:
                float(x)
            except OverflowError:
                raise InputError(
                    f"first_stage[{i}] is too large for a float; first-stage scores must be finite"
                ) from None
    scores = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"first_stage[{i}] is {scores[i]}; first-stage scores must be finite")
    return scores


def zscore(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` over one query's list (population std); zeros when the list is constant.

    The list is divided by its largest magnitude first: squaring scores of 1e154 or more would
    overflow float64 to inf and turn every z-score into 0. A z-score does not change with scale.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return np.zeros_like(x)
    centred = x / peak
    centred = centred - centred.mean()
    std = float(np.sqrt(np.mean(centred * centred)))
    # A spread at float rounding level is no spread: dividing by it would turn noise into signal.
    if std * peak <= 1e-12 * max(1.0, peak):
        return np.zeros_like(x)
    return centred / std


def fuse(model_scores: np.ndarray, first_stage: np.ndarray, rule: Fusion | None) -> np.ndarray:
    """The fused float32 scores of one query (see the module docstring); identity when ``rule`` is None."""
    model_scores = np.asarray(model_scores, dtype=np.float32)
    if rule is None or model_scores.size <= 1:
        return model_scores
    fused = zscore(model_scores) + rule.weight * zscore(first_stage)
    return fused.astype(np.float32)
