"""Ranking metrics over one candidate group (numpy only).

Each function takes the group's ``scores`` (higher is better) and graded ``labels``
(ints >= 0; unjudged candidates should be dropped or given 0 by the caller). Ties in scores
are broken by input order, deterministically.

- nDCG@k with gain ``2**grade - 1`` and log2 discount; the ideal order is the labels sorted.
- AP (average precision) and RR (reciprocal rank) with relevance = ``grade > 0``.
- PNR pairs: (concordant, discordant) counts over label-distinct pairs; PNR = conc / disc.
- Spearman correlation between two score vectors (for fidelity checks).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ndcg_at_k", "average_precision", "reciprocal_rank", "pnr_pairs", "spearman", "ranking"]


def ranking(scores) -> np.ndarray:
    """Indices best-first, ties kept in input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def ndcg_at_k(scores, labels, k: int = 10) -> float:
    """nDCG@k; 0.0 when the group has no relevant candidate."""
    labels = np.asarray(labels, dtype=np.float64)
    gains = 2.0**labels - 1.0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    got = gains[ranking(scores)][:k]
    ideal = np.sort(gains)[::-1][:k]
    idcg = float(np.sum(ideal * disc[: len(ideal)]))
    return float(np.sum(got * disc[: len(got)]) / idcg) if idcg > 0 else 0.0


def average_precision(scores, labels) -> float:
    rel = (np.asarray(labels) > 0)[ranking(scores)]
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    return float(np.sum(hits[rel] / (np.flatnonzero(rel) + 1)) / rel.sum())


def reciprocal_rank(scores, labels) -> float:
    rel = (np.asarray(labels) > 0)[ranking(scores)]
    return float(1.0 / (np.flatnonzero(rel)[0] + 1)) if rel.any() else 0.0


def pnr_pairs(scores, labels) -> tuple[int, int]:
    """(concordant, discordant) over pairs with different labels; score ties count as discordant."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    dy = y[:, None] - y[None, :]
    ds = s[:, None] - s[None, :]
    mask = dy > 0
    return int(np.sum(ds[mask] > 0)), int(np.sum(ds[mask] <= 0))


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); 1.0 for fewer than 2 items."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return 1.0

    def rank(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=np.float64)
        for v in np.unique(x):  # average ranks of ties
            m = x == v
            if m.sum() > 1:
                r[m] = r[m].mean()
        return r

    ra, rb = rank(a), rank(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    return float(np.sum(ra * rb) / den) if den > 0 else 0.0
