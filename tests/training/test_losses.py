"""The losses against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from ranker_training import losses


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


def test_pairwise_logistic_counts_every_label_distinct_pair_once():
    s = torch.tensor([[2.0, 0.0, 1.0, 9.0]])
    y = torch.tensor([[2.0, 0.0, 1.0, 0.0]])
    m = torch.tensor([[True, True, True, False]])  # the 4th candidate is padding
    # pairs (y_i > y_j): (0,1) d=2, (0,2) d=1, (2,1) d=1
    expected = (sp(-2.0) + sp(-1.0) + sp(-1.0)) / 3
    assert float(losses.pairwise_logistic(s, y, m)) == pytest.approx(expected, rel=1e-6)


def test_pairwise_logistic_averages_over_pairs_of_all_groups_and_ignores_ties():
    s = torch.tensor([[1.0, 3.0, 0.0], [0.5, 0.0, 0.0]])
    y = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    # group 0: (0,1) d=-2, (0,2) d=1; group 1: labels tie -> no pair
    expected = (sp(2.0) + sp(-1.0)) / 2
    assert float(losses.pairwise_logistic(s, y, m)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.pairwise_logistic(s[1:], y[1:], m[1:])) == 0.0


def test_listwise_softmax_is_the_positives_cross_entropy():
    s = torch.tensor([[1.0, 2.0, 0.0, 5.0], [0.0, 0.0, 7.0, 7.0]])
    m = torch.tensor([[True, True, True, False], [True, True, False, False]])
    g0 = -1.0 + math.log(math.e**1 + math.e**2 + 1.0)
    g1 = math.log(2.0)
    assert float(losses.listwise_softmax(s, m)) == pytest.approx((g0 + g1) / 2, rel=1e-6)


def test_pointwise_and_margin_mse():
    s = torch.tensor([[3.0, 1.0, 0.0], [1.0, 1.0, 4.0]])
    t = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    point = (4 + 1 + 0 + 1 + 1) / 5
    # group 0 pairs: (0,1): 2 vs 1 -> 1; (0,2): 3 vs 1 -> 4; (1,2): 1 vs 0 -> 1; group 1: (0,1): 0 vs -2 -> 4
    margin = (1 + 4 + 1 + 4) / 4
    assert float(losses.pointwise_mse(s, t, m)) == pytest.approx(point)
    assert float(losses.margin_mse(s, t, m)) == pytest.approx(margin)
    assert float(losses.hybrid_distill(s, t, m, alpha=0.5, beta=2.0)) == pytest.approx(0.5 * point + 2 * margin)
    assert float(losses.hybrid_distill(s, t, m, alpha=0.0, beta=1.0)) == pytest.approx(margin)


def test_margin_mse_ignores_a_constant_shift_of_the_teacher():
    s = torch.randn(3, 5)
    t = torch.randn(3, 5)
    m = torch.ones(3, 5, dtype=torch.bool)
    assert float(losses.margin_mse(s, t + 10.0, m)) == pytest.approx(float(losses.margin_mse(s, t, m)), rel=1e-5)


def test_bce_labels_and_rank_loss_dispatch():
    s = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[3.0, 0.0]])
    m = torch.ones(1, 2, dtype=torch.bool)
    expected = (math.log(2.0) + sp(2.0)) / 2  # -log sigmoid(0), -log(1 - sigmoid(2))
    assert float(losses.rank_loss("bce", s, y, m)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.rank_loss("mse", s, y, m)) == pytest.approx((9 + 4) / 2)
    with pytest.raises(ValueError, match="unknown loss"):
        losses.rank_loss("nope", s, y, m)


def test_losses_have_gradients_only_where_the_mask_is_true():
    s = torch.tensor([[1.0, 0.0, 5.0]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 2.0]])
    m = torch.tensor([[True, True, False]])
    (losses.pairwise_logistic(s, y, m) + losses.listwise_softmax(s, m) + losses.margin_mse(s, y, m)).backward()
    assert s.grad[0, 2] == 0 and s.grad[0, 0] != 0
