"""Ranking measures over candidate groups: one implementation of each, the standard ones from ir-measures.

A *run* here is one query's candidates: their ``scores`` (higher is better) and graded
``labels`` (integers >= 0, the same length; the caller drops unjudged candidates or gives them
0). The ranking is the scores best first, ties broken by input order: deterministic, and the
same for every measure below.

Measures (mean over queries is the caller's; :func:`per_query` gives one value per run):

- ``ndcg@k``: nDCG@k with gain ``2**grade - 1`` and discount ``1 / log2(rank + 1)``; the ideal
  order is the labels sorted. 0.0 when no candidate is relevant. ir-measures
  ``nDCG(cutoff=k, gains={g: 2**g - 1})`` (trec_eval's ``ndcg_cut`` with mapped gains).
- ``ap`` (average precision) and ``rr`` (reciprocal rank), relevance = ``grade >= 1``:
  ir-measures ``AP`` and ``RR``. 0.0 when no candidate is relevant.
- :func:`trec_measures` (and :func:`trec_ndcg`): nDCG@k and RR@k exactly as trec_eval reports them (gain = grade, unjudged
  documents not relevant, trec_eval's own tie order): the figure TREC DL papers report.
- :func:`pnr_pairs`: the positive-negative ratio's counts, ours (no library has it): concordant
  and discordant pairs among label-distinct candidates.
- :func:`spearman`: rank correlation of two scorings of one query (fidelity checks), by scipy.

trec_eval breaks score ties by document id; to keep ties in input order, runs reach it with
the score ``n - position`` of our ranking instead of the raw score. ir-measures and scipy are
imported when first needed, so :func:`ranking` and :func:`pnr_pairs` work in a runtime-only
install; the rest need ``pip install 'ranker-sdk[eval]'``.

Example:
    >>> scores, labels = [0.9, 0.1, 0.5], [0, 2, 1]    # ranked: grades 0, 1, 2
    >>> reciprocal_rank(scores, labels)
    0.5
    >>> round(ndcg_at_k(scores, labels), 4)   # (1/log2(3) + 3/log2(4)) / (3 + 1/log2(3))
    0.5869

Reference: Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", TOIS 2002;
MacAvaney et al., "Streamlining Evaluation with ir-measures", ECIR 2022.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "ranking",
    "per_query",
    "ndcg_at_k",
    "average_precision",
    "reciprocal_rank",
    "trec_measures",
    "trec_ndcg",
    "pnr_pairs",
    "spearman",
]

Run = tuple[Sequence[float], Sequence[int]]  # one query: (scores, graded labels)


def ranking(scores) -> np.ndarray:
    """Indices best-first, ties kept in input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _ir_measures():
    try:
        import ir_measures
    except ImportError as exc:
        raise ImportError(
            "ranker_eval.metrics: nDCG, AP and RR come from ir-measures, which is not installed; "
            "install the evaluation extra: pip install 'ranker-sdk[eval]'"
        ) from exc
    return ir_measures


