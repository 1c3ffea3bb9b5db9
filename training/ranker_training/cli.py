"""``ranker train {cpt,teacher,label,distill,recipe}`` and ``ranker eval``: thin drivers.

Each command reads a config file (``--config``, YAML or JSON; see ``configs/``), applies the
few overrides given on the command line, and calls the library function of the same name.
An option that sets a config field is stored under that field's path (``dest="train.max_steps"``),
and :func:`_overrides` hands those to :func:`ranker_training.config.apply_overrides`: an option
left unset keeps the config's value.
Nothing heavy is imported here: torch and transformers load when a command runs. Progress bars
(tqdm) are the CLI's; the library only logs.

Scale out with an existing launcher, unchanged::

    accelerate launch --num_processes 2 -m ranker_sdk.cli train teacher --config configs/teacher.yaml --out runs/t
    torchrun --nproc_per_node 8 -m ranker_sdk.cli train distill --config configs/distill.yaml --out runs/s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from typing import Any

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
        out.append(DataSource(path=parsed[0], split=parsed[1], with_positive=getattr(args, "with_positive", False)))
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


def _overrides(cls, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` this command line sets: ``{dotted path: value}`` of the options given.

    ``--data`` becomes the sources (``DIR`` or ``DIR=SPLIT``, with ``--split``), and ``--model``
    replaces the model *and* its gguf_file: a plain folder unless ``--gguf-file`` names a file in it;
    ``--gguf-file`` alone picks another file inside the config's model.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    out = {dest: v for dest, v in vars(args).items() if v is not None and dest.partition(".")[0] in fields}
    gguf = out.pop("gguf_file", None)  # it goes with --model, below
    if "gguf_file" in fields and ("model" in out or gguf is not None):  # alone: another file of the config's model
        out["gguf_file"] = gguf
    if "data" in out:
        out["data"] = _sources(args)
    return out


def _load(cls, args: argparse.Namespace):
    """``--config`` (the dataclass defaults without one) with the command line's overrides."""
    from .config import apply_overrides, load_config

    overrides = _overrides(cls, args)  # a bad --data fails before the file is read
    cfg = load_config(cls, args.config) if args.config else cls()
    return apply_overrides(cfg, overrides)


@_guard
def _cmd_cpt(args) -> int:
    from .config import CPTConfig

    cfg = _load(CPTConfig, args)
    from .cpt import train_cpt  # torch: after the config is read and checked

    print(train_cpt(cfg, args.out, progress=_progress))
    return 0


@_guard
def _cmd_teacher(args) -> int:
    from .config import TeacherConfig

    cfg = _load(TeacherConfig, args)
    from .teacher import train_teacher  # torch: after the config is read and checked

    print(train_teacher(cfg, args.out, progress=_progress))
    return 0


@_guard
def _cmd_label(args) -> int:
    from .config import LabelConfig

    cfg = _load(LabelConfig, args)
    from .label import label

    print(label(cfg, progress=_progress))
    return 0


@_guard
def _cmd_distill(args) -> int:
    from .config import DistillConfig

    cfg = _load(DistillConfig, args)
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


