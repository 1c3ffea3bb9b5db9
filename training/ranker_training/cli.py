"""``ranker train {cpt,teacher,label,distill,recipe}`` and ``ranker eval``: thin drivers.

Each command reads a config file (``--config``, YAML or JSON; see ``configs/``), applies the
few overrides given on the command line, and calls the library function of the same name.
Nothing heavy is imported here: torch and transformers load when a command runs. Progress bars
(tqdm) are the CLI's; the library only logs.

Scale out with an existing launcher, unchanged::

    accelerate launch --num_processes 2 -m ranker_sdk.cli train teacher --config configs/teacher.yaml --out runs/t
    torchrun --nproc_per_node 8 -m ranker_sdk.cli train distill --config configs/distill.yaml --out runs/s
"""

from __future__ import annotations

import argparse
import json
import logging
import os

__all__ = ["register"]


def _progress(**kw):
    from tqdm.auto import tqdm

    return tqdm(dynamic_ncols=True, **kw)


def _setup_logging() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: loads are local_files_only too
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _sources(args):
    if not getattr(args, "data", None):
        return None
    from ranker_eval.beir import parse_source

    from .config import DataSource
    from .errors import ConfigError

    out = []
    for p in args.data:  # DIR, or DIR=SPLIT to give this folder its own split
        parsed = parse_source(p, args.split)
        if parsed is None:
            raise ConfigError(f"--data {p!r}: expected DIR or DIR=SPLIT (a BEIR folder or a click-log .jsonl)")
        out.append(DataSource(path=parsed[0], split=parsed[1]))
    return tuple(out)


def _int_at_least(low: int):
    """An argparse type: an integer >= ``low``, so a typo like ``--max-queries 0`` fails before any work."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _guard(fn):
    """Set up logging, then run the command; its errors (RankerError) are the ``ranker`` main's to print."""

    def run(args: argparse.Namespace) -> int:
        _setup_logging()
        return fn(args)

    return run


def _load(cls, args, **overrides):
    from .config import apply_overrides, load_config

    cfg = load_config(cls, args.config) if args.config else cls()
    return apply_overrides(cfg, **overrides)


@_guard
def _cmd_cpt(args) -> int:
    from .config import CPTConfig

    cfg = _load(CPTConfig, args, data=_sources(args), max_queries=args.max_queries, train_max_steps=args.max_steps)
    cfg = _model_override(cfg, args)
    from .cpt import train_cpt  # torch: after the config is read and checked

    print(train_cpt(cfg, args.out, progress=_progress))
    return 0


@_guard
def _cmd_teacher(args) -> int:
    from .config import TeacherConfig

    cfg = _load(
        TeacherConfig,
        args,
        model=args.model,
        data=_sources(args),
        max_queries=args.max_queries,
        loss=args.loss,
        train_max_steps=args.max_steps,
    )
    cfg = _model_override(cfg, args)
    from .teacher import train_teacher  # torch: after the config is read and checked

    print(train_teacher(cfg, args.out, progress=_progress))
    return 0


def _model_override(cfg, args):
    """``--model`` replaces the config's model *and* its gguf_file (a plain folder unless --gguf-file)."""
    import dataclasses

    if args.model:
        return dataclasses.replace(cfg, model=args.model, gguf_file=args.gguf_file)
    return cfg


@_guard
def _cmd_label(args) -> int:
    from .config import LabelConfig

    cfg = _load(
        LabelConfig,
        args,
        teacher=args.teacher,
        data=_sources(args),
        out=args.out,
        shard=args.shard,
        num_shards=args.num_shards,
        batch_size=args.batch_size,
        max_queries=args.max_queries,
    )
    from .label import label

    print(label(cfg, progress=_progress))
    return 0


