"""Distilling the segmented student (ranker_models.segmented) with ranker_training.distill."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from ranker_models.segmented import is_segmented, load_segmented
from ranker_training.config import ConfigError, DataSource, DistillConfig, GroupConfig, TrainConfig
from ranker_training.distill import STUDENT_META, drop_layers, load_student, train_distill

from .test_distill import _hybrid_loss_over, _teacher_file


def _segmented_config(tiny_bert_dir, wikiqa, tmp_path, queries: int, train: TrainConfig):
    """The first ``queries`` wikiqa dev questions, a teacher file over them in ``tmp_path``, and a
    small segmented student's config (groups of ``queries`` candidates) to distil them with."""
    from ranker_eval.beir import load_groups

    groups = load_groups(wikiqa, "dev", max_queries=queries)
    _teacher_file(groups, tmp_path / "scores.jsonl")
    cfg = DistillConfig(
        student=str(tiny_bert_dir),
        architecture="segmented",
        teacher_scores=str(tmp_path / "scores.jsonl"),
        max_length=64,
        query_max_tokens=16,
        data=(DataSource(str(wikiqa), "dev"),),
        max_queries=queries,
        group=GroupConfig(size=queries),
        train=replace(train, log_every=0),
    )
    return groups, cfg


def package_fp32(student, pkg, wikiqa, queries: int):
    """``student`` packaged in fp32, verified against torch on the first ``queries`` wikiqa dev questions."""
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    verify = VerifyOptions(calibration=str(wikiqa), split="dev", max_queries=queries, max_ndcg_drop=1.0)
    build_package(student, pkg, PackageOptions(precision="fp32", verify=verify))
    return pkg


def test_drop_layers_keeps_the_bottom_of_the_stack(tiny_bert_dir):
    import torch

    full = load_segmented(tiny_bert_dir)
    small = load_segmented(tiny_bert_dir)
    drop_layers(small, 1)
    assert len(small.bert.encoder.layer) == 1 and small.config.num_hidden_layers == 1
    assert torch.equal(
        small.bert.encoder.layer[0].attention.self.query.weight, full.bert.encoder.layer[0].attention.self.query.weight
    )
    with pytest.raises(ConfigError, match="num_layers"):
        drop_layers(full, 5)
    cross = load_student(str(tiny_bert_dir))
    drop_layers(cross, 1)
    assert len(cross.bert.encoder.layer) == 1


def test_segmented_distillation_learns_and_packages(tiny_bert_dir, wikiqa, tmp_path):
    """Hybrid distillation of a segmented student lowers its loss, and the package scores like torch."""
    from ranker_sdk import Ranker
    from ranker_training.distill import scale_teacher_scores
    from ranker_training.evaluate import load_scorer
    from ranker_training.label import read_scores

    groups, cfg = _segmented_config(
        tiny_bert_dir, wikiqa, tmp_path, 6, TrainConfig(lr=2e-3, batch_size=3, max_steps=80, warmup_ratio=0.0)
    )
    out = train_distill(cfg, tmp_path / "student")
    assert is_segmented(out)
    meta = json.loads((out / STUDENT_META).read_text())
    assert meta["architecture"] == "segmented" and meta["max_length"] == 64
    targets, _ = scale_teacher_scores(read_scores(tmp_path / "scores.jsonl"), groups, "global")
    # The starting point: the same run with a learning rate that moves nothing (the head as fitted).
    before = train_distill(replace(cfg, train=replace(cfg.train, lr=1e-12, max_steps=1)), tmp_path / "before")
    assert _hybrid_loss_over(out, groups, targets) < 0.85 * _hybrid_loss_over(before, groups, targets)

    ranker = Ranker.load(package_fp32(out, tmp_path / "pkg", wikiqa, 3))
    prov = ranker.config.provenance
    assert prov["architecture"] == "SegmentedBiEncoder" and prov["distillation"]["architecture"] == "segmented"
    scorer = load_scorer(str(out))
    for g in groups[:3]:
        np.testing.assert_allclose(ranker.score(g.query, list(g.docs)), scorer(g), atol=1e-4, rtol=1e-4)


def test_freeze_layers_trains_only_the_top_of_the_stack(tiny_bert_dir, wikiqa, tmp_path):
    """With freeze_layers 1 the embeddings and layer 0 leave training as they came; the rest moves."""
    import torch
    from ranker_training.distill import freeze_layers

    with pytest.raises(ConfigError, match="freeze_layers must be at most"):
        freeze_layers(load_segmented(tiny_bert_dir), 5)
    _, cfg = _segmented_config(
        tiny_bert_dir, wikiqa, tmp_path, 4, TrainConfig(lr=1e-2, batch_size=2, max_steps=5, warmup_ratio=0.0)
    )
    cfg = replace(cfg, freeze_layers=1)
    out = train_distill(cfg, tmp_path / "student")
    start, tuned = load_segmented(tiny_bert_dir).bert, load_segmented(out).bert
    assert json.loads((out / STUDENT_META).read_text())["freeze_layers"] == 1
    for name, p in start.named_parameters():
        same = torch.equal(p, dict(tuned.named_parameters())[name])
        frozen = name.startswith(("embeddings.", "encoder.layer.0."))
        assert same == frozen, name
