"""Configs: every field has a default, files round-trip, typos are refused, the examples load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ranker_sdk.errors import RankerError
from ranker_training import config as C

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
KINDS = {
    "cpt": C.CPTConfig,
    "teacher": C.TeacherConfig,
    "label": C.LabelConfig,
    "distill": C.DistillConfig,
    "recipe": C.RecipeConfig,
}


@pytest.mark.parametrize("cls", list(KINDS.values()) + [C.TrainConfig, C.EvalConfig])
def test_defaults_round_trip_through_json(cls, tmp_path):
    cfg = cls()
    C.save_config(cfg, tmp_path / "c.json")
    assert C.load_config(cls, tmp_path / "c.json") == cfg


def test_segmented_distill_config_loads():
    cfg = C.load_config(C.DistillConfig, CONFIGS / "distill-segmented.yaml")
    assert cfg.architecture == "segmented" and cfg.loss == "hybrid" and cfg.num_layers is None
    assert {Path(d.path).name: d.split for d in cfg.data}["trec-dl"] == "train:!dl21-"


def test_unknown_keys_and_wrong_types_are_refused(tmp_path):
    with pytest.raises(C.ConfigError, match="unknown key"):
        C.from_dict(C.TeacherConfig, {"train": {"learning_rate": 1}})
    with pytest.raises(C.ConfigError, match="expected int"):
        C.from_dict(C.TrainConfig, {"max_steps": "many"})
    with pytest.raises(C.ConfigError, match="true/false"):
        C.from_dict(C.TrainConfig, {"bf16": "yes"})
    path = tmp_path / "distill.yaml"
    path.write_text("student: s\ndata: [{split: dev}]\n")
    with pytest.raises(C.ConfigError, match=r"distill\.yaml: data\[0\]: missing key\(s\) \['path'\]"):
        C.load_config(C.DistillConfig, path)
    with pytest.raises(C.ConfigError, match=r"override max_queries: expected int, got 'x'"):
        C.apply_overrides(C.DistillConfig(), {"max_queries": "x"})
    with pytest.raises(C.ConfigError, match=r"override train\.max_steps: expected int, got 'many'"):
        C.apply_overrides(C.DistillConfig(), {"train.max_steps": "many"})


def test_an_empty_section_keeps_its_defaults(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("teacher:\neval:\n")
    assert C.load_config(C.RecipeConfig, path) == C.RecipeConfig()


def test_config_files_that_do_not_parse_name_the_file_and_line(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("train:\n  lr: 1e-4\n  max_steps: [3\n", encoding="utf-8")
    with pytest.raises(C.ConfigError, match=r"c\.yaml:4: not valid YAML"):
        C.load_config(C.TeacherConfig, y)
    j = tmp_path / "c.json"
    j.write_text('{\n  "loss": "bce",\n  "alpha": 1,,\n}\n', encoding="utf-8")
    with pytest.raises(C.ConfigError, match=r"c\.json:3: not valid JSON"):
        C.load_config(C.DistillConfig, j)
    # one hierarchy: a RankerError for the CLI, still the ValueError it always was
    assert issubclass(C.ConfigError, RankerError) and issubclass(C.ConfigError, ValueError)


def test_a_model_folder_without_a_checkpoint_is_refused(tmp_path):
    with pytest.raises(C.ConfigError, match="not a local checkpoint folder"):
        C.local_model_dir(str(tmp_path / "none"), "student")
    with pytest.raises(C.ConfigError, match="has no config.json"):  # transformers would fail deep inside
        C.local_model_dir(str(tmp_path), "student")
    (tmp_path / "config.json").write_text("{}")
    assert C.local_model_dir(str(tmp_path), "student") == str(tmp_path)


def test_numbers_out_of_range_are_refused_when_the_config_is_read(tmp_path):
    for text, match in [
        ("train: {max_steps: 0}", r"TrainConfig\.max_steps must be >= 1, got 0"),
        ("train: {lr: -1.0e-4}", r"TrainConfig\.lr must be > 0"),
        ("train: {warmup_ratio: 1.5}", r"TrainConfig\.warmup_ratio must be in \[0\.0, 1\.0\]"),
        ("train: {batch_size: 0}", r"TrainConfig\.batch_size"),
        ("group: {size: 1}", r"GroupConfig\.size must be >= 2"),
    ]:
        (tmp_path / "c.yaml").write_text(text + "\n", encoding="utf-8")
        with pytest.raises(C.ConfigError, match=f"c\\.yaml: {match}"):
            C.load_config(C.TeacherConfig, tmp_path / "c.yaml")
    with pytest.raises(C.ConfigError, match="grad_accum"):
        C.apply_overrides(C.CPTConfig(), {"train.grad_accum": 0})
    assert C.TrainConfig(log_every=0, save_every=0, max_grad_norm=0.0).log_every == 0  # 0 = off


@pytest.mark.parametrize(
    ("cls", "text", "match"),
    [
        (
            C.TeacherConfig,
            "loss: listwize",
            r"TeacherConfig\.loss must be one of \['pairwise', 'listwise'\], got 'listwize'",
        ),
        (C.TeacherConfig, "group: {negatives: easy}", r"GroupConfig\.negatives must be one of \['hard', 'random'\]"),
        (C.DistillConfig, "loss: margin", r"DistillConfig\.loss must be one of \['hybrid', 'pairwise', "),
        (C.DistillConfig, "architecture: bi", r"DistillConfig\.architecture must be one of \['cross', 'segmented'\]"),
        (C.DistillConfig, "teacher_scale: minmax", r"DistillConfig\.teacher_scale must be one of"),
        (C.DistillConfig, "title_augment: 1.5", r"DistillConfig\.title_augment must be in \[0\.0, 1\.0\], got 1\.5"),
        (C.DistillConfig, "num_layers: 0", r"DistillConfig\.num_layers must be >= 1, got 0"),
        (C.DistillConfig, "data: [{path: d, weight: -1}]", r"DataSource\.weight must be >= 0, got -1\.0"),
        (C.DistillConfig, "data: [{path: d, max_queries: 0}]", r"DataSource\.max_queries must be >= 1, got 0"),
        (C.LabelConfig, "label_mix: 1.5", r"LabelConfig\.label_mix must be in \[0\.0, 1\.0\], got 1\.5"),
        (C.LabelConfig, "runs: {BM25: -1}", r"LabelConfig: run and LLM weights must be >= 0"),
        (C.LabelConfig, "llm_weight: -0.5", r"LabelConfig: run and LLM weights must be >= 0"),
        (
            C.LabelConfig,
            "calibration: isotonic",
            r"LabelConfig\.calibration must be one of \['moments', 'least_squares'\]",
        ),
        (C.LabelConfig, "{shard: 2, num_shards: 2}", r"LabelConfig\.shard must be in \[0, num_shards\), got shard=2"),
        (C.LabelConfig, "batch_size: 0", r"LabelConfig\.batch_size must be >= 1"),
        (C.LabelConfig, "source_runs: {wikiqa: {BM25: -1}}", r"LabelConfig\.source_runs: run weights must be >= 0"),
        (C.TeacherConfig, "lora: {r: 0}", r"LoraSettings\.r must be >= 1, got 0"),
        (C.TeacherConfig, "lora: {alpha: 0}", r"LoraSettings\.alpha must be > 0, got 0"),
        (C.TeacherConfig, "lora: {dropout: 1.0}", r"LoraSettings\.dropout must be < 1"),
        (C.TeacherConfig, "lora: {dropout: -0.1}", r"LoraSettings\.dropout must be in \[0\.0, 1\.0\]"),
        (C.RecipeConfig, "eval: {k: 0}", r"EvalConfig\.k must be >= 1, got 0"),
        (C.RecipeConfig, "students: {s: {loss: margin}}", r"DistillConfig\.loss must be one of"),
    ],
)
def test_bad_settings_are_refused_when_the_config_is_read(cls, text, match, tmp_path):
    """A value outside a field's range or choices fails when the file is read, naming the file and field."""
    (tmp_path / "c.yaml").write_text(text + "\n", encoding="utf-8")
    with pytest.raises(C.ConfigError, match=f"c\\.yaml: .*{match}"):
        C.load_config(cls, tmp_path / "c.yaml")


