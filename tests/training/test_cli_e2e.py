"""End to end through the `ranker` CLI on a slice of wikiqa: cpt -> teacher -> label -> distill -> eval,
the recipe driver with resume, and a 2-process (gloo, CPU) run under `torchrun`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ranker_sdk.cli import main

pytestmark = pytest.mark.slow


def _yaml(path, obj):
    path.write_text(yaml.safe_dump(obj), encoding="utf-8")
    return str(path)


def _small_train(steps=3, **kw):
    return {"lr": 1e-3, "batch_size": 2, "max_steps": steps, "warmup_ratio": 0.0, "log_every": 1, **kw}


def test_every_stage_through_the_cli(tmp_path, tiny_llama_dir, tiny_bert_dir, tiny_package, wikiqa, capsys):
    d = tmp_path
    data = ["--data", str(wikiqa), "--split", "dev", "--max-queries", "5"]
    cpt = _yaml(
        d / "cpt.yaml",
        {"model": str(tiny_llama_dir), "max_length": 64, "query_max_tokens": 16, "train": _small_train()},
    )
    assert main(["train", "cpt", "--config", cpt, "--out", str(d / "cpt"), *data]) == 0
    teacher = _yaml(
        d / "teacher.yaml",
        {
            "model": "unused",
            "max_length": 64,
            "query_max_tokens": 16,
            "lora": {"r": 4, "alpha": 8},
            "group": {"size": 4},
            "train": _small_train(bf16=True),
        },
    )
    assert (
        main(
            [
                "train",
                "teacher",
                "--config",
                teacher,
                "--model",
                str(d / "cpt"),
                "--out",
                str(d / "teacher"),
                "--loss",
                "listwise",
                *data,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "label",
                "--teacher",
                str(d / "teacher"),
                "--out",
                str(d / "scores.tsv"),
                "--batch-size",
                "4",
                *data,
            ]
        )
        == 0
    )
    n_pairs = len((d / "scores.tsv").read_text().splitlines())
    distill = _yaml(
        d / "distill.yaml",
        {
            "student": str(tiny_bert_dir),
            "max_length": 64,
            "query_max_tokens": 16,
            "alpha": 0.5,
            "beta": 2.0,
            "teacher_scale": "query",
            "train": _small_train(),
        },
    )
    assert (
        main(
            [
                "train",
                "distill",
                "--config",
                distill,
                "--teacher-scores",
                str(d / "scores.tsv"),
                "--out",
                str(d / "student"),
                *data,
            ]
        )
        == 0
    )
    capsys.readouterr()
    results = {}
    for model in (str(d / "student"), str(d / "teacher"), str(tiny_package), "first-stage", "bm25"):
        assert (
            main(["eval", "--model", model, "--data", str(wikiqa), "--split", "dev", "--max-queries", "5", "--json"])
            == 0
        )
        results[model] = json.loads(capsys.readouterr().out)["sources"][0]
    queries = {r["queries"] for r in results.values()}
    assert len(queries) == 1 and queries.pop() >= 1
    assert all(0.0 <= r["map"] <= 1.0 and 0.0 <= r["ndcg@10"] <= 1.0 for r in results.values())
    from ranker_eval.beir import load_groups

    assert n_pairs == sum(len(g.doc_ids) for g in load_groups(wikiqa, "dev", max_queries=5))
    assert main(["train", "distill", "--config", str(d / "nope.yaml")]) == 1  # a readable error, not a traceback


def test_recipe_runs_every_stage_and_skips_finished_ones(tmp_path, tiny_llama_dir, tiny_bert_dir, wikiqa, capsys):
    out = tmp_path / "run"
    data = [{"path": str(wikiqa), "split": "dev"}]
    student = {
        "student": str(tiny_bert_dir),
        "max_length": 64,
        "query_max_tokens": 16,
        "data": data,
        "train": _small_train(),
    }
    recipe = _yaml(
        tmp_path / "recipe.yaml",
        {
            "cpt": {
                "model": str(tiny_llama_dir),
                "max_length": 64,
                "query_max_tokens": 16,
                "data": data,
                "train": _small_train(),
            },
            "teacher": {
                "max_length": 64,
                "query_max_tokens": 16,
                "lora": {"r": 4, "alpha": 8},
                "data": data,
                "train": _small_train(),
            },
            "label": {"data": data, "batch_size": 8},
            "students": {
                "hybrid": student,
                "labels_only": {**student, "loss": "pairwise"},
                "margin_only": {**student, "alpha": 0.0},
            },
            # a cross-encoder's head started random, so its merge names the start: here another student
            "merges": {"hybrid_wise": {"tuned": "hybrid", "alpha": 0.5, "base": str(out / "students" / "labels_only")}},
            "eval": {"data": data, "k": 5, "students": ["hybrid", "labels_only", "hybrid_wise"]},
        },
    )
    assert (
        main(["train", "recipe", "--config", recipe, "--out", str(out), "--max-queries", "4", "--max-steps", "2"]) == 0
    )
    res = json.loads((out / "eval.json").read_text())
    # margin_only is trained but not evaluated: eval.students leaves it out
    assert set(res) == {"first-stage", "bm25", "random", "teacher", "hybrid", "labels_only", "hybrid_wise"}
    assert "ndcg@5" in res["hybrid"]["sources"][0] and "ndcg@5" in res["hybrid_wise"]["sources"][0]
    assert json.loads((out / "students" / "margin_only" / "train_state.json").read_text())["losses"]
    merge = json.loads((out / "students" / "hybrid_wise" / "merge.json").read_text())
    assert merge["alpha"] == 0.5 and merge["tuned"] == str(out / "students" / "hybrid")
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")}
    assert len(stamps) == 6  # cpt, teacher, 3 students, 1 merge
    assert (
        main(["train", "recipe", "--config", recipe, "--out", str(out), "--max-queries", "4", "--max-steps", "2"]) == 0
    )
    assert {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")} == stamps
    assert "hybrid" in capsys.readouterr().out

    # an edited recipe does not silently reuse a student trained with the old settings
    cfg = yaml.safe_load(Path(recipe).read_text())
    cfg["students"]["labels_only"]["query_max_tokens"] = 12
    edited = _yaml(tmp_path / "edited.yaml", cfg)
    args = ["train", "recipe", "--config", edited, "--out", str(out), "--max-queries", "4", "--max-steps", "2"]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "student 'labels_only'" in err and "query_max_tokens" in err and "Traceback" not in err
    shutil.rmtree(out / "students" / "labels_only")
    old_eval = (out / "eval" / "labels_only.json").stat().st_mtime_ns
    old_merge_eval = (out / "eval" / "hybrid_wise.json").stat().st_mtime_ns
    assert main(args) == 0  # retrains that student alone, merges again from it, and measures both again
    after = {p: p.stat().st_mtime_ns for p in out.rglob("model.safetensors")}
    changed = {p for p in after if after[p] != stamps.get(p)}
    assert changed == {out / "students" / n / "model.safetensors" for n in ("labels_only", "hybrid_wise")}
    assert (out / "eval" / "labels_only.json").stat().st_mtime_ns != old_eval
    assert (out / "eval" / "hybrid_wise.json").stat().st_mtime_ns != old_merge_eval


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_under_torchrun(tmp_path, tiny_llama_dir):
    """DDP over gloo: the teacher trainer runs unchanged in 2 processes, checkpoints, and finishes once."""
    log = tmp_path / "clicks.jsonl"
    log.write_text(
        "".join(
            json.dumps({"query": f"question {q}", "title": "T", "summary": text, "clicks": int(k == 0)}) + "\n"
            for q in range(8)
            for k, text in enumerate(["the relevant answer", "filler one", "filler two"])
        ),
        encoding="utf-8",
    )
    cfg = _yaml(
        tmp_path / "teacher.yaml",
        {
            "model": str(tiny_llama_dir),
            "max_length": 48,
            "query_max_tokens": 8,
            "lora": {"r": 4, "alpha": 8},
            "data": [{"path": str(log)}],
            "group": {"size": 3},
            "train": {"lr": 1e-3, "batch_size": 2, "grad_accum": 2, "max_steps": 4, "save_every": 2, "log_every": 1},
        },
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # torchrun (accelerate launch --cpu runs a single process unless MPI is set up); Accelerator reads
    # the launcher's environment and uses DDP over gloo on CPUs, NCCL on GPUs.
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "ranker_sdk.cli",
        "train",
        "teacher",
        "--config",
        cfg,
        "--out",
        str(tmp_path / "t"),
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    state = json.loads((tmp_path / "t" / "train_state.json").read_text())
    assert state["done"] and state["num_processes"] == 2 and len(state["losses"]) == 4
    assert not (tmp_path / "t" / "checkpoint").exists()
    assert (tmp_path / "t" / "head.safetensors").is_file()


def test_eval_with_positive_keeps_answerable_questions_before_the_first_n(wikiqa, capsys):
    """squad's dev headline counts the first 300 answerable questions: --with-positive filters, then takes N."""

    def run(*extra):
        argv = ["eval", "--model", "bm25", "--data", str(wikiqa), "--split", "dev", "--max-queries", "20", "--json"]
        assert main([*argv, *extra]) == 0
        return json.loads(capsys.readouterr().out)["sources"][0]

    plain, answerable = run(), run("--with-positive")
    assert plain["queries"] + plain["skipped"] == 20 and plain["skipped"] > 0
    assert answerable["queries"] == 20 and answerable["skipped"] == 0
