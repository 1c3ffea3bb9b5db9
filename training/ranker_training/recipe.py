"""The full DisRanker recipe as one resumable driver: CPT -> teacher -> label -> students -> eval.

Layout of ``out``::

    cpt/                 causal LM after continued pre-training        (skipped if run_cpt: false)
    teacher/             merged backbone + head.safetensors + teacher.json
    scores.jsonl         teacher scores of every training candidate
    students/<name>/     one cross-encoder per entry of ``students``, and one per ``merges`` entry
                         (WiSE-FT of a student with its start)
    eval/<name>.json     metrics of every model and baseline on ``eval.data``
    eval.json            all of them together

A stage whose output is complete (``train_state.json`` says done; an eval file exists) is
skipped, and an interrupted trainer resumes from its checkpoint, so re-running the same command
after a crash or a timeout continues where it stopped. The labeller is itself resumable.

A finished stage is skipped only if it was trained with the settings it would get now (its
``train_config.json``): a recipe edited between two runs raises :class:`ConfigError` naming the
stage and the settings that changed, instead of silently keeping the old model. A student trained
in this run has its old eval file removed, so its figures are measured again.

Example:
    >>> cfg = load_config(RecipeConfig, "configs/recipe.yaml")          # doctest: +SKIP
    >>> run_recipe(cfg, "runs/default", max_queries=5, max_steps=2)     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

from .config import RecipeConfig, apply_overrides, save_config, to_dict
from .errors import ConfigError

__all__ = ["run_recipe", "dev_teacher_config"]

log = logging.getLogger(__name__)


def _is_main() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _barrier() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def _check_unchanged(stage_out: Path, cfg, what: str) -> None:
    """Refuse to reuse ``stage_out`` if it was trained with settings other than ``cfg``."""
    saved_path = stage_out / "train_config.json"
    if not saved_path.is_file():
        return
    saved = json.loads(saved_path.read_text(encoding="utf-8"))
    now = json.loads(json.dumps(to_dict(cfg)))  # the form save_config wrote
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        raise ConfigError(
            f"{what} in {stage_out} was trained with other settings ({', '.join(changed)} differ from the "
            "config now); remove that folder to train it again, or give the recipe another --out"
        )


def run_recipe(
    cfg: RecipeConfig,
    out: str | Path,
    *,
    max_queries: int | None = None,
    max_steps: int | None = None,
    run_eval: bool = True,
    progress=None,
) -> dict:
    """Run every stage of ``cfg`` into ``out`` (skipping finished ones); returns the eval results.

    ``max_queries`` and ``max_steps`` (a quick slice) override every stage's ``max_queries`` and
    ``train.max_steps``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if _is_main():
        save_config(cfg, out / "recipe_config.json")
    given = {"max_queries": max_queries, "train.max_steps": max_steps}
    ov = {k: v for k, v in given.items() if v is not None}
    teacher_out = _train_teacher(cfg, out, ov, progress)
    label_ov = {k: v for k, v in ov.items() if not k.startswith("train.")}  # the labeller trains nothing
    label_cfg = _label(cfg, out, teacher_out, label_ov, progress)
    students = _train_students(cfg, out, Path(label_cfg.out), ov, progress)
    students |= _merge_students(cfg, out, students)
    if not run_eval or not cfg.eval.data or not _is_main():
        return {}
    from .evaluate import BASELINES

    (out / "eval").mkdir(exist_ok=True)
    models = {b: b for b in BASELINES}
    if cfg.eval.include_teacher:
        models["teacher"] = (
            str(teacher_out) if cfg.run_teacher and not label_cfg.runs else _dev_teacher(label_cfg, cfg, out)
        )
    wanted = cfg.eval.students
    models |= {n: str(p) for n, p in students.items() if wanted is None or n in wanted}
    return _evaluate(cfg, out, models, max_queries, progress)


def _train_teacher(cfg: RecipeConfig, out: Path, ov: dict, progress) -> Path:
    """CPT (when ``run_cpt``), then the teacher on its output (when ``run_teacher``); the teacher's folder."""
    from .cpt import train_cpt
    from .loop import stage_done
    from .teacher import train_teacher

    teacher_cfg = apply_overrides(cfg.teacher, ov)
    if cfg.run_cpt:
        cpt_out = out / "cpt"
        if stage_done(cpt_out):
            _check_unchanged(cpt_out, apply_overrides(cfg.cpt, ov), "the CPT model")
            log.info("recipe: cpt done, skipping (%s)", cpt_out)
        else:
            train_cpt(apply_overrides(cfg.cpt, ov), cpt_out, progress=progress)
        teacher_cfg = dataclasses.replace(teacher_cfg, model=str(cpt_out), gguf_file=None)

    teacher_out = out / "teacher"
    if not cfg.run_teacher:
        log.info("recipe: run_teacher is false: the teacher target is label.runs and the labels")
    elif stage_done(teacher_out):
        _check_unchanged(teacher_out, teacher_cfg, "the teacher")
        log.info("recipe: teacher done, skipping (%s)", teacher_out)
    else:
        train_teacher(teacher_cfg, teacher_out, progress=progress)
    return teacher_out