def _opt(*flags: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One row of an option table: the arguments of ``add_argument``."""
    return flags, kw


def _common(*, out_help: str, out_default: str | None, steps: bool = True) -> list:
    """The options every training stage has: config, output, data, and the quick-run limits."""
    options = [
        _opt("--config", help="YAML or JSON config file (defaults: the dataclass defaults)"),
        _opt("--out", default=out_default, help=out_help),
        _opt(
            "--data",
            action="append",
            metavar="DIR",
            help="BEIR folder or click-log .jsonl (repeatable; replaces the config's data)",
        ),
        _opt("--split", default="train", help="qrels split of --data (default: train)"),
        _opt("--max-queries", type=_positive_int, help="use the first N queries of each source"),
    ]
    if steps:
        options.append(
            _opt(
                "--max-steps",
                dest="train.max_steps",
                metavar="MAX_STEPS",
                type=_positive_int,
                help="optimizer steps (overrides train.max_steps)",
            )
        )
    return options


_GGUF = _opt("--gguf-file", dest="gguf_file", help="GGUF file inside --model")

# ``ranker train STAGE``: (name, help, handler, options).
_STAGES = [
    (
        "cpt",
        "continued pre-training of a causal LM on query -> clicked result",
        _cmd_cpt,
        _common(out_help="output model folder", out_default="runs/cpt")
        + [_opt("--model", help="base causal LM (local dir or pkg:NAME)"), _GGUF],
    ),
    (
        "teacher",
        "fine-tune the LLM teacher with a rank loss (LoRA or full)",
        _cmd_teacher,
        _common(out_help="output teacher folder", out_default="runs/teacher")
        + [
            _opt("--model", help="backbone: a local HF causal LM (e.g. the cpt output)"),
            _GGUF,
            _opt("--loss", choices=("pairwise", "listwise")),
        ],
    ),
    (
        "label",
        "score every candidate with the teacher (batched, resumable, shardable)",
        _cmd_label,
        _common(out_help="scores file (.jsonl or .tsv; default: the config's out)", out_default=None, steps=False)
        + [
            _opt("--teacher", help="trained teacher folder"),
            _opt("--shard", type=_int_at_least(0), help="this shard's index (0-based)"),
            _opt("--num-shards", type=_positive_int, help="number of shards"),
            _opt("--batch-size", type=_positive_int, help="pairs per forward pass"),
        ],
    ),
    (
        "distill",
        "distill teacher scores into a BERT cross-encoder (hybrid loss)",
        _cmd_distill,
        _common(out_help="output student folder", out_default="runs/student")
        + [
            _opt("--student", help="student checkpoint (local dir or pkg:NAME/sub)"),
            _opt("--teacher-scores", help="scores file from `ranker train label`"),
            _opt("--loss", choices=("hybrid", "pairwise", "listwise", "bce", "mse")),
        ],
    ),
    (
        "merge",
        "WiSE-FT: interpolate a distilled student's weights with its starting model",
        _cmd_merge,
        [
            _opt("--tuned", required=True, help="the distilled student folder"),
            _opt(
                "--alpha", type=float, required=True, help="weight of the tuned model, in (0, 1]; 0.7 was best on dev"
            ),
            _opt("--out", required=True, help="new student folder"),
            _opt("--base", help="starting checkpoint (default: the student's base_model, as a segmented student)"),
        ],
    ),
    (
        "recipe",
        "run every stage (skips finished ones) and evaluate",
        _cmd_recipe,
        [
            _opt("--config", required=True, help="recipe config (configs/recipe.yaml)"),
            _opt("--out", required=True, help="run folder"),
            _opt("--max-queries", type=_positive_int, help="first N queries of every source (a quick slice)"),
            _opt("--max-steps", type=_positive_int, help="optimizer steps of every trainer"),
            _opt("--no-eval", action="store_true", help="skip the evaluation"),
        ],
    ),
]

# ``ranker eval``: exactly one of the first two names the model.
_EVAL_MODEL = [
    _opt(
        "--model",
        help="package ('default': the bundled one), teacher folder, HF cross-encoder folder, first-stage or bm25",
    ),
    _opt("--package", metavar="PKG", help="a package dir or .tar.gz; 'default' is the bundled one"),
]
_EVAL = [
    _opt(
        "--data",
        action="append",
        required=True,
        metavar="DIR[=SPLIT]",
        help="BEIR folder (repeatable); DIR=SPLIT gives it its own split, e.g. ../shared/data/trec-dl=train:dl21-",
    ),
    _opt(
        "--split",
        default="dev",
        help="qrels split (default: dev); NAME:PREFIX keeps qids starting with PREFIX, NAME:!PREFIX drops "
        "them (trec-dl's dev: train:dl21-)",
    ),
    _opt("--k", type=_positive_int, default=10, help="nDCG cut-off (default: 10)"),
    _opt("--max-queries", type=_positive_int, help="first N queries of each source"),
    _opt(
        "--with-positive",
        action="store_true",
        help="keep only queries with a relevant candidate, before --max-queries (squad dev: its answerable questions)",
    ),
    _opt("--batch-size", type=_positive_int, default=32, help="pairs per forward pass"),
    _opt(
        "--first-stage",
        action="store_true",
        help="score a package fused with the first stage (-rank in candidates.run) by its fusion rule",
    ),
    _opt("--json", action="store_true", help="print one JSON object"),
]


def register(subparsers) -> None:
    """Add ``train`` (cpt, teacher, label, distill, merge, recipe) and ``eval`` to the ``ranker`` CLI."""
    train = subparsers.add_parser("train", help="train: cpt, teacher, label, distill, or the full recipe")
    tsub = train.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, help_, handler, options in _STAGES:
        p = tsub.add_parser(name, help=help_)
        for flags, kw in options:
            p.add_argument(*flags, **kw)
        p.set_defaults(func=handler)

    p = subparsers.add_parser("eval", help="nDCG@k, MAP, MRR, PNR of a model or baseline on candidate groups")
    model = p.add_mutually_exclusive_group(required=True)
    for flags, kw in _EVAL_MODEL:
        model.add_argument(*flags, **kw)
    for flags, kw in _EVAL:
        p.add_argument(*flags, **kw)
    p.set_defaults(func=_cmd_eval)
