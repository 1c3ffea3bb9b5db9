"""merge.py: WiSE-FT interpolation writes exactly (1 - alpha) * start + alpha * tuned, and refuses misuse."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ranker_models.segmented import load_segmented, save_segmented
from ranker_training.config import ConfigError
from ranker_training.merge import MERGE_FILE, interpolate
from safetensors.numpy import load_file


@pytest.fixture
def tuned(tiny_bert_dir, tmp_path):
    """A segmented student that moved away from its start, recording that start as base_model."""
    import torch

    model = load_segmented(tiny_bert_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.bert.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.weight.fill_(4.0)
        model.bias.fill_(-1.0)
    out = tmp_path / "tuned"
    save_segmented(model, out)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert_dir / f, out / f)
    (out / "ranker_student.json").write_text(json.dumps({"base_model": str(tiny_bert_dir), "max_length": 64}))
    return out


def test_interpolates_the_encoder_with_its_start_and_keeps_the_head(tuned, tiny_bert_dir, tmp_path):
    start = tmp_path / "start"
    save_segmented(load_segmented(tiny_bert_dir), start)
    a, b = load_file(str(start / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    assert any(not np.allclose(a[k], b[k]) for k in b)  # the student did move

    out = interpolate(tuned, 0.7, tmp_path / "merged")  # the start taken from ranker_student.json
    m = load_file(str(out / "model.safetensors"))
    for k in b:
        np.testing.assert_allclose(m[k], 0.3 * a[k] + 0.7 * b[k], rtol=1e-6, atol=1e-7)
    assert load_file(str(out / "score_head.safetensors"))["weight"][0] == 4.0  # the tuned head
    record = json.loads((out / MERGE_FILE).read_text())
    assert record["alpha"] == 0.7 and record["base"] == str(tiny_bert_dir)
    assert (out / "tokenizer.json").read_bytes() == (tuned / "tokenizer.json").read_bytes()

    same = interpolate(tuned, 1.0, tmp_path / "alpha1", base=start)  # alpha 1 is the tuned model itself
    s = load_file(str(same / "model.safetensors"))
    assert all(np.array_equal(s[k], b[k]) for k in b)


def test_refuses_bad_alpha_existing_out_cross_without_base_and_other_shapes(tuned, tiny_bert_dir, tmp_path):
    for alpha in (0.0, -0.5, 1.5, "0.7"):
        with pytest.raises(ConfigError, match="alpha"):
            interpolate(tuned, alpha, tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="exists"):
        interpolate(tuned, 0.5, tmp_path / "taken")
    with pytest.raises(ConfigError, match="cross-encoder"):
        interpolate(tiny_bert_dir, 0.5, tmp_path / "cross")
    other = tmp_path / "other"
    model = load_segmented(tiny_bert_dir)
    model.bert.encoder.layer = model.bert.encoder.layer[:1]
    model.bert.config.num_hidden_layers = 1
    save_segmented(model, other)
    with pytest.raises(ConfigError, match="not the same architecture"):
        interpolate(tuned, 0.5, tmp_path / "y", base=other)
    assert not (tmp_path / "y").exists()


def test_an_interrupted_merge_leaves_nothing_a_rerun_refuses(tuned, tmp_path, monkeypatch):
    """The merge is written beside ``out`` and renamed into place: stopped while writing (Ctrl-C
    here), it leaves neither ``out`` nor a partial folder, and the same call then succeeds."""
    import safetensors.numpy

    real = safetensors.numpy.save_file

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.numpy, "save_file", interrupted)
    where = tmp_path / "merges"
    with pytest.raises(KeyboardInterrupt):
        interpolate(tuned, 0.5, where / "merged")
    assert list(where.iterdir()) == []
    monkeypatch.setattr(safetensors.numpy, "save_file", real)
    out = interpolate(tuned, 0.5, where / "merged")
    assert (out / MERGE_FILE).is_file() and [p.name for p in where.iterdir()] == ["merged"]
    assert out.stat().st_mode & 0o755 == 0o755
