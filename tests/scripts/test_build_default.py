"""``scripts/build_default.py``: the model card is written from measured data, not typed figures.

The card is a pure function of its inputs (the student's distillation config as distillation
saves it, the package's ranker.json, the measured evaluation and benchmark figures); these tests
feed it real shapes (a saved DistillConfig, the bundled default's ranker.json) and check that
what it states moves with what was measured.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("torch")  # build_default needs the train and quantize extras


@pytest.fixture(scope="module")
def build_default():
    spec = importlib.util.spec_from_file_location("build_default", ROOT / "scripts" / "build_default.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from ranker_training.config import DataSource, DistillConfig, save_config

    path = tmp_path_factory.mktemp("card") / "train_config.json"
    save_config(DistillConfig(architecture="segmented", data=(DataSource("/x/trec-dl", "train"),)), path)
    sc = json.loads(path.read_text(encoding="utf-8"))
    pkg_cfg = json.loads((ROOT / "sdk" / "ranker_sdk" / "default" / "ranker.json").read_text(encoding="utf-8"))
    return sc, pkg_cfg


def _card(build_default, sc, pkg_cfg, layers=6, docs_per_s=81.9, rss=187.0, shipped=0.548, merge=None):
    merge = merge or {}
    key = "trec-dl ndcg@10_trec"
    return build_default.card(
        "seg_hybrid",
        sc,
        layers,
        merge,
        "how it was made",
        pkg_cfg,
        "| table |",
        {key: shipped},
        {key: 0.549},
        {key: 0.651},
        {key: 0.464},
        {"runs": {"repllama": 10}, "fit": {"slope": 0.5}, "label_mix": 0.5, "pairs": 7, "queries": 3},
        {"docs_per_s": docs_per_s, "peak_rss_mb": rss},
    )


def test_card_states_the_measured_figures(build_default, inputs):
    sc, pkg_cfg = inputs
    text = _card(build_default, sc, pkg_cfg)
    assert "81.9 docs/s" in text and "peak RSS 187 MB" in text
    assert "INT8 0.548 (fp32 student 0.549; fused with the first stage 0.651; first-stage order 0.464)" in text
    assert f"weight {pkg_cfg['fusion']['weight']}" in text
    assert ", ".join(pkg_cfg["fusion"]["fitted_on"]) in text
    assert f"mean Spearman {pkg_cfg['fidelity']['spearman']['mean']}" in text
    assert f"at most {pkg_cfg['query_max_tokens']} tokens" in text


def test_card_follows_its_inputs(build_default, inputs):
    sc, pkg_cfg = inputs
    other = _card(build_default, sc, pkg_cfg, layers=3, docs_per_s=200.5, rss=99.0, shipped=0.5)
    assert "A 3-layer MiniLM" in other and "200.5 docs/s" in other and "peak RSS 99 MB" in other
    assert "INT8 0.500" in other
    assert "A 6-layer MiniLM" in _card(build_default, sc, pkg_cfg)


def test_layer_count_reads_the_checkpoint(build_default, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 4}), encoding="utf-8")
    assert build_default.layer_count(tmp_path) == 4


def test_card_says_how_a_merged_student_was_made(build_default, inputs):
    sc, pkg_cfg = inputs
    merged = _card(build_default, sc, pkg_cfg, merge={"alpha": 0.7, "base": "pkg:minilm"})
    assert "WiSE-FT" in merged and "0.7 x those weights + 0.3 x the start (pkg:minilm)" in merged
    assert "WiSE-FT" not in _card(build_default, sc, pkg_cfg)


def test_students_are_tried_best_mean_first_and_only_hybrid_ones(build_default, tmp_path):
    def result(dl, rag, wiki):
        return {
            "sources": [
                {"data": "/d/trec-dl", "ndcg@10_trec": dl, "queries": 1},
                {"data": "/d/trec-rag24", "ndcg@10": rag, "queries": 1},
                {"data": "/d/wikiqa", "map": wiki, "queries": 1},
            ]
        }

    evals = {"a": result(0.5, 0.7, 0.7), "b": result(0.6, 0.7, 0.7), "labels": result(0.9, 0.9, 0.9)}
    for name, loss in (("a", "hybrid"), ("b", "hybrid"), ("labels", "pairwise")):
        (tmp_path / "students" / name).mkdir(parents=True)
        cfg = {"loss": loss, "alpha": 1.0, "beta": 1.0}
        (tmp_path / "students" / name / "train_config.json").write_text(json.dumps(cfg))
    assert build_default.ranked(evals, "auto", tmp_path) == ["b", "a"]  # the labels-only one is not the product
    assert build_default.ranked(evals, "a", tmp_path) == ["a"]
    with pytest.raises(SystemExit):
        build_default.ranked(evals, "missing", tmp_path)
