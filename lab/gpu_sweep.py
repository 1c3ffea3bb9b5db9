"""Distil and evaluate several students at once on a lent GPU machine, within a time budget.

Every job is ``configs/distill-segmented.yaml`` with a few settings changed; each one is trained
(``ranker train distill``) and then evaluated on the three dev sets (``ranker eval``), several jobs
side by side on the one GPU. Jobs not finished by the deadline are stopped; what finished is
written to ``$OUT/results.json`` as it lands. The pick is declared here, before any result:
the full-depth hybrid-loss student with the best mean of the three dev headlines (trec-dl nDCG@10 trec_eval,
trec-rag24 nDCG@10, wikiqa MAP), and the best layer-dropped one; both are packed into ``$OUT``
(lab/gpu_pack.py) for packaging on a CPU machine.

    OUT=/tmp/out BUDGET_S=380 WORKERS=6 python -m lab.gpu_sweep [--tiny]
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from lab.gpu_pack import pack
from lab.report import headlines as _headlines

T0 = time.time()
BUDGET = float(os.environ.get("BUDGET_S", "380"))
OUT = Path(os.environ["OUT"])
RUNS = Path(os.environ.get("RUNS", "runs/gpu"))
TEACHER = os.environ.get("TEACHER", "runs/dl/scores.jsonl")
TINY = "--tiny" in sys.argv
PY = [sys.executable, "-m", "ranker_sdk.cli"]
DEV = [
    "--data",
    "../shared/data/trec-dl=train:dl21-",
    "--data",
    "../shared/data/trec-rag24",
    "--data",
    "../shared/data/wikiqa",
    "--split",
    "dev",
]
CROSS = {"architecture": "cross", "train": {"lr": 1.0e-4}}

# name, changes to the base config (train: merged). Priority order: the first run first.
JOBS = [
    ("seg_zero", None),  # eval only: the bi-encoder as it ships
    ("seg_hybrid_lr2e5_1k", {}),  # = the CPU run (cross-check)
    ("seg_hybrid_lr5e5_1k", {"train": {"lr": 5.0e-5}}),
    ("seg_hybrid_lr2e5_3k", {"train": {"max_steps": 3000}}),
    ("seg_hybrid_lr1e5_1k", {"train": {"lr": 1.0e-5}}),
    ("seg_labels_only", {"loss": "pairwise"}),
    ("seg_pointwise_only", {"beta": 0.0}),
    ("seg_margin_only", {"alpha": 0.0}),
    ("seg_hybrid_L3", {"num_layers": 3, "train": {"lr": 5.0e-5, "max_steps": 2000}}),
    ("seg_hybrid_L4", {"num_layers": 4, "train": {"lr": 5.0e-5, "max_steps": 2000}}),
    ("seg_hybrid_L2", {"num_layers": 2, "train": {"lr": 5.0e-5, "max_steps": 2000}}),
    ("cross_hybrid_3k", {**CROSS, "train": {"lr": 1.0e-4, "max_steps": 3000}}),
    ("seg_hybrid_lr2e5_1k_b16", {"train": {"batch_size": 16}}),
    ("cross_hybrid_L3", {**CROSS, "num_layers": 3, "train": {"lr": 1.0e-4, "max_steps": 2000}}),
]

# The second call: the hybrid loss plus the labels' pairwise term (label_weight), after the first
# call found labels-only best on trec-rag24 and wikiqa (whose teacher target is the label itself)
# and hybrid best on trec-dl (where the external rankers teach).
JOBS_2 = [
    ("seg_hybrid_lw1", {"label_weight": 1.0}),
    ("seg_hybrid_lw05", {"label_weight": 0.5}),
    ("seg_hybrid_lw2", {"label_weight": 2.0}),
    ("seg_hybrid_lw1_lr5e5", {"label_weight": 1.0, "train": {"lr": 5.0e-5}}),
    ("seg_hybrid_lw1_lr1e5", {"label_weight": 1.0, "train": {"lr": 1.0e-5}}),
    ("seg_hybrid_lw1_L4", {"label_weight": 1.0, "num_layers": 4, "train": {"lr": 5.0e-5, "max_steps": 2000}}),
    ("seg_hybrid_lw1_seed1", {"label_weight": 1.0, "train": {"seed": 1}}),
    ("seg_hybrid_seed1", {"train": {"seed": 1}}),
]
if "--set2" in sys.argv:
    JOBS = JOBS_2


def left() -> float:
    return BUDGET - (time.time() - T0)


def merged(changes: dict) -> dict:
    cfg = yaml.safe_load(Path("configs/distill-segmented.yaml").read_text())
    changes = copy.deepcopy(changes)
    cfg["train"].update(changes.pop("train", {}))
    cfg.update(changes)
    cfg["train"]["save_every"] = 0
    cfg["train"]["log_every"] = 250
    if TINY:
        cfg["train"]["max_steps"] = 2
        cfg["max_queries"] = 3
    return cfg


def headlines(res: dict) -> dict:
    """The dev headlines of one ``ranker eval --json`` result by data set; a set that covers no
    query is left out (not reported as 0.0)."""
    return {data: v for (data, _), v in _headlines(res).items()}


def seg_zero(out: Path) -> None:
    """The bi-encoder as it ships, saved as a segmented student (the head's scale does not rank)."""
    import shutil

    from ranker_models.segmented import load_segmented, save_segmented
    from ranker_training.config import local_model_dir

    base = merged({})  # the encoding settings every student of the sweep is trained and evaluated with
    src = Path(local_model_dir(base["student"], "student"))
    save_segmented(load_segmented(src), out)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(src / f, out / f)
    meta = {k: base[k] for k in ("architecture", "max_length", "query_max_tokens", "doc_max_chars", "title_separator")}
    meta |= {"base_model": base["student"], "loss": "none: the encoder as it ships, zero-shot"}
    (out / "ranker_student.json").write_text(json.dumps(meta) + "\n")


def job(name: str, changes: dict | None, results: dict) -> None:
    if left() < 90:
        results[name] = {"skipped": "out of time"}
        return
    out = RUNS / name
    log = open(RUNS / f"{name}.log", "w")
    t = time.time()
    if changes is None:
        seg_zero(out)
    else:
        cfg_path = RUNS / f"{name}.yaml"
        cfg_path.write_text(yaml.safe_dump(merged(changes)))
        try:
            rc = subprocess.run(
                PY + ["train", "distill", "--config", str(cfg_path), "--teacher-scores", TEACHER, "--out", str(out)],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=max(1.0, left() - 45),
            ).returncode
        except subprocess.TimeoutExpired:
            results[name] = {"failed": "train: out of time", "train_s": time.time() - t}
            return
        if rc:
            results[name] = {"failed": f"train exit {rc}"}
            return
    train_s = time.time() - t
    try:
        p = subprocess.run(
            PY + ["eval", "--model", str(out), *DEV, "--json"] + (["--max-queries", "2"] if TINY else []),
            capture_output=True,
            text=True,
            timeout=max(1.0, left() - 15),
        )
    except subprocess.TimeoutExpired:
        results[name] = {"failed": "eval: out of time", "train_s": train_s}
        return
    log.write(p.stderr)
    if p.returncode:
        results[name] = {"failed": f"eval exit {p.returncode}", "train_s": train_s}
        return
    res = json.loads(p.stdout)
    h = headlines(res)
    results[name] = {
        "changes": changes,
        "train_s": round(train_s, 1),
        "eval_s": round(time.time() - t - train_s, 1),
        "headlines": h,
        "mean": sum(h.values()) / len(h) if h else None,
        "eval": res,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(f"[{time.time() - T0:6.0f}s] {name}: {h} mean {results[name]['mean']}", flush=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    with ThreadPoolExecutor(int(os.environ.get("WORKERS", "8"))) as pool:
        for name, changes in JOBS:
            pool.submit(job, name, changes, results)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    # Shippable: the method's student, distilled with the whole hybrid loss (ablations only report).
    done = {
        k: v
        for k, v in results.items()
        if "mean" in v and k != "seg_zero" and not ({"loss", "alpha", "beta"} & set(v["changes"] or {}))
    }
    full = {k: v for k, v in done.items() if not (v["changes"] or {}).get("num_layers")}
    small = {k: v for k, v in done.items() if (v["changes"] or {}).get("num_layers")}
    picks = {}
    for tag, pool_ in (("full", full), ("small", small)):
        if pool_:
            best = max(pool_, key=lambda k: pool_[k]["mean"])
            pack(RUNS / best, OUT, tag)
            picks[tag] = best
    (OUT / "picks.json").write_text(json.dumps(picks))
    print("picks", picks, f"total {time.time() - T0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
