"""The shared loop: a resumed run ends exactly where an uninterrupted one does; no pickle on disk."""

from __future__ import annotations

import json

import pytest
import torch
from ranker_training.config import TrainConfig
from ranker_training.loop import lr_at, train_loop


class Boom(RuntimeError):
    pass


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))


def _loss(fail_at=None):
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    y = x.sum(-1, keepdim=True)

    def fn(m, step, micro):
        if step == fail_at:
            raise Boom()
        i = torch.arange(8) + 8 * ((step * 2 + micro) % 8)
        dev = next(m.parameters()).device  # the accelerator's device (CUDA when there is one)
        return ((m(x[i].to(dev)) - y[i].to(dev)) ** 2).mean()

    return fn


def test_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(lr=1e-2, max_steps=6, grad_accum=2, save_every=2, warmup_ratio=0.2, log_every=0)
    ref, ref_hist, _ = train_loop(_model(), _loss(), cfg, tmp_path / "a")
    with pytest.raises(Boom):
        train_loop(_model(), _loss(fail_at=5), cfg, tmp_path / "b")
    ckpt = tmp_path / "b" / "checkpoint"
    assert json.loads((ckpt / "state.json").read_text())["step"] == 4
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "state.json",
    ]
    got, hist, _ = train_loop(_model(), _loss(), cfg, tmp_path / "b")
    assert hist == pytest.approx(ref_hist, rel=1e-5)
    for a, b in zip(ref.parameters(), got.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, max_steps=10, warmup_ratio=0.2)
    assert [round(lr_at(cfg, s), 3) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]


def test_sharded_engines_refuse_resumable_checkpoints_instead_of_pickling(tmp_path, monkeypatch):
    """Under FSDP / DeepSpeed the optimizer state is sharded and accelerate would pickle it: refused."""
    import ranker_training.loop as loop
    from ranker_training.config import ConfigError

    monkeypatch.setattr(loop, "_sharded", lambda accelerator: True)  # what an FSDP/DeepSpeed run reports
    cfg = TrainConfig(lr=1e-2, max_steps=2, save_every=1, warmup_ratio=0.0, log_every=0)
    with pytest.raises(ConfigError, match="save_every: 0"):
        train_loop(_model(), _loss(), cfg, tmp_path / "a")
    assert not (tmp_path / "a" / "checkpoint").exists()
    # without checkpoints the run goes ahead, and nothing on disk is a pickle
    model, hist, _ = train_loop(
        _model(), _loss(), TrainConfig(lr=1e-2, max_steps=2, save_every=0, log_every=0), tmp_path / "b"
    )
    assert len(hist) == 2
    assert not any(p.suffix in (".bin", ".pkl", ".pt") for p in tmp_path.rglob("*"))
