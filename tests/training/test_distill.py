"""Distillation: runtime-identical inputs, teacher-score scaling, training, labels-only baselines."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ranker_sdk.encoding import TITLE_SEPARATOR
from ranker_training.config import ConfigError, DataSource, DistillConfig, GroupConfig, TrainConfig
from ranker_training.data import Group
from ranker_training.distill import STUDENT_META, scale_teacher_scores, train_distill


def test_checkpoint_scores_equal_the_runtime_package(tiny_bert_dir, tiny_ranker, wikiqa, tmp_path):
    """The HF student scored through the training encoder == the same model packaged and run by the SDK."""
    from ranker_eval.beir import load_groups
    from ranker_training.evaluate import load_scorer

    model = tmp_path / "student"
    shutil.copytree(tiny_bert_dir, model)
    cfg = tiny_ranker.config  # max_length 64, query_max_tokens 16, doc_max_chars 640
    (model / STUDENT_META).write_text(
        json.dumps(
            {
                "max_length": cfg.max_length,
                "query_max_tokens": cfg.query_max_tokens,
                "doc_max_chars": cfg.doc_max_chars,
                "title_separator": cfg.title_separator,
            }
        )
    )
    scorer = load_scorer(str(model), batch_size=4)
    groups = load_groups(wikiqa, "dev", max_queries=3)
    groups.append(
        Group("long", "why " * 40, ("x", "y"), ({"title": "T", "text": "long doc " * 400}, {"text": "short"}), (1, 0))
    )
    for g in groups:
        assert any(d.get("title") for d in g.docs)
        np.testing.assert_allclose(scorer(g), tiny_ranker.score(g.query, list(g.docs)), atol=1e-4, rtol=1e-4)


def test_teacher_scaling_global_and_per_query():
    groups = [Group("a", "q", ("1", "2"), ({}, {}), (1, 0)), Group("b", "q", ("1", "2"), ({}, {}), (0, 0))]
    raw = {("a", "1"): 4.0, ("a", "2"): 2.0, ("b", "1"): 0.0, ("b", "2"): 2.0, ("zz", "9"): 100.0}
    g, stats = scale_teacher_scores(raw, groups, "global")
    assert stats == {"mode": "global", "mean": 2.0, "std": pytest.approx(np.sqrt(2.0))}
    assert g[("a", "1")] == pytest.approx(2 / np.sqrt(2)) and ("zz", "9") not in g
    q, _ = scale_teacher_scores(raw, groups, "query")
    assert q[("a", "1")] == pytest.approx(1.0) and q[("b", "1")] == pytest.approx(-1.0)
    assert scale_teacher_scores(raw, groups, "none")[0][("a", "1")] == 4.0
    with pytest.raises(ConfigError):
        scale_teacher_scores(raw, groups, "minmax")


def _teacher_file(groups, path):
    """Synthetic teacher: the grade plus a small per-doc offset (what the student must learn to rank)."""
    with open(path, "w", encoding="utf-8") as fh:
        for g in groups:
            for i, (d, y) in enumerate(zip(g.doc_ids, g.labels)):
                fh.write(json.dumps({"qid": g.qid, "docid": d, "score": 3.0 * (y or 0) - 0.1 * i}) + "\n")


def _hybrid_loss_over(model_dir, groups, targets) -> float:
    """The hybrid loss (alpha = beta = 1) of a checkpoint over every candidate of every group."""
    import torch
    from ranker_training.evaluate import load_scorer
    from ranker_training.losses import hybrid_distill

    scorer = load_scorer(str(model_dir))
    vals = []
    for g in groups:
        s = torch.from_numpy(scorer(g))[None]
        t = torch.tensor([[targets[(g.qid, d)] for d in g.doc_ids]], dtype=torch.float32)
        vals.append(float(hybrid_distill(s, t, torch.ones_like(s, dtype=torch.bool))))
    return float(np.mean(vals))


def test_hybrid_distillation_learns_and_writes_the_runtime_settings(tiny_bert_dir, wikiqa, tmp_path):
    from ranker_eval.beir import load_groups
    from ranker_training.label import read_scores
    from transformers import AutoConfig

    src = (DataSource(str(wikiqa), "dev"),)
    groups = load_groups(wikiqa, "dev", max_queries=6)
    _teacher_file(groups, tmp_path / "scores.jsonl")
    before = tmp_path / "before"
    shutil.copytree(tiny_bert_dir, before)
    (before / STUDENT_META).write_text(json.dumps({"max_length": 64, "query_max_tokens": 16}))
    cfg = DistillConfig(
        student=str(tiny_bert_dir),
        teacher_scores=str(tmp_path / "scores.jsonl"),
        alpha=1.0,
        beta=1.0,
        max_length=64,
        query_max_tokens=16,
        data=src,
        max_queries=6,
        group=GroupConfig(size=6),
        train=TrainConfig(lr=2e-3, batch_size=3, max_steps=30, warmup_ratio=0.0, log_every=0),
    )
    out = train_distill(cfg, tmp_path / "student")
    targets, _ = scale_teacher_scores(read_scores(tmp_path / "scores.jsonl"), groups, "global")
    assert _hybrid_loss_over(out, groups, targets) < 0.5 * _hybrid_loss_over(before, groups, targets)
    meta = json.loads((out / STUDENT_META).read_text())
    assert (meta["max_length"], meta["query_max_tokens"], meta["title_separator"]) == (64, 16, TITLE_SEPARATOR)
    assert meta["teacher_scale"]["mode"] == "global"
    conf = AutoConfig.from_pretrained(out)
    assert conf.num_labels == 1
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "tokenizer.json", "config.json"}
    assert not any(p.suffix in (".bin", ".pt") for p in out.iterdir())


@pytest.mark.parametrize("loss", ["pairwise", "bce"])
def test_labels_only_baselines_train_without_a_teacher(loss, tiny_bert_dir, wikiqa, tmp_path):
    cfg = DistillConfig(
        student=str(tiny_bert_dir),
        loss=loss,
        max_length=64,
        query_max_tokens=16,
        data=(DataSource(str(wikiqa), "dev"),),
        max_queries=3,
        group=GroupConfig(size=4),
        train=TrainConfig(lr=2e-3, batch_size=4, max_steps=24, warmup_ratio=0.0, log_every=0),
    )
    out = train_distill(cfg, tmp_path / loss)
    losses = json.loads((out / "train_state.json").read_text())["losses"]
    assert np.mean(losses[-8:]) < np.mean(losses[:8]), losses  # 3 queries: learnable by heart; halves, not single steps


def test_hybrid_without_scores_is_refused(tiny_bert_dir, tmp_path):
    with pytest.raises(ConfigError, match="teacher_scores"):
        train_distill(DistillConfig(student=str(tiny_bert_dir), data=(DataSource("x"),)), tmp_path)


def test_student_loading_is_local_and_pickle_free(tiny_bert_dir, tmp_path):
    from ranker_training.config import ConfigError
    from ranker_training.distill import load_student
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(ConfigError, match="not a local checkpoint folder"):  # never looked up on a hub
        load_student(str(tmp_path / "no-such-student"))
    ckpt = tmp_path / "bin_ckpt"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).save_pretrained(ckpt, safe_serialization=False)
    with pytest.raises(OSError):  # only pytorch_model.bin: refused rather than unpickled
        load_student(str(ckpt))


def _pair_accuracy(model_dir, groups) -> float:
    """Share of (positive, negative) pairs of ``groups`` that the checkpoint orders right."""
    from ranker_training.evaluate import load_scorer

    scorer = load_scorer(str(model_dir))
    right = total = 0
    for g in groups:
        s = scorer(g)
        for i, yi in enumerate(g.labels):
            for j, yj in enumerate(g.labels):
                if yi is not None and yj is not None and yi > yj:
                    right += int(s[i] > s[j])
                    total += 1
    return right / total


def test_label_weight_adds_the_labels_rank_loss_to_the_hybrid(tiny_bert_dir, wikiqa, tmp_path):
    """Against a teacher that inverts the labels: the teacher's margins alone teach the inverted
    order, the label term alone (alpha = beta = 0) the right one; the weight is recorded."""
    from ranker_eval.beir import load_groups

    groups = [g for g in load_groups(wikiqa, "dev", max_queries=12) if any(y for y in g.labels)][:6]
    with open(tmp_path / "scores.jsonl", "w", encoding="utf-8") as fh:
        for g in groups:
            for d, y in zip(g.doc_ids, g.labels):
                fh.write(json.dumps({"qid": g.qid, "docid": d, "score": -3.0 * (y or 0)}) + "\n")
    src = (DataSource(str(wikiqa), "dev", with_positive=True),)

    def train(name: str, beta: float, label_weight: float):
        cfg = DistillConfig(
            student=str(tiny_bert_dir),
            teacher_scores=str(tmp_path / "scores.jsonl"),
            alpha=0.0,
            beta=beta,
            label_weight=label_weight,
            max_length=64,
            query_max_tokens=16,
            data=src,
            max_queries=6,
            group=GroupConfig(size=32),  # every candidate, every step
            train=TrainConfig(lr=2e-3, batch_size=3, max_steps=60, warmup_ratio=0.0, log_every=0),
        )
        return train_distill(cfg, tmp_path / name)

    by_labels, by_teacher = train("labels", 0.0, 1.0), train("teacher", 1.0, 0.0)
    assert _pair_accuracy(by_labels, groups) > 0.6 > 0.4 > _pair_accuracy(by_teacher, groups)
    meta = json.loads((by_labels / STUDENT_META).read_text())
    assert (meta["loss"], meta["label_weight"]) == ("hybrid", 1.0)


def test_pseudo_title_only_touches_untitled_docs_and_keeps_the_text():
    import random

    from ranker_training.distill import pseudo_title

    rng = random.Random(0)
    doc = {"title": "", "text": "the quick brown fox jumps over the lazy dog"}
    got = [pseudo_title(doc, 1.0, rng) for _ in range(20)]
    assert all(g["text"] == doc["text"] and doc["text"].startswith(g["title"]) for g in got)
    assert all(2 <= len(g["title"].split()) <= 8 for g in got)
    assert pseudo_title({"title": "Real", "text": doc["text"]}, 1.0, rng)["title"] == "Real"
    assert pseudo_title(doc, 0.0, rng) is doc and doc == {"title": "", "text": doc["text"]}  # never mutated
