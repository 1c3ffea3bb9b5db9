"""ranker_eval.metrics: each measure by hand, ties, queries without a relevant candidate, real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ranker_eval.beir import load_groups
from ranker_eval.metrics import (
    average_precision,
    ndcg_at_k,
    per_query,
    pnr_pairs,
    ranking,
    reciprocal_rank,
    spearman,
    trec_ndcg,
)

L2 = math.log2


# -- nDCG@k with gain 2**grade - 1 ----------------------------------------------------------------


def test_ndcg_by_hand():
    # ranked: grades 0, 1, 2 -> DCG = 0 + 1/log2(3) + 3/log2(4); ideal 2, 1, 0 -> 3 + 1/log2(3)
    assert ndcg_at_k([0.9, 0.1, 0.5], [0, 2, 1]) == pytest.approx((1 / L2(3) + 3 / 2) / (3 + 1 / L2(3)), abs=1e-12)
    # the cut: at k=2 the grade-2 candidate (third) is gone; the ideal keeps its best two
    assert ndcg_at_k([0.9, 0.1, 0.5], [0, 2, 1], k=2) == pytest.approx((1 / L2(3)) / (3 + 1 / L2(3)), abs=1e-12)
    assert ndcg_at_k([0.9, 0.1, 0.5], [0, 2, 1], k=1) == 0.0
    assert ndcg_at_k([3.0, 2.0, 1.0], [2, 1, 0]) == pytest.approx(1.0)


def test_ndcg_gain_is_exponential_in_the_grade():
    # grade 3 second, grade 1 first: DCG = 1 + 7/log2(3), ideal 7 + 1/log2(3) (linear gain would give 1 + 3/log2(3))
    got = ndcg_at_k([1.0, 0.0], [1, 3])
    assert got == pytest.approx((1 + 7 / L2(3)) / (7 + 1 / L2(3)), abs=1e-12)
    assert got != pytest.approx((1 + 3 / L2(3)) / (3 + 1 / L2(3)), abs=1e-6)


def test_score_ties_are_broken_by_input_order_for_every_measure():
    # trec_eval alone would put document "2" first (ties by id, descending); ours keeps input order
    assert ranking([1.0, 1.0, 1.0]).tolist() == [0, 1, 2]
    assert ndcg_at_k([1.0, 1.0, 1.0], [0, 0, 3]) == pytest.approx(0.5)  # 7/log2(4) / 7
    assert ndcg_at_k([1.0, 1.0, 1.0], [3, 0, 0]) == pytest.approx(1.0)
    assert reciprocal_rank([5, 5, 5, 5], [0, 0, 1, 0]) == pytest.approx(1 / 3)
    assert average_precision([2, 1, 1], [0, 0, 1]) == pytest.approx(1 / 3)


# -- AP and RR: relevant = grade >= 1 ---------------------------------------------------------


def test_average_precision_by_hand():
    # ranked relevances 1 0 1 0 1: precisions at the hits 1/1, 2/3, 3/5
    assert average_precision([5, 4, 3, 2, 1], [1, 0, 2, 0, 3]) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert average_precision([1, 2], [1, 0]) == pytest.approx(0.5)


def test_reciprocal_rank_by_hand():
    assert reciprocal_rank([0.1, 0.9, 0.5], [0, 0, 2]) == pytest.approx(0.5)
    assert reciprocal_rank([0.9, 0.1], [1, 1]) == 1.0


def test_a_query_without_a_relevant_candidate_scores_zero_everywhere():
    for scores, labels in (([0.3, 0.1], [0, 0]), ([], [])):
        assert ndcg_at_k(scores, labels) == average_precision(scores, labels) == reciprocal_rank(scores, labels) == 0.0


def test_per_query_keeps_the_order_of_the_runs():
    # 13 runs; the one relevant candidate of run i sits at rank i % 4 + 1 (run 5 has none).
    # "10" sorts before "2" as a string, so a mix-up of query ids would show.
    ranks = [i % 4 + 1 for i in range(12)]
    runs = [(np.arange(4, 0, -1, dtype=float), [int(r == j + 1) for j in range(4)]) for r in ranks]
    ranks.insert(5, None)
    runs.insert(5, ([1.0], [0]))
    got = per_query(runs, k=10)
    assert set(got) == {"ndcg@10", "ap", "rr"}
    np.testing.assert_allclose(got["rr"], [1 / r if r else 0.0 for r in ranks])
    np.testing.assert_allclose(got["ap"], got["rr"])  # one relevant candidate: AP = RR
    np.testing.assert_allclose(got["ndcg@10"], [1 / L2(r + 1) if r else 0.0 for r in ranks])
    assert all(len(v) == 0 for v in per_query([], k=10).values())


@pytest.mark.parametrize("labels", [[0, -1], [0, 1.5], [0], [None, 1]])
def test_labels_must_be_integer_grades_one_per_score(labels):
    with pytest.raises(ValueError, match="label"):
        ndcg_at_k([0.2, 0.1], labels)


def _reference(scores, labels, k):
    """The textbook definitions, written out: the oracle for the property test below."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    ranked = [labels[i] for i in order]
    dcg = sum((2**g - 1) / L2(r + 2) for r, g in enumerate(ranked[:k]))
    idcg = sum((2**g - 1) / L2(r + 2) for r, g in enumerate(sorted(labels, reverse=True)[:k]))
    hits = [r for r, g in enumerate(ranked) if g > 0]
    ap = sum((n + 1) / (r + 1) for n, r in enumerate(hits)) / len(hits) if hits else 0.0
    rr = 1 / (hits[0] + 1) if hits else 0.0
    return (dcg / idcg if idcg else 0.0), ap, rr


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=0, max_size=25), min_size=1, max_size=6
    ),
    st.sampled_from([1, 3, 10]),
)
def test_measures_match_their_definitions_with_ties_and_any_grades(queries, k):
    """Scores from 0..4 make ties common; grades 0-3 as in trec-rag24 and trec-dl."""
    runs = [([float(s) for s, _ in q], [g for _, g in q]) for q in queries]
    got = per_query(runs, k)
    for i, (scores, labels) in enumerate(runs):
        nd, ap, rr = _reference(scores, labels, k)
        assert got[f"ndcg@{k}"][i] == pytest.approx(nd, abs=1e-12)
        assert got["ap"][i] == pytest.approx(ap, abs=1e-12)
        assert got["rr"][i] == pytest.approx(rr, abs=1e-12)