@_guard
def _cmd_distill(args) -> int:
    from .config import DistillConfig

    cfg = _load(
        DistillConfig,
        args,
        student=args.student,
        teacher_scores=args.teacher_scores,
        loss=args.loss,
        data=_sources(args),
        max_queries=args.max_queries,
        train_max_steps=args.max_steps,
    )
    from .distill import train_distill

    print(train_distill(cfg, args.out, progress=_progress))
    return 0


@_guard
def _cmd_merge(args) -> int:
    from .merge import interpolate

    print(interpolate(args.tuned, args.alpha, args.out, base=args.base))
    return 0


@_guard
def _cmd_recipe(args) -> int:
    from .config import RecipeConfig, load_config

    cfg = load_config(RecipeConfig, args.config)
    from .recipe import run_recipe

    res = run_recipe(
        cfg,
        args.out,
        max_queries=args.max_queries,
        max_steps=args.max_steps,
        run_eval=not args.no_eval,
        progress=_progress,
    )
    if res:
        _print_table(res)
    return 0


def _print_table(results: dict) -> None:
    rows = []
    for name, r in results.items():
        for s in r["sources"]:
            rows.append((name, f"{s['data']}:{s['split']}", s))
    for name, where, s in rows:
        nd = next(k for k in s if k.startswith("ndcg@") and not k.endswith("_trec"))
        trec = f"  {nd}_trec {s[nd + '_trec']:.4f}" if nd + "_trec" in s else ""
        print(
            f"{name:<24} {where:<40} {nd} {s[nd]:.4f}{trec}  map {s['map']:.4f}  mrr {s['mrr']:.4f}  "
            f"pnr {'-' if s['pnr'] is None else format(s['pnr'], '.3f')}  queries {s['queries']}"
        )


def _eval_model(args) -> str:
    """``--model`` or ``--package``; ``default`` names the package bundled with ranker-sdk."""
    from ranker_sdk.cli import package_arg
    from ranker_sdk.errors import PackageError
    from ranker_sdk.ranker import default_package_path

    name = args.model if args.model is not None else args.package
    if package_arg(name) is not None:
        return name
    path = default_package_path()
    if path is None:
        raise PackageError("no default package is bundled with this ranker-sdk install; pass --package PKG")
    return str(path)


@_guard
def _cmd_eval(args) -> int:
    sources = _sources(args)
    model = _eval_model(args)
    from .evaluate import evaluate_model

    res = evaluate_model(
        model,
        sources,
        k=args.k,
        max_queries=args.max_queries,
        batch_size=args.batch_size,
        progress=None if args.json else _progress,
        first_stage=args.first_stage,
    )
    if args.json:
        print(json.dumps(res))
    else:
        _print_table({model: res})
    return 0


def _common(p: argparse.ArgumentParser, *, out_help: str, out_default: str | None, steps: bool = True) -> None:
    p.add_argument("--config", help="YAML or JSON config file (defaults: the dataclass defaults)")
    p.add_argument("--out", default=out_default, help=out_help)
    p.add_argument(
        "--data",
        action="append",
        metavar="DIR",
        help="BEIR folder or click-log .jsonl (repeatable; replaces the config's data)",
    )
    p.add_argument("--split", default="train", help="qrels split of --data (default: train)")
    p.add_argument("--max-queries", type=_positive_int, help="use the first N queries of each source")
    if steps:
        p.add_argument("--max-steps", type=_positive_int, help="optimizer steps (overrides train.max_steps)")


