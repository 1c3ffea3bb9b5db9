"""Fitting a package's first-stage fusion rule on labelled dev data, and sealing it in.

The runtime rule is :mod:`ranker_sdk.fusion` (``fused = z(model) + weight * z(first_stage)``,
both z-scored within the query). This module chooses ``weight``:

1. every candidate of every query of each ``(data_dir, split)`` is scored by the package
   through the SDK's own :class:`~ranker_sdk.Ranker` (what ships is what is fitted);
2. the first stage is ``-rank`` in the folder's ``candidates.run`` (the only first-stage signal
   every BEIR folder here has; a backend with real retrieval scores passes those at run time,
   and z-scoring puts both on one scale);
3. each weight of a grid (default 0, 0.05, ..., 3, then 4 ... 100) is scored by mean nDCG@10 over the queries
   that have a relevant judged candidate (gain ``2**grade - 1``, unjudged candidates scored but
   left out of the metric, as ``ranker eval`` does); the best weight wins, and on a tie the
   smallest, so the model is trusted unless the data says otherwise.

Queries of several folders are pooled (the union), so one weight serves them all; the record
keeps each folder's figures before and after. :func:`add_fusion` writes the rule into an
existing package directory and re-seals its manifest; ``ranker package --fit-fusion DIR[=SPLIT]``
does both at build time. :func:`refit_package` (``ranker fusion``) fits a finished package,
the bundled default included, on the user's own labelled candidates and writes a copy with
that rule: the right weight depends on the first stage (the bundled one leans on its model,
because BM25-like first stages are weak; a strong dense retriever wants a larger weight).

Example:
    >>> fusion = fit_fusion("packages/minilm-int8", [("../shared/data/trec-rag24", "dev")])  # doctest: +SKIP
    >>> fusion["weight"], fusion["dev"]["fused"] > fusion["dev"]["model"]                     # doctest: +SKIP
    (0.85, True)
    >>> add_fusion("packages/minilm-int8", fusion).fusion.weight                             # doctest: +SKIP
    0.85
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ranker_eval.beir import load_groups
from ranker_eval.metrics import per_query
from ranker_sdk import Ranker
from ranker_sdk.errors import InputError
from ranker_sdk.fusion import Fusion, fuse
from ranker_sdk.package import CONFIG, MANIFEST, PackageConfig, read_package

from .package import check_out_dir, config_bytes, manifest_bytes, write_package

__all__ = [
    "DEFAULT_WEIGHTS",
    "FitOptions",
    "FusionQuery",
    "check_fusion_data",
    "score_queries",
    "fit_weight",
    "fit_fusion",
    "add_fusion",
    "refit_package",
]

log = logging.getLogger(__name__)

KIND = "zscore-linear"
# 0 .. 3 by 0.05, where a useful model and a useful first stage meet, then a coarse tail up to a
# weight at which the model only breaks the first stage's ties: a fit landing there says the
# model adds nothing to this first stage, and the fused score is then no worse than it.
DEFAULT_WEIGHTS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(61)) + (
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    50.0,
    100.0,
)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FusionQuery:
    """One query's inputs to the fit: the package's scores, the first stage's, and the labels.

    ``labels`` has one grade per candidate, None where unjudged; ``source`` names the folder and
    split (``trec-rag24/dev``) for the per-source figures.
    """

    source: str
    model: np.ndarray
    first_stage: np.ndarray
    labels: tuple[int | None, ...]


OBJECTIVES = ("pooled", "maxmin")
UNJUDGED = ("skip", "irrelevant")


@dataclass(frozen=True)
class FitOptions:
    """How :func:`fit_fusion` chooses the weight (each as :func:`fit_weight` takes it).

    Attributes:
        weights: the grid of first-stage weights tried (default :data:`DEFAULT_WEIGHTS`).
        k: the nDCG cut-off maximised.
        objective: ``"pooled"`` (best mean nDCG@k over all queries) or ``"maxmin"`` (best gain of
            the worst source over its own first stage).
        unjudged: ``"skip"`` (unjudged candidates left out of nDCG) or ``"irrelevant"`` (grade 0,
            as trec_eval counts them: for a query with one judged answer).

    Raises:
        InputError: an empty or non-finite grid, or an unknown objective or ``unjudged``.
    """

    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    k: int = 10
    objective: str = "pooled"
    unjudged: str = "skip"

    def __post_init__(self) -> None:
        _check_fit(self.weights, self.objective, self.unjudged)


def _check_fit(weights: Sequence[float], objective: str, unjudged: str) -> list[float]:
    """The grid as floats, after checking it and the objective (see :class:`FitOptions`)."""
    grid = [float(w) for w in weights]
    if not grid or not all(np.isfinite(grid)):
        raise InputError(f"the fusion weight grid must be non-empty and finite, got {list(weights)!r}")
    if objective not in OBJECTIVES or unjudged not in UNJUDGED:
        raise InputError(f"fusion objective must be one of {OBJECTIVES} and unjudged 'skip' or 'irrelevant'")
    return grid


def check_fusion_data(sources: Sequence[tuple[str, str]], flag: str = "--fit-fusion") -> None:
    """Fail fast (before minutes of export) when a ``(data_dir, split)`` cannot be fitted on.

    Raises:
        InputError: no folder given, a folder without ``candidates.run``, or a split without
            ``qrels/<split>.tsv`` (``NAME:QID_PREFIX`` filters read ``qrels/NAME.tsv``); the
            message names the folder as ``flag`` (the option that gave it) does.
    """
    if not sources:
        raise InputError("fusion fitting needs at least one (data_dir, split) with labels and a candidates.run")
    for data, split in sources:
        root = Path(data)
        if not (root / "candidates.run").is_file():
            raise InputError(
                f"{flag} {data}: no candidates.run there; fusion is fitted on a BEIR folder whose "
                "candidates.run gives the first-stage order"
            )
        name = str(split).partition(":")[0]
        if not (root / "qrels" / f"{name}.tsv").is_file():
            raise InputError(f"{flag} {data}: no qrels/{name}.tsv for split {split!r}")


def score_queries(
    ranker: Ranker, sources: Sequence[tuple[str, str]], progress: Progress | None = None
) -> list[FusionQuery]:
    """Score every candidate of every query of ``sources`` with ``ranker`` (first stage = -rank)."""
    check_fusion_data(sources)
    loaded = [(f"{Path(d).name}/{s}", load_groups(d, s)) for d, s in sources]
    total = sum(len(groups) for _, groups in loaded)
    out: list[FusionQuery] = []
    for name, groups in loaded:
        for g in groups:
            # Group.docs keep candidates.run's order, so position + 1 is the rank.
            first = -np.arange(1, len(g.docs) + 1, dtype=np.float64)
            out.append(FusionQuery(name, ranker.score(g.query, list(g.docs)), first, g.labels))
            if progress is not None:
                progress(len(out), total)
    return out


def _judged(
    scores: np.ndarray, labels: Sequence[int | None], unjudged: str = "skip"
) -> tuple[np.ndarray, np.ndarray] | None:
    """The judged candidates' (scores, grades); None when none of them is relevant (no defined nDCG).

    ``unjudged="irrelevant"`` keeps every candidate and counts an unjudged one as grade 0 (as
    trec_eval does): the only measure that means anything on a pool with one judged answer a
    query (squad), where the judged candidates alone always rank perfectly.
    """
    if unjudged == "irrelevant":
        labels = [0 if y is None else y for y in labels]
    keep = [i for i, y in enumerate(labels) if y is not None]
    y = np.array([labels[i] for i in keep], dtype=np.int64)
    if not (y > 0).any():
        return None
    return np.asarray(scores, dtype=np.float64)[keep], y


def _mean_ndcg(
    queries: Sequence[FusionQuery], scores: Callable[[FusionQuery], np.ndarray], k: int, unjudged: str = "skip"
) -> float:
    """Mean nDCG@k of ``scores(q)`` over ``queries`` (each with a relevant judged candidate)."""
    values = per_query([_judged(scores(q), q.labels, unjudged) for q in queries], k)[f"ndcg@{k}"]
    return float(np.mean(values)) if len(values) else 0.0


def _gains(
    queries: Sequence[FusionQuery], rule: Fusion, k: int, unjudged: str, base: Mapping[str, float]
) -> dict[str, float]:
    """Per source: mean nDCG@k of the fused scores minus ``base`` (the first stage's own, per source)."""
    out = {}
    for name in base:
        mine = [q for q in queries if q.source == name]
        out[name] = _mean_ndcg(mine, lambda q: fuse(q.model, q.first_stage, rule), k, unjudged) - base[name]
    return out


def fit_weight(
    queries: Sequence[FusionQuery],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    k: int = 10,
    *,
    objective: str = "pooled",
    unjudged: str = "skip",
) -> tuple[float, dict[float, float]]:
    """The grid weight with the best objective (smallest on a tie).

    ``objective="pooled"``: mean nDCG@k of the fused scores over all queries. ``"maxmin"``: the
    worst source's gain over its own first stage, ``min_s (nDCG_s(fused) - nDCG_s(first stage))``,
    so one weight is judged on the collection it serves worst; a positive optimum means fused is
    at or above the first stage everywhere. Returns ``(weight, {weight: objective})``. Queries
    without a relevant judged candidate are left out of every mean.

    Raises:
        InputError: an empty or non-finite grid, an unknown objective, or no query with a relevant
            judged candidate.
    """
    grid = _check_fit(weights, objective, unjudged)
    usable = [q for q in queries if _judged(q.model, q.labels, unjudged) is not None]
    if not usable:
        raise InputError("no query with a relevant judged candidate: the fusion weight cannot be fitted")
    base = {
        name: _mean_ndcg([q for q in usable if q.source == name], lambda q: q.first_stage, k, unjudged)
        for name in dict.fromkeys(q.source for q in usable)
    }
    table: dict[float, float] = {}
    for w in grid:
        rule = Fusion(KIND, w)
        if objective == "maxmin":
            table[w] = min(_gains(usable, rule, k, unjudged, base).values())
        else:
            table[w] = _mean_ndcg(usable, lambda q: fuse(q.model, q.first_stage, rule), k, unjudged)
    best = max(table.values())
    return min(w for w, v in table.items() if v >= best - 1e-12), table


def _figures(queries: Sequence[FusionQuery], weight: float, k: int, unjudged: str = "skip") -> dict[str, Any]:
    """Mean nDCG@k of the model alone, the first stage alone and the fused scores."""
    rule = Fusion(KIND, weight)
    usable = [q for q in queries if _judged(q.model, q.labels, unjudged) is not None]
    means = {
        "model": _mean_ndcg(usable, lambda q: q.model, k, unjudged),
        "first_stage": _mean_ndcg(usable, lambda q: q.first_stage, k, unjudged),
        "fused": _mean_ndcg(usable, lambda q: fuse(q.model, q.first_stage, rule), k, unjudged),
    }
    return {"queries": len(usable), **{name: round(v, 4) for name, v in means.items()}}


def fit_fusion(
    package: str | os.PathLike[str] | Ranker,
    sources: Sequence[tuple[str, str]],
    options: FitOptions = FitOptions(),
    *,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit the fusion rule of ``package`` (a path or a loaded Ranker) on ``sources``.

    Args:
        sources: ``[(data_dir, split), ...]`` BEIR folders with ``candidates.run`` and
            ``qrels/<split>.tsv``; their queries are pooled.
        options: the grid, the cut-off, the objective and how unjudged candidates count
            (:class:`FitOptions`). With ``objective="maxmin"`` the record says whether fused
            beats or ties the first stage on every source (``never_below_first_stage``).
        threads: onnxruntime threads when ``package`` is a path.
        progress: ``progress(done, total)`` after each scored query.

    Returns:
        The ``fusion`` object for ``ranker.json``: ``kind``, ``weight``, ``metric``,
        ``first_stage`` (what was fused), ``fitted_on`` (folder/split names, no local paths),
        ``grid`` (its range and size), ``curve`` (``[weight, mean nDCG]`` at every grid point),
        ``dev`` (pooled nDCG of model, first stage and fused) and ``sources`` (the same per
        folder). Pass it to :func:`add_fusion`.
    """
    ranker = package if isinstance(package, Ranker) else Ranker.load(package, threads=threads)
    queries = score_queries(ranker, sources, progress)
    k, objective, unjudged = options.k, options.objective, options.unjudged
    weight, table = fit_weight(queries, options.weights, k, objective=objective, unjudged=unjudged)
    names = list(dict.fromkeys(q.source for q in queries))
    grid = sorted(table)
    per_source = [{"data": n, **_figures([q for q in queries if q.source == n], weight, k, unjudged)} for n in names]
    fusion = {
        "kind": KIND,
        "weight": weight,
        "metric": f"ndcg@{k}" + ("" if unjudged == "skip" else ", unjudged = not relevant"),
        "first_stage": "-rank in candidates.run",
        "fitted_on": names,
        "grid": {"min": grid[0], "max": grid[-1], "points": len(grid)},
        "curve": [[w, round(table[w], 4)] for w in grid],
        "dev": _figures(queries, weight, k, unjudged),
        "sources": per_source,
    }
    if objective != "pooled":  # a pooled fit's record stays as it always was
        fusion["objective"] = objective
        fusion["never_below_first_stage"] = all(s["fused"] >= s["first_stage"] for s in per_source)
    log.info("fusion weight %.2f on %s: %s", weight, names, fusion["dev"])
    return fusion


def add_fusion(pkg_dir: str | os.PathLike[str], fusion: Mapping[str, Any] | Fusion) -> PackageConfig:
    """Write ``fusion`` into the package directory's ``ranker.json`` and re-seal ``manifest.json``.

    The package is read and verified first (a tampered package is not re-sealed), the new
    ``ranker.json`` is validated by the SDK's own parser, and the other files are left
    untouched. A ``.tar.gz`` made earlier from the folder is stale afterwards: re-create it with
    :func:`ranker_quantize.package.tar_package`. Returns the new config.

    Raises:
        InputError: ``pkg_dir`` is not a package directory (a ``.tar.gz`` cannot be edited).
        PackageError: the package fails verification, or ``fusion`` is not a valid rule.
    """
    root = Path(pkg_dir)
    if not root.is_dir():
        raise InputError(f"{root}: add_fusion needs a package directory (unpack a .tar.gz first)")
    pkg = read_package(root)
    rule = fusion.to_dict() if isinstance(fusion, Fusion) else dict(fusion)
    config = PackageConfig.from_dict({**pkg.config.to_dict(), "fusion": rule})
    files = {name: data for name, data in pkg.files.items() if name != MANIFEST}
    files[CONFIG] = config_bytes(config)
    # ranker.json first, then the manifest: an interruption in between leaves a package the
    # loader refuses (hash mismatch naming ranker.json), never one that loads the wrong rule.
    for name, data in ((CONFIG, files[CONFIG]), (MANIFEST, manifest_bytes(files))):
        tmp = root.with_name(f".{root.name}.{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, root / name)
    return config


def refit_package(
    package: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    sources: Sequence[tuple[str, str]],
    options: FitOptions = FitOptions(),
    *,
    threads: int | None = None,
    progress: Progress | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write a copy of ``package`` to ``out_dir`` with its fusion rule fitted on ``sources``.

    ``options`` are :func:`fit_fusion`'s (``objective="maxmin"``: the weight whose worst source
    gains most over its own first stage).

    ``package`` is a package directory or ``.tar.gz``, or None for the bundled default. Every
    file is copied as verified; ``ranker.json`` gets the new ``fusion`` object (replacing any
    earlier one) and, when the package has a ``MODEL_CARD.md``, a section recording the refit is
    appended to it. The original is never modified. Returns ``(out_dir, fusion)``.

    Raises:
        InputError: ``out_dir`` is taken, a source cannot be fitted on (:func:`check_fusion_data`),
            or it has no query with a relevant judged candidate.
        PackageError: the package fails verification.
    """
    out = check_out_dir(out_dir)  # before minutes of scoring (fit_fusion checks the data first)
    ranker = Ranker.load(package, threads=threads)
    pkg = read_package(ranker.source)
    fusion = fit_fusion(ranker, sources, options, progress=progress)
    files = {name: data for name, data in pkg.files.items() if name not in (MANIFEST, CONFIG)}
    card = files.get("MODEL_CARD.md")
    if card is not None:
        files["MODEL_CARD.md"] = card + _card_section(fusion).encode("utf-8")
    config = PackageConfig.from_dict({**pkg.config.to_dict(), "fusion": fusion})
    return write_package(out, files, config), fusion


def _card_section(fusion: Mapping[str, Any]) -> str:
    """The model card's record of a refit: the new rule and what it measured."""
    lines = [
        "",
        "## First-stage fusion, refitted",
        f"`ranker fusion` replaced the fusion rule: first-stage weight {fusion['weight']:g}, fitted on "
        f"{', '.join(fusion['fitted_on'])} ({fusion['metric']}, first stage = {fusion['first_stage']}).",
        "",
        "| data | queries | model | first stage | fused |",
        "|---|---|---|---|---|",
    ]
    for s in fusion["sources"]:
        lines.append(f"| {s['data']} | {s['queries']} | {s['model']} | {s['first_stage']} | {s['fused']} |")
    return "\n".join(lines) + "\n"