# -- nDCG as trec_eval computes it -------------------------------------------------------------


def test_trec_ndcg_by_hand_and_unjudged_documents_count_as_not_relevant():
    # ranked: b (0), c (unjudged), a (2): DCG@10 = 2 / log2(4) = 1; ideal: a first, 2 / log2(2) = 2
    assert trec_ndcg([("q", "a", 2), ("q", "b", 0)], [("q", "a", 0.1), ("q", "b", 0.9), ("q", "c", 0.5)]) == 0.5
    # gain = grade: a (1) second, b (3) first -> (3 + 1/log2(3)) / (3 + 1/log2(3)) = 1; swapped: (1 + 3/log2(3)) / ...
    qrels = [("q", "a", 1), ("q", "b", 3)]
    assert trec_ndcg(qrels, [("q", "a", 1.0), ("q", "b", 2.0)]) == pytest.approx(1.0)
    assert trec_ndcg(qrels, [("q", "a", 2.0), ("q", "b", 1.0)]) == pytest.approx((1 + 3 / L2(3)) / (3 + 1 / L2(3)))
    assert trec_ndcg(qrels, []) == 0.0


def test_trec_ndcg_breaks_ties_as_trec_eval_does_by_document_id_descending():
    assert trec_ndcg([("q", "a", 1), ("q", "b", 0)], [("q", "a", 1.0), ("q", "b", 1.0)]) == pytest.approx(1 / L2(3))


def test_trec_ndcg_is_the_mean_over_queries():
    qrels = [("1", "a", 1), ("2", "a", 1), ("2", "b", 0)]
    run = [("1", "a", 1.0), ("2", "a", 0.0), ("2", "b", 1.0)]
    assert trec_ndcg(qrels, run) == pytest.approx((1.0 + 1 / L2(3)) / 2)


# -- PNR pairs (ours) and Spearman (scipy) -------------------------------------------------------


def test_pnr_pairs_by_hand_ties_count_as_discordant():
    # label-distinct pairs: (a>b), (a>c), (b>c); scores a=0.9, b=0.5, c=0.5 -> two right, one tied
    assert pnr_pairs([0.9, 0.5, 0.5], [2, 1, 0]) == (2, 1)
    assert pnr_pairs([0.1, 0.9], [1, 0]) == (0, 1)
    assert pnr_pairs([0.1, 0.9], [1, 1]) == (0, 0)  # equal labels: no pair
    assert pnr_pairs([], []) == (0, 0)


def test_spearman_by_hand_with_average_ranks_for_ties():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [4, 3, 3, 1]) == pytest.approx(-1.0)
    # ranks [1, 2, 3, 4] and [1, 4, 2.5, 2.5]: covariance 1.5 / sqrt(5 * 4.5)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 2]) == pytest.approx(1.5 / math.sqrt(22.5), abs=1e-12)


def test_spearman_edge_cases():
    assert spearman([1.0], [5.0]) == 1.0 and spearman([], []) == 1.0  # nothing to disagree on
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0  # a constant scoring ranks nothing
    with pytest.raises(ValueError, match="same items"):
        spearman([1, 2], [1, 2, 3])


# -- real data ---------------------------------------------------------------------------------


def test_the_first_stage_order_of_trec_rag24_dev(data_dir):
    """The given order of trec-rag24 dev is strong: mean nDCG@10 0.793 (the figure the demo prints)."""
    groups = load_groups(data_dir / "trec-rag24", "dev")
    runs = [(-np.arange(len(g.docs), dtype=float), [y or 0 for y in g.labels]) for g in groups]
    got = per_query(runs, k=10)
    assert len(groups) == 45 and all(len(s) == 20 for s, _ in runs)
    assert got["ndcg@10"].mean() == pytest.approx(0.7931386957924758, abs=1e-12)
    for (s, y), nd, ap, rr in zip(runs, got["ndcg@10"], got["ap"], got["rr"]):
        assert (nd, ap, rr) == pytest.approx(_reference(list(s), y, 10), abs=1e-12)
