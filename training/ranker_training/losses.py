"""Rank and distillation losses over padded candidate groups.

Every function takes ``scores`` of shape ``[B, G]`` (B groups, up to G candidates each) and a
boolean ``mask`` of the same shape (False where a group is padded), and returns a scalar mean.
A pair ``(i, j)`` always lies within one group.

==================  =========================================================================
pairwise_logistic   ``mean over pairs with y_i > y_j of log(1 + exp(-(s_i - s_j)))`` (RankNet)
listwise_softmax    ``mean over groups of -log softmax(s)[positive]``, the positive at index 0
pointwise_mse       ``mean over candidates of (s - t)^2``
margin_mse          ``mean over pairs i < j of ((s_i - s_j) - (t_i - t_j))^2`` (Hofstätter et al.
                    2020, "Improving Efficient Neural Ranking Models with Cross-Architecture
                    Knowledge Distillation", generalised from (pos, neg) to all pairs of a group)
hybrid_distill      ``alpha * pointwise_mse + beta * margin_mse`` (DisRanker)
bce_labels          ``mean BCE-with-logits(s, y > 0)``
==================  =========================================================================

Example:
    >>> import torch
    >>> s = torch.tensor([[2.0, 0.0, 1.0]]); m = torch.ones_like(s, dtype=torch.bool)
    >>> round(float(pairwise_logistic(s, torch.tensor([[2.0, 0.0, 1.0]]), m)), 4)  # 3 pairs, all right
    0.2512
    >>> round(float(margin_mse(s, torch.tensor([[1.0, 0.0, 1.0]]), m)), 4)
    0.6667
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import RANK_LOSSES
from .errors import ConfigError

__all__ = [
    "pairwise_logistic",
    "listwise_softmax",
    "pointwise_mse",
    "margin_mse",
    "hybrid_distill",
    "bce_labels",
    "RANK_LOSSES",
]


def _pair_mask(mask: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    return m[:, :, None] & m[:, None, :]


def pairwise_logistic(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RankNet loss over every label-distinct pair of each group (graded labels welcome).

    ``loss = sum_{(i,j): y_i > y_j} softplus(s_j - s_i) / #pairs``; 0 when no pair exists.
    """
    pairs = _pair_mask(mask) & (labels[:, :, None] > labels[:, None, :])
    diff = scores[:, :, None] - scores[:, None, :]
    n = pairs.sum()
    if n == 0:
        return scores.sum() * 0.0
    return F.softplus(-diff)[pairs].sum() / n


def listwise_softmax(scores: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy of one positive against its group (InfoNCE-style).

    ``loss = mean_b [ -s_b[t_b] + log sum_{j valid} exp(s_b[j]) ]``; ``target`` defaults to 0
    (the samplers put the positive first).
    """
    masked = scores.masked_fill(~mask.bool(), float("-inf"))
    if target is None:
        target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(masked, target)


def pointwise_mse(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean over valid candidates of (s - t)^2``."""
    m = mask.bool()
    return ((scores - targets)[m] ** 2).mean()


def margin_mse(scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Margin-MSE over all pairs ``i < j`` within each group; 0 when no group has two candidates.

    Only score *differences* are matched, so a constant shift of the teacher's scores changes
    nothing: the student learns the teacher's ranking and its confidence, not its offset.
    """
    g = scores.shape[1]
    pairs = _pair_mask(mask) & torch.triu(torch.ones(g, g, dtype=torch.bool, device=scores.device), 1)
    ds = scores[:, :, None] - scores[:, None, :]
    dt = targets[:, :, None] - targets[:, None, :]
    n = pairs.sum()
    if n == 0:
        return scores.sum() * 0.0
    return ((ds - dt)[pairs] ** 2).sum() / n


def hybrid_distill(
    scores: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, alpha: float = 1.0, beta: float = 1.0
) -> torch.Tensor:
    """DisRanker's hybrid loss ``alpha * MSE(s, t) + beta * MarginMSE(s, t)`` on scaled teacher scores ``t``.

    Example:
        >>> import torch
        >>> s = torch.tensor([[1.0, 0.0]]); t = torch.tensor([[0.0, 0.0]]); m = torch.ones(1, 2, dtype=torch.bool)
        >>> float(hybrid_distill(s, t, m, alpha=1.0, beta=2.0))  # 0.5 + 2 * 1
        2.5
    """
    loss = scores.new_zeros(())
    if alpha:
        loss = loss + alpha * pointwise_mse(scores, targets, mask)
    if beta:
        loss = loss + beta * margin_mse(scores, targets, mask)
    return loss


def bce_labels(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits against ``label > 0`` (a point-wise labels-only baseline)."""
    m = mask.bool()
    return F.binary_cross_entropy_with_logits(scores[m], (labels[m] > 0).to(scores.dtype))


def rank_loss(name: str, scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The labels-only loss ``name``: pairwise, listwise, bce or mse (on the grade)."""
    if name == "pairwise":
        return pairwise_logistic(scores, labels, mask)
    if name == "listwise":
        return listwise_softmax(scores, mask)
    if name == "bce":
        return bce_labels(scores, labels, mask)
    if name == "mse":
        return pointwise_mse(scores, labels, mask)
    raise ConfigError(f"unknown loss {name!r}; expected one of {RANK_LOSSES}")
