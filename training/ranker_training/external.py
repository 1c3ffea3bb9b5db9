"""The teacher target: an LLM teacher's score, external rankers' runs and the labels, combined.

DisRanker's student learns from one teacher score per (query, candidate). Where other strong
rankers have already scored a collection (trec-dl ships RepLLaMA-7B, an LLM ranker scored from
its final ``</s>`` token, and SPLADE++, TAS-B and ada-002 runs), their view is worth as much as
a small fine-tuned LLM's, and costs nothing to compute. This module folds them into the target.

For each query, every signal is z-scored over the list it scored:

- a run ``r`` (``<source>/runs/<name>.run``, TREC format, higher is better) scored its own top
  list; a candidate it did not retrieve gets ``min(z_r) - 1`` (below everything it ranked), or,
  with ``floor_signal`` (a signal that scored every candidate, such as E5), a place in
  ``[min(z_r) - 1, min(z_r) - 0.5]`` by that signal's order;
- the LLM teacher (when there is one) scored every candidate.

The combined score is the weighted mean of the z-scores of the signals that cover the query::

    f(q, d) = sum_s w_s * z_s(q, d) / sum_s w_s

``f`` has no unit, so it is mapped onto the grade scale (``calibration``): ``"moments"`` gives
``a * f + b`` the mean and standard deviation of the grades of its source's judged candidates
(one map per source over all its queries, so a query whose candidates all score high keeps
that); ``"least_squares"`` fits one line ``grade ~ a * f + b`` over every covered judged pair,
whose slope shrinks with the teacher's disagreement with the labels. Then

    target(q, d) = a * f + b                                    (unjudged)
    target(q, d) = mix * grade + (1 - mix) * (a * f + b)        (judged; mix = ``label_mix``)

``source_label_mix`` sets ``mix`` per source. A source whose combined score does not rise with
its grades (squad scored by BM25's order and the bi-encoder: an unanswerable question's
paragraph is as on-topic as an answerable one's) has no map onto the grade scale and keeps the
score unscaled; a grade mixed into an unscaled z-score there demotes the very candidates it
marks (it took the target's MRR@10 on squad's answerable training questions from 0.891 to
0.790), which ``source_label_mix: {squad: 0}`` avoids.

A query that no signal covers (trec-rag24, whose grades are themselves an LLM judge's (UMBRELA,
GPT-4o), or wikiqa) keeps its grades as the target on its judged candidates.

Example (what the CPU recipe does for trec-dl)::

    LabelConfig(data=(DataSource("../shared/data/trec-dl", "train:!dl21-", unjudged_queries=True),),
                runs={"REP_LLAMA": 1.0, "SPLADE_P_P_ENSEMBLE_DISTIL": 1.0}, label_mix=0.5,
                out="runs/dl/scores.jsonl")
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ranker_sdk.jsonl import finite_float, read_lines

from .config import DataSource, LabelConfig
from .errors import DataError

__all__ = ["read_run_scores", "combine_targets"]

log = logging.getLogger(__name__)


def read_run_scores(path: str | Path) -> dict[str, dict[str, float]]:
    """``qid -> {docid: score}`` of a TREC run file (``qid Q0 docid rank score tag``)."""
    out: dict[str, dict[str, float]] = {}
    for n, line in read_lines(path, error=DataError, kind="run"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise DataError(f"{path}:{n}: expected 'qid Q0 docid rank score tag' (6 fields), got {len(parts)}")
        out.setdefault(parts[0], {})[parts[2]] = finite_float(parts[4], f"{path}:{n}", "score", DataError)
    return out


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / sd if sd > 0 else np.zeros_like(values)


def _run_z(scores: dict[str, float], doc_ids: Sequence[str], fill: np.ndarray | None = None) -> np.ndarray:
    """A run's z-scores over ``doc_ids``; a candidate it did not retrieve sits below all it ranked.

    Without ``fill`` every such candidate gets ``min(z) - 1``. With ``fill`` (another signal's
    scores of every candidate) they keep that signal's order, spread over
    ``[min(z) - 1, min(z) - 0.5]``: the run's view that they rank below its list stays, and a pair
    of them no longer carries equal targets.
    """
    ids = list(scores)
    z = dict(zip(ids, _z(np.array([scores[d] for d in ids], dtype=np.float64))))
    floor = min(z.values()) - 1.0
    out = np.array([z.get(d, floor) for d in doc_ids], dtype=np.float64)
    missing = np.array([d not in z for d in doc_ids])
    if fill is not None and missing.sum() > 1:
        u = fill[missing]
        span = float(u.max() - u.min())
        if span > 0:
            out[missing] = floor + 0.5 * (u - u.min()) / span
    return out


def _moment_fit(x: np.ndarray, y: np.ndarray, where: str) -> tuple[float, float, int, bool]:
    """``a, b, n, rises``: ``a * x + b`` has the mean and spread of ``y`` (and rises with it).

    Not a least-squares fit: regression shrinks the slope by the teacher's disagreement with the
    labels, which would squeeze every unlabeled candidate's target towards the mean and leave the
    student nothing to learn from them. Matching moments keeps the teacher's margins at the scale
    of the grades' margins.
    """
    if len(x) < 10 or x.std() == 0 or y.std() == 0:
        return 1.0, 0.0, len(x), True
    if np.corrcoef(x, y)[0, 1] <= 0:
        _warn_unscaled(where)
        return 1.0, 0.0, len(x), False
    a = float(y.std() / x.std())
    return a, float(y.mean() - a * x.mean()), len(x), True


def _least_squares_fit(x: np.ndarray, y: np.ndarray, where: str) -> tuple[float, float, int, bool]:
    """``a, b, n, rises`` of the least-squares line ``y ~ a * x + b`` (slope shrunk by the teacher's noise)."""
    if len(x) < 10 or x.std() == 0:
        return 1.0, 0.0, len(x), True
    a, b = (float(v) for v in np.polyfit(x, y, 1))
    if a <= 0:
        _warn_unscaled(where)
        return 1.0, 0.0, len(x), False
    return a, b, len(x), True


def _warn_unscaled(where: str) -> None:
    log.warning(
        "external teacher: on %s the combined score does not rise with the grade; using it unscaled "
        "(a grade mixed into it moves the candidates it marks: label.source_label_mix sets that source's mix)",
        where,
    )


def combine_targets(
    sourced: Sequence[tuple],
    cfg: LabelConfig,
    *,
    llm: dict | None = None,
    run_dirs: Sequence[str | Path] = (),
) -> tuple[dict[tuple[str, str], float], dict]:
    """Teacher targets for ``sourced`` (``(group, DataSource, raw qid)`` from ``data.load_sourced``).

    The settings are ``cfg``'s (:class:`~ranker_training.config.LabelConfig`, which checked them):

    - ``runs``: run name -> weight; ``llm_weight``: the weight of ``llm``, the
      ``(qid, docid) -> score`` of an LLM teacher (None: there is none);
    - ``calibration``: ``"moments"`` (per source, see :func:`_moment_fit`) or ``"least_squares"``
      (one line over every covered judged pair); ``label_mix``: the grade's share of a judged
      candidate's target, ``source_label_mix`` (source folder name -> share) that of one source;
    - ``fit_weights``: the signals' weights are fitted per source on its judged pairs
      (:func:`_fit_weights`) instead of taken from ``runs``; a weight of 0 in ``runs`` still
      leaves a signal out. ``source_runs``: source folder name -> run weights replacing ``runs``
      and the fit for that source (a fit on the training split, applied to dev; or given);
    - ``grade_fallback=False`` leaves the queries no signal covers without a target (to evaluate
      the teacher's own view, without the labels).

    ``run_dirs``: more folders holding ``<source folder name>/<name>.run`` (runs made for this
    training, e.g. :mod:`ranker_training.signals`), looked at before the source's own
    ``runs/<name>.run`` and then ``<name>.run`` (so ``candidates`` is the first stage's order).
    Returns ``(qid, docid) -> target`` and a report (weights, fit, coverage) for provenance.
    """
    zs = _signal_z(sourced, cfg.runs, llm, cfg.llm_weight, run_dirs, cfg.floor_signal)
    priors = {**cfg.runs, **({"llm": cfg.llm_weight} if llm is not None else {})}
    weights = _fit_weights(sourced, zs, priors) if cfg.fit_weights else {}
    for src_path in dict.fromkeys(src.path for _, src, _ in sourced):
        if cfg.source_runs.get(Path(src_path).name):  # given weights win over a fit
            weights[src_path] = cfg.source_runs[Path(src_path).name]
    combined, used = _combine(sourced, zs, weights, priors)
    fits = _calibrate(sourced, combined, cfg.calibration)
    targets = _targets(sourced, combined, fits, cfg.label_mix, cfg.grade_fallback, cfg.source_label_mix)
    report = {
        "runs": dict(cfg.runs),
        "llm_weight": cfg.llm_weight if llm is not None else 0.0,
        "label_mix": cfg.label_mix,
        **({"source_label_mix": dict(cfg.source_label_mix)} if cfg.source_label_mix else {}),
        "fit": {
            Path(p).name: {"slope": a, "intercept": b, "judged_pairs": n, "rises": rises}
            for p, (a, b, n, rises) in fits.items()
        },
        "queries": len(sourced),
        "queries_covered": len(combined),
        "queries_per_signal": used,
        **({"fitted_weights": {Path(p).name: w for p, w in weights.items()}} if cfg.fit_weights else {}),
        "pairs": len(targets),
    }
    log.info("external teacher: %s", json.dumps(report))
    return targets, report


def _combine(sourced, zs, weights, priors) -> tuple[dict[int, np.ndarray], dict[str, int]]:
    """Per group index: the weighted mean of its signals' z-scores (``f`` of the module docstring).

    A source's weights are ``weights[path]`` where fitted or given, else ``priors``; also returns
    how many queries each signal took part in.
    """
    combined: dict[int, np.ndarray] = {}
    used: dict[str, int] = {}
    for gi, z in zs.items():
        w = weights.get(sourced[gi][1].path, priors)
        names = [n for n in z if w.get(n, 0.0) > 0]
        for n in names:
            used[n] = used.get(n, 0) + 1
        if names:
            combined[gi] = np.average(np.stack([z[n] for n in names]), axis=0, weights=[w[n] for n in names])
    return combined, used


def _calibrate(sourced, combined: dict[int, np.ndarray], calibration: str) -> dict[str, tuple[float, float, int, bool]]:
    """Source path -> ``(slope, intercept, judged pairs, rises)`` mapping its combined score onto the grades.

    ``"moments"`` fits each source on its own judged pairs; ``"least_squares"`` fits one line on
    every source's and gives it to all of them.
    """
    paths = list(dict.fromkeys(src.path for _, src, _ in sourced))
    fit = _moment_fit if calibration == "moments" else _least_squares_fit
    fits = {}
    for path in paths if calibration == "moments" else [None]:
        xs, ys = [], []
        for gi, f in combined.items():
            g, src, _ = sourced[gi]
            if path is None or src.path == path:
                for j, y in enumerate(g.labels):
                    if y is not None:
                        xs.append(f[j])
                        ys.append(float(y))
        fits[path] = fit(np.array(xs), np.array(ys), path or "all sources")
    if calibration == "least_squares":
        return {p: fits[None] for p in paths}
    return fits


def _targets(
    sourced, combined, fits, label_mix: float, grade_fallback: bool, source_mix: dict[str, float]
) -> dict[tuple[str, str], float]:
    """``(qid, docid) -> target``: the calibrated score, mixed with the grade where there is one."""
    targets: dict[tuple[str, str], float] = {}
    for gi, (g, src, _) in enumerate(sourced):
        f = combined.get(gi)
        a, b, _, _ = fits[src.path]
        mix = source_mix.get(Path(src.path).name, label_mix)
        for j, (d, y) in enumerate(zip(g.doc_ids, g.labels)):
            if f is not None:
                t = a * f[j] + b
                targets[(g.qid, d)] = mix * y + (1 - mix) * t if y is not None else t
            elif y is not None and grade_fallback:
                targets[(g.qid, d)] = float(y)
    return targets


def _signal_z(sourced, runs, llm, llm_weight, run_dirs, floor_signal: str = "") -> dict[int, dict[str, np.ndarray]]:
    """Per group index: ``{signal: z-scores over its candidates}`` for every signal covering it.

    Where ``floor_signal``'s run scores every candidate of a query, it orders the candidates the
    other runs did not retrieve (:func:`_run_z`'s ``fill``).
    """
    loaded: dict[tuple[str, str], dict] = {}  # (source path, run name) -> run scores
    out: dict[int, dict[str, np.ndarray]] = {}
    for gi, (g, src, raw_qid) in enumerate(sourced):
        z = {}
        scored = {}
        for name, w in runs.items():
            key = (src.path, name)
            if key not in loaded:
                places = [Path(d) / Path(src.path).name / f"{name}.run" for d in run_dirs]
                places += [Path(src.path) / "runs" / f"{name}.run", Path(src.path) / f"{name}.run"]
                f = next((p for p in places if p.is_file()), None)
                loaded[key] = read_run_scores(f) if isinstance(src, DataSource) and f is not None else {}
            sc = loaded[key].get(raw_qid)
            if sc and (w > 0 or name == floor_signal):
                scored[name] = sc
        base = scored.get(floor_signal)
        fill = np.array([base[d] for d in g.doc_ids]) if base and all(d in base for d in g.doc_ids) else None
        for name, sc in scored.items():
            if runs[name] > 0:
                z[name] = _run_z(sc, g.doc_ids, fill if name != floor_signal else None)
        if llm is not None and llm_weight > 0 and all((g.qid, d) in llm for d in g.doc_ids):
            z["llm"] = _z(np.array([llm[(g.qid, d)] for d in g.doc_ids], dtype=np.float64))
        if z:
            out[gi] = z
    return out


def _fit_weights(sourced, zs, priors: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per source path: non-negative signal weights fitted on its judged pairs, summing to 1.

    Non-negative least squares of the grade on the signals' z-scores (both centred over the
    source's judged pairs that every one of its signals covers). Only labels are used, so a
    fit on the training split never sees dev. A source with fewer than 10 such pairs, or whose
    fit is all zeros, keeps the prior weights of ``runs``.
    """
    from scipy.optimize import nnls

    out = {}
    for path in dict.fromkeys(src.path for _, src, _ in sourced):
        groups = [gi for gi in zs if sourced[gi][1].path == path]
        names = sorted({n for gi in groups for n in zs[gi] if priors.get(n, 0) > 0})
        rows, ys = [], []
        for gi in groups:
            if all(n in zs[gi] for n in names):
                for j, y in enumerate(sourced[gi][0].labels):
                    if y is not None:
                        rows.append([zs[gi][n][j] for n in names])
                        ys.append(float(y))
        x, y = np.array(rows), np.array(ys)
        if len(y) < 10 or not names:
            continue
        w, _ = nnls(x - x.mean(0), y - y.mean())
        if w.sum() > 0:
            out[path] = {n: round(float(v / w.sum()), 4) for n, v in zip(names, w)}
            log.info("external teacher: weights fitted on %d judged pairs of %s: %s", len(y), path, out[path])
    return out