def test_settings_the_cli_or_recipe_fill_in_may_be_missing_when_built():
    """No student, no teacher_scores, no model: the flags and the recipe supply them after reading."""
    assert C.DistillConfig().teacher_scores is None and C.DistillConfig().student == ""
    assert C.RecipeConfig().cpt.model == "" and C.LabelConfig().teacher == ""


def test_overrides_and_data_shorthands():
    cfg = C.from_dict(C.DistillConfig, {"data": "some/dir"})
    assert cfg.data == (C.DataSource("some/dir", "train"),)
    cfg = C.apply_overrides(cfg, {"train.max_steps": 3, "loss": "bce", "max_queries": None})
    assert (cfg.train.max_steps, cfg.loss, cfg.train.lr, cfg.max_queries) == (3, "bce", 5e-5, None)
    assert C.apply_overrides(cfg, {}) is cfg
    with pytest.raises(C.ConfigError, match=r"override train\.max_step: TrainConfig has no field 'max_step'"):
        C.apply_overrides(cfg, {"train.max_step": 3})  # a typo is refused, never dropped


def test_fields_that_must_agree_are_overridden_together():
    """shard 1 of 2 over a config of one shard: checked once both are set, not field by field."""
    cfg = C.apply_overrides(C.LabelConfig(), {"shard": 1, "num_shards": 2})
    assert (cfg.shard, cfg.num_shards) == (1, 2)
    with pytest.raises(C.ConfigError, match="shard=2 num_shards=2"):
        C.apply_overrides(cfg, {"shard": 2})


