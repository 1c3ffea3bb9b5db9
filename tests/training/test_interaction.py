"""Interaction blocks over the segmented student (ranker_models.segmented.add_interaction)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from ranker_models.segmented import INTERACTION_FILE, add_interaction, load_segmented, save_segmented
from ranker_training.config import ConfigError, DistillConfig, TrainConfig
from ranker_training.distill import STUDENT_META, train_distill
from ranker_training.loop import _adamw
from ranker_training.merge import MERGE_FILE, interpolate
from safetensors.numpy import load_file

from .test_distill_segmented import _segmented_config, package_fp32

QUERY = "who wrote the declaration of independence"
DOCS = [
    "Thomas Jefferson drafted the Declaration of Independence in 1776.",
    "short",
    "the Congress met in Philadelphia",
]


def _scores(model, tiny_bert_dir, query=QUERY, docs=DOCS):
    import torch
    from ranker_training.distill import StudentEncoder

    enc = StudentEncoder(tiny_bert_dir, max_length=64, query_max_tokens=16, doc_max_chars=640)
    arrays = enc.batch(query, docs)
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in arrays.items()}).logits.squeeze(-1).numpy()


def test_closed_gates_rank_as_the_bi_encoder_and_open_ones_read_the_other_segment(tiny_bert_dir):
    import torch

    plain = load_segmented(tiny_bert_dir).eval()
    model = load_segmented(tiny_bert_dir).eval()
    add_interaction(model, 2)
    top = model.bert.encoder.layer[-1].attention.self.query.weight
    assert torch.equal(model.interaction[1].query.weight, top)  # copied from the top layer, in order
    np.testing.assert_array_equal(_scores(model, tiny_bert_dir), _scores(plain, tiny_bert_dir))

    with torch.no_grad():
        for block in model.interaction:
            block.gate.fill_(1.0)
    opened = _scores(model, tiny_bert_dir)
    assert np.abs(opened - _scores(plain, tiny_bert_dir)).max() > 1e-4
    # Batch neighbours and padding never leak in: each doc scored alone gives the same score.
    alone = np.array([_scores(model, tiny_bert_dir, docs=[d])[0] for d in DOCS])
    np.testing.assert_allclose(alone, opened, atol=1e-5)
    with pytest.raises(ValueError, match="already"):
        add_interaction(model, 1)
    with pytest.raises(ValueError, match="between 1 and"):
        add_interaction(load_segmented(tiny_bert_dir), 99)


def test_blocks_survive_save_and_load(tiny_bert_dir, tmp_path):
    import torch

    model = load_segmented(tiny_bert_dir).eval()
    add_interaction(model, 1)
    with torch.no_grad():
        model.interaction[0].gate.fill_(0.7)
    save_segmented(model, tmp_path)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert_dir / f, tmp_path / f)
    assert json.loads((tmp_path / "segmented.json").read_text())["interaction_layers"] == 1
    back = load_segmented(tmp_path).eval()
    assert len(back.interaction) == 1 and float(back.interaction[0].gate.detach()) == pytest.approx(0.7)
    np.testing.assert_array_equal(_scores(back, tiny_bert_dir), _scores(model, tiny_bert_dir))


def test_config_refuses_interaction_without_the_segmented_architecture():
    with pytest.raises(ConfigError, match="needs architecture: segmented"):
        DistillConfig(student="x", architecture="cross", interaction_layers=1)
    with pytest.raises(ConfigError, match="interaction_lr"):
        DistillConfig(student="x", architecture="segmented", interaction_layers=1, interaction_lr=0.0)


def test_the_blocks_learn_at_their_own_rates(tiny_bert_dir):
    model = load_segmented(tiny_bert_dir)
    add_interaction(model, 1)
    model.learning_rates = {"interaction.0.gate": 1e-2, "interaction.0.query.weight": 1e-3}
    opt = _adamw(model, TrainConfig(lr=1e-4))
    by_param = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert by_param[id(model.interaction[0].gate)] == pytest.approx(100.0)
    assert by_param[id(model.interaction[0].query.weight)] == pytest.approx(10.0)
    assert by_param[id(model.interaction[0].key.weight)] == 1.0 and by_param[id(model.weight)] == 1.0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    model.learning_rates = {"interaction.9.gate": 1.0}
    with pytest.raises(ConfigError, match="name no parameter"):
        _adamw(model, TrainConfig(lr=1e-4))


def test_distillation_opens_the_gates_packages_and_merges(tiny_bert_dir, wikiqa, tmp_path):
    """A distilled student with one block: its gate moved, its package scores like torch, and its
    WiSE-FT merge keeps the tuned block with the gate times alpha."""
    from ranker_sdk import Ranker
    from ranker_training.evaluate import load_scorer

    groups, cfg = _segmented_config(
        tiny_bert_dir, wikiqa, tmp_path, 4, TrainConfig(lr=1e-3, batch_size=2, max_steps=6, warmup_ratio=0.0)
    )
    out = train_distill(replace(cfg, interaction_layers=1, interaction_gate_lr=5e-2), tmp_path / "student")
    assert json.loads((out / STUDENT_META).read_text())["interaction_layers"] == 1
    gate = float(load_file(str(out / INTERACTION_FILE))["0.gate"][0])
    assert abs(gate) > 0.05  # six steps at 5e-2 moved it; at the encoder's 1e-3 it could not pass 0.006

    ranker = Ranker.load(package_fp32(out, tmp_path / "pkg", wikiqa, 3))
    scorer = load_scorer(str(out))
    for g in groups[:3]:
        np.testing.assert_allclose(ranker.score(g.query, list(g.docs)), scorer(g), atol=1e-4, rtol=1e-4)

    merged = interpolate(out, 0.5, tmp_path / "wise")
    blocks, tuned = load_file(str(merged / INTERACTION_FILE)), load_file(str(out / INTERACTION_FILE))
    assert blocks["0.gate"][0] == pytest.approx(0.5 * gate)
    np.testing.assert_array_equal(blocks["0.query.weight"], tuned["0.query.weight"])
    assert "interaction_gates" in json.loads((merged / MERGE_FILE).read_text())
