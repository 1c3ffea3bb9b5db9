"""Evaluation: metric means, the WikiQA convention, baselines."""

from __future__ import annotations

import numpy as np
import pytest
from ranker_training.config import DataSource
from ranker_training.data import Group
from ranker_training.errors import ConfigError
from ranker_training.evaluate import evaluate_groups, evaluate_model


def test_metrics_by_hand():
    g1 = Group("1", "q", ("a", "b", "c"), ({},) * 3, (0, 2, 1))
    g2 = Group("2", "q", ("a", "b"), ({},) * 2, (0, 0))  # no positive: skipped
    r = evaluate_groups([g1, g2], [np.array([3.0, 2.0, 1.0]), np.array([1.0, 0.0])], k=2)
    # ranking a(0) b(2) c(1): dcg@2 = 0 + 3/log2(3); idcg@2 = 3 + 1/log2(3)
    assert r["ndcg@2"] == pytest.approx((3 / np.log2(3)) / (3 + 1 / np.log2(3)))
    assert r["mrr"] == pytest.approx(0.5)
    assert r["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert r["pnr"] == pytest.approx(1 / 2)  # (b over a) and (c over a) discordant, (b over c) concordant
    assert (r["queries"], r["skipped"]) == (1, 1)


def test_wikiqa_dev_counts_the_126_answerable_questions(wikiqa):
    r = evaluate_model("first-stage", [DataSource(str(wikiqa), "dev")])
    s = r["sources"][0]
    assert s["queries"] == 126 and s["queries"] + s["skipped"] == 296
    assert 0.0 < s["map"] <= 1.0 and s["mrr"] >= s["map"] - 1e-9


def test_bm25_baseline_on_trec(data_dir):
    srcs = [DataSource(str(data_dir / "trec-rag24"), "dev"), DataSource(str(data_dir / "wikiqa"), "dev")]
    r = evaluate_model("bm25", srcs, max_queries=10)
    assert [s["queries"] for s in r["sources"]][0] == 10
    assert r["all"]["queries"] == sum(s["queries"] for s in r["sources"])
    assert all(0 < s["ndcg@10"] <= 1 for s in r["sources"])


def test_unjudged_candidates_are_ranked_for_the_trec_figure_and_dropped_for_the_others():
    # trec_eval: ranked b (0), c (unjudged), a (2): 2 / log2(4) over the ideal 2 (by hand in tests/evaluation)
    g = Group("q", "query", ("a", "b", "c"), ({}, {}, {}), (2, 0, None))
    r = evaluate_groups([g], [np.array([0.1, 0.9, 0.5])])
    assert r["ndcg@10_trec"] == 0.5
    # the exp-gain figure re-ranks judged candidates only: a is second of two, (2^2-1)/log2(3) / 3
    assert r["ndcg@10"] == pytest.approx(1 / np.log2(3))
    assert (r["map"], r["mrr"], r["pnr"]) == (0.5, 0.5, 0.0)


def test_random_baseline_is_seeded_by_query(wikiqa):
    from ranker_training.config import DataSource
    from ranker_training.evaluate import evaluate_model

    a = evaluate_model("random", [DataSource(str(wikiqa), "dev")], max_queries=30)
    b = evaluate_model("random", [DataSource(str(wikiqa), "dev")], max_queries=30)
    assert a == b and 0 < a["sources"][0]["map"] < 1


def test_a_cut_off_below_one_is_refused_before_trec_eval_aborts_the_process():
    g = Group("q", "query", ("a", "b"), ({}, {}), (0, 1))
    with pytest.raises(ConfigError, match="k .* must be a positive integer, got 0"):
        evaluate_groups([g], [np.array([0.1, 0.9])], k=0)


def test_a_checkpoint_without_a_record_is_evaluated_on_the_text_its_package_reads(tiny_bert_dir, data_dir, tmp_path):
    """A plain HF cross-encoder (no ranker_student.json) gets the packager's settings in ``ranker eval``.

    The tiny model takes 128 positions, so the eval must not feed it the student default of 256,
    and it must cut docs to the package's character budget: the two then score alike.
    """
    from ranker_eval.beir import load_groups
    from ranker_quantize import PackageOptions, VerifyOptions, build_package
    from ranker_sdk import Ranker
    from ranker_training.evaluate import load_scorer

    assert not (tiny_bert_dir / "ranker_student.json").exists()
    options = PackageOptions(
        precision="fp32", verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=2)
    )
    pkg = build_package(tiny_bert_dir, tmp_path / "pkg", options).path
    ranker = Ranker.load(pkg, threads=1)
    assert ranker.config.max_length == 128
    g = load_groups(data_dir / "trec-rag24", "dev", max_queries=1)[0]
    long_doc = {"title": "", "text": ("x" * 150 + " ") * 12 + "pew research is trustworthy " * 40}
    docs = list(g.docs[:5]) + [long_doc]  # 1,800 characters of unknown words before the words
    group = Group(qid=g.qid, query=g.query, doc_ids=tuple(map(str, range(6))), docs=tuple(docs), labels=(0,) * 6)
    via_eval = load_scorer(str(tiny_bert_dir), [group])(group)
    np.testing.assert_allclose(via_eval, ranker.score(group.query, docs), atol=1e-4)


def test_evaluate_package_gives_both_results_of_evaluate_model(tiny_package, data_dir, tmp_path):
    """Scoring once and fusing gives exactly what two evaluate_model runs (alone, fused) give."""
    import shutil

    from ranker_quantize.fusion import add_fusion
    from ranker_training.evaluate import evaluate_package

    pkg = shutil.copytree(tiny_package, tmp_path / "pkg")
    add_fusion(pkg, {"kind": "zscore-linear", "weight": 0.7})
    srcs = [DataSource(str(data_dir / "trec-rag24"), "dev"), DataSource(str(data_dir / "wikiqa"), "dev")]
    alone, fused = evaluate_package(str(pkg), srcs, max_queries=6)
    assert alone == evaluate_model(str(pkg), srcs, max_queries=6)
    assert fused == evaluate_model(str(pkg), srcs, max_queries=6, first_stage=True)
    assert fused["first_stage"] and alone["sources"] != fused["sources"]