def register(subparsers) -> None:
    """Add ``train`` (cpt, teacher, label, distill, recipe) and ``eval`` to the ``ranker`` CLI."""
    train = subparsers.add_parser("train", help="train: cpt, teacher, label, distill, or the full recipe")
    tsub = train.add_subparsers(dest="stage", metavar="STAGE", required=True)

    p = tsub.add_parser("cpt", help="continued pre-training of a causal LM on query -> clicked result")
    _common(p, out_help="output model folder", out_default="runs/cpt")
    p.add_argument("--model", help="base causal LM (local dir or pkg:NAME)")
    p.add_argument("--gguf-file", help="GGUF file inside --model")
    p.set_defaults(func=_cmd_cpt)

    p = tsub.add_parser("teacher", help="fine-tune the LLM teacher with a rank loss (LoRA or full)")
    _common(p, out_help="output teacher folder", out_default="runs/teacher")
    p.add_argument("--model", help="backbone: a local HF causal LM (e.g. the cpt output)")
    p.add_argument("--gguf-file", help="GGUF file inside --model")
    p.add_argument("--loss", choices=("pairwise", "listwise"))
    p.set_defaults(func=_cmd_teacher)

    p = tsub.add_parser("label", help="score every candidate with the teacher (batched, resumable, shardable)")
    _common(p, out_help="scores file (.jsonl or .tsv; default: the config's out)", out_default=None, steps=False)
    p.add_argument("--teacher", help="trained teacher folder")
    p.add_argument("--shard", type=_int_at_least(0), help="this shard's index (0-based)")
    p.add_argument("--num-shards", type=_positive_int, help="number of shards")
    p.add_argument("--batch-size", type=_positive_int, help="pairs per forward pass")
    p.set_defaults(func=_cmd_label)

    p = tsub.add_parser("distill", help="distill teacher scores into a BERT cross-encoder (hybrid loss)")
    _common(p, out_help="output student folder", out_default="runs/student")
    p.add_argument("--student", help="student checkpoint (local dir or pkg:NAME/sub)")
    p.add_argument("--teacher-scores", help="scores file from `ranker train label`")
    p.add_argument("--loss", choices=("hybrid", "pairwise", "listwise", "bce", "mse"))
    p.set_defaults(func=_cmd_distill)

    p = tsub.add_parser("merge", help="WiSE-FT: interpolate a distilled student's weights with its starting model")
    p.add_argument("--tuned", required=True, help="the distilled student folder")
    p.add_argument(
        "--alpha", type=float, required=True, help="weight of the tuned model, in (0, 1]; 0.7 was best on dev"
    )
    p.add_argument("--out", required=True, help="new student folder")
    p.add_argument("--base", help="starting checkpoint (default: the student's base_model, as a segmented student)")
    p.set_defaults(func=_cmd_merge)

    p = tsub.add_parser("recipe", help="run every stage (skips finished ones) and evaluate")
    p.add_argument("--config", required=True, help="recipe config (configs/recipe.yaml)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--max-queries", type=_positive_int, help="first N queries of every source (a quick slice)")
    p.add_argument("--max-steps", type=_positive_int, help="optimizer steps of every trainer")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    p.set_defaults(func=_cmd_recipe)

    p = subparsers.add_parser("eval", help="nDCG@k, MAP, MRR, PNR of a model or baseline on candidate groups")
    m = p.add_mutually_exclusive_group(required=True)
    m.add_argument(
        "--model",
        help="package ('default': the bundled one), teacher folder, HF cross-encoder folder, first-stage or bm25",
    )
    m.add_argument("--package", metavar="PKG", help="a package dir or .tar.gz; 'default' is the bundled one")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR[=SPLIT]",
        help="BEIR folder (repeatable); DIR=SPLIT gives it its own split, e.g. ../shared/data/trec-dl=train:dl21-",
    )
    p.add_argument(
        "--split",
        default="dev",
        help="qrels split (default: dev); NAME:PREFIX keeps qids starting with PREFIX, NAME:!PREFIX drops "
        "them (trec-dl's dev: train:dl21-)",
    )
    p.add_argument("--k", type=_positive_int, default=10, help="nDCG cut-off (default: 10)")
    p.add_argument("--max-queries", type=_positive_int, help="first N queries of each source")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="pairs per forward pass")
    p.add_argument(
        "--first-stage",
        action="store_true",
        help="score a package fused with the first stage (-rank in candidates.run) by its fusion rule",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_eval)