@pytest.mark.parametrize("name", sorted(KINDS))
def test_example_configs_load(name):
    cfg = C.load_config(KINDS[name], CONFIGS / f"{name}.yaml")
    assert cfg == C.from_dict(KINDS[name], C.to_dict(cfg))


FOUR_SOURCES = {"recipe-cpu.yaml": "hybrid_labels", "recipe-cpu-e5.yaml": "e5_dist"}


@pytest.mark.parametrize("name", ["recipe.yaml", *FOUR_SOURCES, "recipe-cpu-biencoder.yaml"])
def test_recipe_config_has_the_students_and_paths_resolve(name, data_dir):
    cfg = C.load_config(C.RecipeConfig, CONFIGS / name)
    # the CPU main jobs train the shipped student alone (its ablations are the GPU recipe's)
    first = FOUR_SOURCES.get(name, "hybrid")
    if name not in FOUR_SOURCES:
        assert {"hybrid", "labels_only", "pointwise_only", "margin_only"} <= set(cfg.students)
        assert cfg.students["labels_only"].loss != "hybrid"
        assert cfg.students["pointwise_only"].beta == 0 and cfg.students["margin_only"].alpha == 0
    assert cfg.students[first].loss == "hybrid"
    if cfg.run_teacher:
        assert Path(C.resolve_path(cfg.teacher.model), cfg.teacher.gguf_file).is_file()
    start = cfg.students[first].student
    if start.startswith(C.E5_SCHEME):  # written into the cache on first use: the image must be there
        from ranker_training.e5_checkpoint import image_path

        assert image_path(start[len(C.E5_SCHEME) :]).is_file()
    else:
        assert (Path(C.resolve_path(start)) / "model.safetensors").is_file()
    # the data mix: trec-dl's DL21 held out of training and used as its dev (squad in the CPU recipe)
    train = {Path(d.path).name: d for d in cfg.students[first].data}
    sets = {"trec-dl", "trec-rag24", "wikiqa"} | ({"squad"} if name in FOUR_SOURCES else set())
    assert set(train) == sets and train["trec-dl"].split == "train:!dl21-"
    assert train["trec-dl"].unjudged_queries and train["trec-dl"].weight > train["trec-rag24"].weight
    assert cfg.label.data == cfg.students[first].data
    dev = {Path(d.path).name: d.split for d in cfg.eval.data}
    assert dev == {"trec-dl": "train:dl21-", "trec-rag24": "dev", "wikiqa": "dev"} | (
        {"squad": "dev"} if name in FOUR_SOURCES else {}
    )
    for run in cfg.label.runs:  # every shipped run the teacher combines exists in trec-dl's runs/
        if run not in ("BI_ENCODER", "E5", "candidates"):
            assert (data_dir / "trec-dl" / "runs" / f"{run}.run").is_file(), run
    for name_, merge in cfg.merges.items():  # what the main job ships is a merge it evaluates
        assert merge.tuned in cfg.students and (cfg.eval.students is None or name_ in cfg.eval.students)


def test_cli_module_does_not_import_torch():
    code = "import sys, ranker_training.cli, ranker_training.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_docstring_examples_run():
    import doctest

    from ranker_training import config, data, evaluate, losses

    for mod in (config, data, losses, evaluate):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, mod.__name__


def test_a_merge_must_name_a_student_and_eval_students_must_exist():
    student = {"student": "x"}
    ok = C.from_dict(
        C.RecipeConfig,
        {"students": {"s": student}, "merges": {"s_wise": {"tuned": "s"}}, "eval": {"students": ["s_wise"]}},
    )
    assert ok.merges["s_wise"].alpha == 0.5 and ok.merges["s_wise"].base is None
    bad = [
        ({"students": {"s": student}, "merges": {"w": {"tuned": "t"}}}, r"merges\.w\.tuned: 't' is not a student"),
        ({"students": {"s": student}, "merges": {"s": {"tuned": "s"}}}, r"merges\.s: a student has that name"),
        ({"students": {"s": student}, "merges": {"w": {"tuned": "s", "alpha": 0}}}, r"alpha must be in \(0, 1\]"),
        ({"students": {"s": student}, "eval": {"students": ["nope"]}}, r"eval\.students: \['nope'\] name no student"),
    ]
    for raw, match in bad:
        with pytest.raises(C.ConfigError, match=match):
            C.from_dict(C.RecipeConfig, raw)