def _grades(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if len(y) != n:
        raise ValueError(f"expected one label per score ({n}), got {len(y)} labels")
    if len(y) and (y.dtype.kind not in "iuf" or np.any(y < 0) or np.any(y != np.floor(y))):
        raise ValueError(f"labels must be integer grades >= 0 (unjudged: drop them or use 0), got {y.tolist()!r}")
    return y.astype(np.int64)


def per_query(runs: Iterable[Run], k: int = 10) -> dict[str, np.ndarray]:
    """``{"ndcg@k", "ap", "rr"}``, each an array with one value per run, in one ir-measures pass.

    >>> r = per_query([([3.0, 2.0, 1.0], [1, 0, 2]), ([1.0, 1.0], [0, 0])], k=10)
    >>> r["ap"].round(4).tolist(), r["rr"].tolist()
    ([0.8333, 0.0], [1.0, 0.0])
    """
    ir = _ir_measures()
    qrels, run, grades = [], [], set()
    n = 0
    for n, (scores, labels) in enumerate(runs, 1):
        qid = str(n - 1)
        order = ranking(scores)
        y = _grades(labels, len(order))
        grades.update(y.tolist())
        qrels += [ir.Qrel(qid, str(i), int(g)) for i, g in enumerate(y)]
        run += [ir.ScoredDoc(qid, str(i), float(len(order) - pos)) for pos, i in enumerate(order)]
    names = {
        f"ndcg@{k}": ir.nDCG(cutoff=k, gains={g: 2**g - 1 for g in sorted(grades)}),
        "ap": ir.AP,
        "rr": ir.RR,
    }
    out = {name: np.zeros(n, dtype=np.float64) for name in names}
    if not run:
        return out
    by_measure = {str(m): name for name, m in names.items()}
    # a query with no relevant candidate is absent or 0.0 here: 0.0 either way
    for m in ir.iter_calc(list(names.values()), qrels, run):
        out[by_measure[str(m.measure)]][int(m.query_id)] = m.value
    return out


def ndcg_at_k(scores, labels, k: int = 10) -> float:
    """nDCG@k of one query, gain ``2**grade - 1``; 0.0 when no candidate is relevant."""
    return float(per_query([(scores, labels)], k)[f"ndcg@{k}"][0])


def average_precision(scores, labels) -> float:
    """AP of one query (relevant: grade >= 1); 0.0 when no candidate is relevant."""
    return float(per_query([(scores, labels)])["ap"][0])


def reciprocal_rank(scores, labels) -> float:
    """1 / rank of the first relevant candidate of one query; 0.0 when there is none."""
    return float(per_query([(scores, labels)])["rr"][0])


def trec_measures(
    qrels: Sequence[tuple[str, str, int]], run: Sequence[tuple[str, str, float]], k: int = 10
) -> dict[str, float]:
    """nDCG@k and RR@k of ``run`` as trec_eval computes them (ir-measures ``nDCG@k``, ``RR@k``),
    means over the queries of ``run`` that have a relevant judged document (the caller passes only those).

    Gain is the grade (not ``2**grade - 1``), unjudged documents count as not relevant, the ideal
    ranking holds every judged document of the query, and score ties are broken as trec_eval
    breaks them (by document id, descending). RR@k is 1 / rank of the first relevant document
    in the top k (0 when none is there): the measure for a collection with one judged answer a
    question (squad), where measures over judged candidates only are trivially 1.

    >>> trec_measures([("q", "a", 2), ("q", "b", 0)], [("q", "a", 0.1), ("q", "b", 0.9), ("q", "c", 0.5)])
    {'ndcg': 0.5, 'rr': 0.3333333333333333}
    """
    if not run:
        return {"ndcg": 0.0, "rr": 0.0}
    ir = _ir_measures()
    ndcg, rr = ir.nDCG @ k, ir.RR @ k
    res = ir.calc_aggregate(
        [ndcg, rr], [ir.Qrel(q, d, r) for q, d, r in qrels], [ir.ScoredDoc(q, d, s) for q, d, s in run]
    )
    return {"ndcg": float(res[ndcg]), "rr": float(res[rr])}


def trec_ndcg(qrels: Sequence[tuple[str, str, int]], run: Sequence[tuple[str, str, float]], k: int = 10) -> float:
    """Mean nDCG@k of ``run`` as trec_eval computes it (:func:`trec_measures`).

    >>> trec_ndcg([("q", "a", 2), ("q", "b", 0)], [("q", "a", 0.1), ("q", "b", 0.9), ("q", "c", 0.5)])
    0.5
    """
    return trec_measures(qrels, run, k)["ndcg"]


def pnr_pairs(scores, labels) -> tuple[int, int]:
    """(concordant, discordant) over pairs with different labels; score ties count as discordant.

    PNR (positive-negative ratio) = concordant / discordant, summed over queries first.

    >>> pnr_pairs([0.9, 0.5, 0.5], [2, 1, 0])   # (0,1) and (0,2) right; (1,2) tied
    (2, 1)
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    dy = y[:, None] - y[None, :]
    ds = s[:, None] - s[None, :]
    mask = dy > 0
    return int(np.sum(ds[mask] > 0)), int(np.sum(ds[mask] <= 0))


def spearman(a, b) -> float:
    """Spearman rank correlation of two scorings of the same items (``scipy.stats.spearmanr``,
    average ranks for ties); 1.0 for fewer than 2 items, 0.0 when either scoring is constant
    (no ranking to correlate).

    >>> spearman([1, 2, 3], [30, 20, 10])
    -1.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"expected two scorings of the same items, got {len(a)} and {len(b)} scores")
    if len(a) < 2:
        return 1.0
    if np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
