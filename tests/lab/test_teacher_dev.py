"""``lab/teacher_dev.py``: the dev teacher uses the run's fitted weights, or the priors its training had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the lab's teacher view needs the train extra

from lab import teacher_dev  # noqa: E402


def test_dev_teacher_takes_fitted_weights_and_the_training_signals_where_the_fit_fell_back(tmp_path):
    label = {
        "runs": {"candidates": 1.0, "BI_ENCODER": 1.0, "E5": 1.0, "SPLADE_P_P_ENSEMBLE_DISTIL": 1.0},
        "signals": ["BI_ENCODER", "E5"],
        "signal_sources": {"BI_ENCODER": ["squad"], "E5": ["trec-dl", "wikiqa"]},
        "floor_signal": "E5",
        "calibration": "moments",
        "label_mix": 0.5,
        "source_label_mix": {"squad": 0.0, "wikiqa": 1.0},
    }
    (tmp_path / "recipe_config.json").write_text(json.dumps({"label": label}), encoding="utf-8")
    fitted = {"trec-dl": {"SPLADE_P_P_ENSEMBLE_DISTIL": 0.6, "E5": 0.4}, "wikiqa": {"E5": 0.7, "candidates": 0.3}}
    (tmp_path / "scores.json").write_text(json.dumps({"fitted_weights": fitted}), encoding="utf-8")
    cfg = teacher_dev.dev_teacher_config(tmp_path, tmp_path / "signals")
    assert cfg.source_runs["trec-dl"] == fitted["trec-dl"] and cfg.source_runs["wikiqa"] == fitted["wikiqa"]
    # squad's and trec-rag24's fits fell back: the priors, without E5 (it scored neither in training)
    assert cfg.source_runs["squad"] == {"candidates": 1.0, "BI_ENCODER": 1.0, "SPLADE_P_P_ENSEMBLE_DISTIL": 1.0}
    assert cfg.source_runs["trec-rag24"] == {"candidates": 1.0, "SPLADE_P_P_ENSEMBLE_DISTIL": 1.0}
    assert cfg.label_mix == 0.0 and cfg.grade_fallback is False  # no label makes the dev target
    assert cfg.source_label_mix == {}  # not even one source's share
    assert cfg.signal_dir == str(tmp_path / "signals") and cfg.floor_signal == "E5"
    assert {Path(s.path).name for s in cfg.data} == {"trec-dl", "trec-rag24", "wikiqa", "squad"}
