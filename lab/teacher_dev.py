"""A run's teacher target on the dev sets: what the student is asked to learn, measured as a ranker.

    python -m lab.teacher_dev --run runs/cpu-e5 [--signals runs/signals]

The teacher of ``ranker train recipe`` is a weighted mean of signals' z-scores with weights
fitted per source on training labels (``RUN/scores.json``). Here the same signals, with those
weights, score the dev queries (no label is read to make the target; ``label_mix`` 0) and
``ranker eval`` measures the order they give: ``RUN/eval/teacher.json``, the ``teacher`` row of
the results table (``lab.build_default``). The computed signals' dev runs (E5, the bi-encoder) are
read from ``--signals`` (``python -m lab.signals --compute E5 BI_ENCODER`` writes them: half an
hour of E5 on this CPU, which is why the main job does not).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ranker_training.config import LabelConfig, RecipeConfig, load_config
from ranker_training.evaluate import evaluate_model
from ranker_training.label import label
from ranker_training.recipe import dev_teacher_config as recipe_dev_teacher

from lab.signals import dev_sources

ROOT = Path(__file__).resolve().parents[1]


def dev_teacher_config(run: Path, signals: Path) -> LabelConfig:
    """The run's teacher over the dev sets (``ranker_training.recipe.dev_teacher_config``), its
    computed signals' dev runs read from ``signals`` instead of computed."""
    label_cfg = load_config(RecipeConfig, run / "recipe_config.json").label
    report = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    cfg = recipe_dev_teacher(
        label_cfg,
        dev_sources(),
        fitted=report.get("fitted_weights") or {},
        out=str(run / "eval" / "teacher_scores.jsonl"),
    )
    return dataclasses.replace(cfg, signals=(), signal_sources={}, bi_encoder="", signal_dir=str(signals))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a `ranker train recipe` output with scores.json")
    ap.add_argument("--signals", default=str(ROOT / "runs" / "signals"), help="the dev runs of the computed signals")
    args = ap.parse_args(argv)
    run = Path(args.run)
    cfg = dev_teacher_config(run, Path(args.signals))
    (run / "eval").mkdir(parents=True, exist_ok=True)
    scores = label(cfg)
    result = evaluate_model(str(scores), list(cfg.data))
    out = run / "eval" / "teacher.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
