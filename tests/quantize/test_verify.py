"""verify.py: the fidelity figures, the thresholds, and where verification data comes from."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ranker_eval.beir import Group
from ranker_quantize.verify import (
    VerifyOptions,
    calibration_groups,
    failures,
    fidelity_report,
    generated_groups,
    torch_scores,
)
from ranker_sdk.errors import InputError


def _group(labels):
    n = len(labels)
    return Group(
        qid="q",
        query="q",
        doc_ids=tuple(map(str, range(n))),
        docs=tuple({"title": "", "text": str(i)} for i in range(n)),
        labels=tuple(labels),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_queries": 0}, "max_queries must be a positive integer, got 0"),
        ({"threads": 0}, "threads must be a positive integer or None, got 0"),
        ({"max_ndcg_drop": "1"}, "max_ndcg_drop must be a number, got '1'"),
        ({"min_spearman": True}, "min_spearman must be a number, got True"),
    ],
)
def test_options_check_their_values(change, message):
    with pytest.raises(InputError, match=re.escape(message)):
        VerifyOptions(**change)
    assert VerifyOptions(min_spearman=1.01).min_spearman == 1.01  # unreachable on purpose is allowed


def test_identical_scores_are_perfectly_faithful():
    s = np.linspace(0, 1, 12, dtype=np.float32)
    rep = fidelity_report([s], [s.copy()], [_group([0] * 11 + [3])], data="x/dev")
    assert rep["spearman"] == {"mean": 1.0, "min": 1.0}
    assert rep["top10_overlap"] == {"mean": 1.0, "min": 1.0}
    assert rep["max_abs_diff"] == 0.0
    assert rep["ndcg@10"] == {"fp32": 1.0, "int8": 1.0, "drop": 0.0}
    assert failures(rep, VerifyOptions()) == []


def test_reversed_ranking_fails_with_reasons():
    s = np.arange(12, dtype=np.float32)
    labels = [0] * 11 + [3]  # the best doc is the last: the reversed ranking puts it last
    rep = fidelity_report([s], [-s], [_group(labels)], data="x/dev")
    assert rep["spearman"]["mean"] == -1.0
    assert rep["top10_overlap"]["mean"] == pytest.approx(8 / 10)
    assert rep["ndcg@10"]["drop"] == 1.0
    msgs = failures(rep, VerifyOptions())
    assert any("Spearman" in m for m in msgs) and any("nDCG@10 drop" in m for m in msgs)


def test_unlabelled_data_has_no_ndcg_and_no_ndcg_check():
    s = np.arange(5, dtype=np.float32)
    rep = fidelity_report([s], [s], [_group([None] * 5)], data="generated")
    assert rep["labels"] is False and "ndcg@10" not in rep


def test_export_check_threshold():
    rep = {"spearman": {"mean": 1.0}, "export_check": {"max_abs_diff": 0.01}}
    assert failures(rep, VerifyOptions(max_export_diff=0.1)) == []
    assert "differs from torch" in failures(rep, VerifyOptions(max_export_diff=1e-3))[0]


def test_generated_groups_are_fixed_and_unlabelled():
    a, b = generated_groups(100), generated_groups(100)
    assert a == b and len(a) == 16
    assert all(len(g.docs) == 24 and set(g.labels) == {None} for g in a)
    assert len(generated_groups(3)) == 3


def test_calibration_groups(data_dir):
    groups, name = calibration_groups(data_dir / "trec-rag24", "dev", max_queries=3)
    assert name == "trec-rag24/dev" and len(groups) == 3
    assert all(len(g.docs) == 20 for g in groups)
    with pytest.raises(InputError, match="not a directory"):
        calibration_groups(data_dir / "nope", "dev", max_queries=3)
    with pytest.raises(InputError, match="split 'nope'"):
        calibration_groups(data_dir / "trec-rag24", "nope", max_queries=3)


def test_torch_scores_match_an_independent_export(tiny_bert_dir, tiny_ranker, trec_query_docs):
    # tiny_ranker is the conftest package: a plain torch.onnx export, not ours.
    from transformers import AutoModelForSequenceClassification

    query, docs = trec_query_docs
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    tok = (tiny_bert_dir / "tokenizer.json").read_bytes()
    got = torch_scores(model, tok, tiny_ranker.config, query, docs[:8])
    np.testing.assert_allclose(got, tiny_ranker.score(query, docs[:8]), atol=1e-4, rtol=0)