def _label(cfg: RecipeConfig, out: Path, teacher_out: Path, ov: dict, progress):
    """The label stage into ``out/scores.jsonl`` (resumable; recombining the runs takes seconds); its config."""
    from .label import label

    label_cfg = dataclasses.replace(
        apply_overrides(cfg.label, ov),
        teacher=str(teacher_out) if cfg.run_teacher else "",
        out=str(out / "scores.jsonl"),
    )
    label(label_cfg, progress=progress)
    _barrier()
    return label_cfg


def _train_students(cfg: RecipeConfig, out: Path, scores: Path, ov: dict, progress) -> dict[str, Path]:
    """Every student of ``cfg.students`` (a hybrid one learns from ``scores``); name -> folder."""
    from .distill import train_distill
    from .loop import stage_done

    students = {}
    for name, dcfg in cfg.students.items():
        dcfg = apply_overrides(dcfg, ov)
        if dcfg.loss == "hybrid":
            dcfg = dataclasses.replace(dcfg, teacher_scores=str(scores))
        s_out = out / "students" / name
        if stage_done(s_out):
            _check_unchanged(s_out, dcfg, f"student {name!r}")
            log.info("recipe: student %s done, skipping", name)
        else:
            train_distill(dcfg, s_out, progress=progress)
            (out / "eval" / f"{name}.json").unlink(missing_ok=True)  # figures of an older model
        students[name] = s_out
    return students


def _merge_students(cfg: RecipeConfig, out: Path, students: dict[str, Path]) -> dict[str, Path]:
    """Every merge of ``cfg.merges`` (WiSE-FT of a student with its start); name -> folder. A merge
    already written from the same student and settings is kept; one older than its inputs (the
    tuned student, or a local ``base``, was trained again) is written again."""
    from .config import resolve_path
    from .merge import MERGE_FILE, WEIGHTS, interpolate

    merged = {}
    for name, m in cfg.merges.items():
        m_out = out / "students" / name
        tuned = students[m.tuned]
        record = m_out / MERGE_FILE
        if _is_main():
            inputs = [tuned / WEIGHTS] + ([Path(resolve_path(m.base)) / WEIGHTS] if m.base else [])
            newest = max(p.stat().st_mtime for p in inputs if p.is_file())
            fresh = record.is_file() and record.stat().st_mtime >= newest
            saved = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
            same = saved.get("alpha") == m.alpha and saved.get("tuned") == str(tuned)
            if fresh and same and (m.base is None or saved.get("base") == m.base):
                log.info("recipe: merge %s done, skipping", name)
            else:
                if m_out.exists():
                    shutil.rmtree(m_out)
                (out / "eval" / f"{name}.json").unlink(missing_ok=True)  # figures of an older model
                interpolate(tuned, m.alpha, m_out, base=m.base)
                log.info("recipe: merged %s = %g x %s + %g x its start", name, m.alpha, m.tuned, 1 - m.alpha)
        _barrier()
        merged[name] = m_out
    return merged


def _evaluate(cfg: RecipeConfig, out: Path, models: dict[str, str], max_queries: int | None, progress) -> dict:
    """Each model's metrics on ``cfg.eval``, in ``out/eval/<name>.json`` (a file already there is
    read, not measured again) and all together in ``out/eval.json``."""
    from .evaluate import evaluate_model

    results: dict = {}
    for name, model in models.items():
        path = out / "eval" / f"{name}.json"
        if path.is_file():
            results[name] = json.loads(path.read_text(encoding="utf-8"))
            continue
        res = evaluate_model(
            model,
            cfg.eval.data,
            k=cfg.eval.k,
            batch_size=cfg.eval.batch_size,
            max_queries=max_queries if max_queries is not None else cfg.eval.max_queries,
            progress=progress,
        )
        path.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        results[name] = res
    (out / "eval.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def dev_teacher_config(label_cfg, data, *, fitted: dict, out: str, max_queries: int | None = None):
    """The teacher of ``label_cfg`` over ``data`` (dev) with no label read to make it.

    ``fitted``: the weights the training split's fit chose per source (its ``scores.json``'s
    ``fitted_weights``), applied as they are (dev's labels never choose the teacher); given
    ``source_runs`` too. A source with neither keeps the priors of the signals its training had:
    a computed signal counts only on its ``signal_sources``, whatever dev runs exist for it.
    """
    weights = {**fitted, **label_cfg.source_runs}
    for src in data:
        name = Path(src.path).name
        if name not in weights:
            weights[name] = {
                k: w
                for k, w in label_cfg.runs.items()
                if k not in label_cfg.signals or name in label_cfg.signal_sources.get(k, (name,))
            }
    return dataclasses.replace(
        label_cfg,
        data=tuple(data),
        max_queries=max_queries,
        label_mix=0.0,
        source_label_mix={},
        grade_fallback=False,
        fit_weights=False,
        source_runs=weights,
        out=out,
    )


def _dev_teacher(label_cfg, cfg: RecipeConfig, out: Path) -> str:
    """The teacher's own scores of the eval data (no labels mixed in): what the student learns from."""
    from .label import label

    path = out / "eval" / "teacher_scores.jsonl"
    if not path.is_file():
        report = Path(label_cfg.out).with_suffix(".json")
        fitted = json.loads(report.read_text(encoding="utf-8")).get("fitted_weights", {}) if report.is_file() else {}
        label(
            dev_teacher_config(label_cfg, cfg.eval.data, fitted=fitted, out=str(path), max_queries=cfg.eval.max_queries)
        )
    return str(path)
