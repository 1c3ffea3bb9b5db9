"""``ranker package``: the command-line driver of :func:`ranker_quantize.build_package`.

Registered into the SDK's ``ranker`` CLI by :func:`register`. This module imports nothing heavy:
torch, transformers and optimum are imported by the handler when the command runs, so
``ranker --help`` stays fast. The handler shows one tqdm bar per stage on stderr and a summary
on stdout; errors come back as ``error: ...`` and a non-zero exit status.

An option that sets a field of :class:`~ranker_quantize.PackageOptions` is stored under that
field's path (``dest="verify.max_queries"``), and the options are built from those in one call of
:func:`ranker_sdk.dataclass_io.from_dict`: nothing is copied by hand, and an option left unset
keeps the dataclass default.

Example::

    ranker package --model runs/distill/final --out packages/minilm-int8 \\
        --calibration ../shared/data/trec-rag24 --split dev --tar
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ranker_sdk.cli import add_package_option, package_arg

__all__ = ["register"]

_FUSION_DESCRIPTION = """\
Fit the first-stage fusion rule of a finished package (the bundled default unless --package)
on your own labelled candidates, and write a copy of the package with that rule. The right
weight depends on your first stage: the bundled rule was fitted where the first stage is BM25
or a strong dense retriever; a backend with its own retriever should fit on its own queries.

Each --data folder is BEIR-layout with a candidates.run in your first stage's order (its -rank
is the first-stage score; at run time pass your retriever's scores, z-scoring puts both on one
scale) and graded qrels. Every candidate is scored, the weight with the best mean nDCG@10 of
the fused order wins, and the figures of the model alone, the first stage alone and fused are
printed per folder. Fit on queries the package's model was not trained on: on its own
training queries a model looks better than it is and the weight comes out too small (the
bundled default was trained on trec-rag24 train). Evaluate the copy on other queries with
`ranker eval --model OUT --data DIR=SPLIT --first-stage`.
"""

_FUSION_EXAMPLES = """\
example:
  ranker fusion --data my-queries=dev --out /tmp/default-mine
  ranker eval --model /tmp/default-mine --data my-queries --split test --first-stage
"""


def register(subparsers: Any) -> None:
    """Add the ``package`` and ``fusion`` subcommands to the ``ranker`` CLI's subparsers."""
    p = subparsers.add_parser(
        "package",
        help="export, optimize, INT8-quantize, verify and package a cross-encoder checkpoint",
        description=(
            "Turn a local transformers cross-encoder checkpoint (one output) into a verified ONNX "
            "package: export -> graph optimization -> static INT8 quantization calibrated on "
            "--calibration -> verification against fp32 -> model.onnx + tokenizer.json + ranker.json "
            "+ manifest.json."
        ),
    )
    p.add_argument(
        "--model", required=True, metavar="HF_DIR", help="local checkpoint directory (save_pretrained output)"
    )
    p.add_argument(
        "--out", required=True, metavar="PKG", help="package directory to create (must not exist or be empty)"
    )
    p.add_argument(
        "--precision",
        choices=("int8", "dynamic", "fp32"),
        default="int8",
        help="int8: static INT8, activation scales calibrated once, so a document's score never "
        "depends on its batch neighbours (default); dynamic: INT8 with activation scales "
        "per batch (a document's score then depends on its batch; for comparison); fp32: no quantization",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="N",
        help="tokens per (query, doc) pair (default: min(256, model limit))",
    )
    p.add_argument(
        "--query-max-tokens", type=int, default=None, metavar="N", help="query token budget (default: max-length/4)"
    )
    p.add_argument(
        "--doc-max-chars", type=int, default=None, metavar="N", help="doc characters kept (default: max-length*12)"
    )
    g = p.add_argument_group("verification")
    g.add_argument(
        "--calibration",
        dest="verify.calibration",
        default=None,
        metavar="DATA_DIR",
        help="BEIR folder of real queries and candidates: static INT8 scales are calibrated "
        "and the package verified on them (default: generated text, no labels)",
    )
    g.add_argument("--split", dest="verify.split", default="dev", help="qrels split of --calibration (default: dev)")
    g.add_argument(
        "--calibration-queries",
        dest="verify.max_queries",
        type=int,
        default=32,
        metavar="N",
        help="verify on at most N queries (default: 32)",
    )
    g.add_argument(
        "--min-spearman",
        dest="verify.min_spearman",
        type=float,
        default=0.9,
        help="minimum mean per-query Spearman (default: 0.9)",
    )
    g.add_argument(
        "--max-ndcg-drop",
        dest="verify.max_ndcg_drop",
        type=float,
        default=0.01,
        help="maximum nDCG@10 drop when labelled (default: 0.01)",
    )
    g.add_argument(
        "--min-top10-overlap",
        dest="verify.min_top10_overlap",
        type=float,
        default=0.0,
        help="minimum mean top-10 overlap with fp32 (default: 0, not checked)",
    )
    g.add_argument(
        "--gate-data",
        dest="verify.gate_data",
        action="append",
        default=[],
        metavar="DIR[=SPLIT]",
        help="another labelled set whose queries join the verification pool (repeatable; split default: dev)",
    )
    g.add_argument(
        "--threads",
        dest="verify.threads",
        type=int,
        default=None,
        help="onnxruntime threads for verification (default: all cores)",
    )
    g.add_argument("--force", action="store_true", help="package even if verification fails (the report says so)")
    q = p.add_argument_group("quantization")
    q.add_argument(
        "--per-tensor",
        dest="quantize.per_channel",
        action="store_false",
        help="one scale per weight tensor instead of per channel",
    )
    q.add_argument(
        "--reduce-range",
        dest="quantize.reduce_range",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="7-bit weights (default: on), exact on every x86 CPU; --no-reduce-range keeps 8 bits, "
        "which saturate in the AVX2 kernels of CPUs without VNNI",
    )
    q.add_argument(
        "--embeddings",
        dest="quantize.embeddings",
        choices=("rows", "tensor", "fp32"),
        default=None,
        help="word table: rows = int8 with a scale per row (default), tensor = int8 with one "
        "scale (dynamic only), fp32 = kept fp32 (larger package)",
    )
    q.add_argument("--fp32-embeddings", action="store_true", help="the same as --embeddings fp32")
    q.add_argument(
        "--calibration-pairs",
        dest="quantize.calibration_pairs",
        type=int,
        default=512,
        metavar="N",
        help="static INT8: calibrate on at most N (query, doc) pairs of the verification queries (default: 512)",
    )
    q.add_argument(
        "--smooth",
        dest="quantize.smooth",
        type=float,
        default=None,
        metavar="ALPHA",
        help="static INT8: SmoothQuant the LayerNorm outputs with this alpha (0..1, default 0.8): "
        "their outlier channels move into the weights' per-channel scales, so the activations keep "
        "finer steps",
    )
    q.add_argument(
        "--no-smooth", dest="no_smooth", action="store_true", help="static INT8 without smoothing (to compare)"
    )
    q.add_argument(
        "--padded-batches",
        dest="padded_batches",
        action="store_true",
        default=None,
        help="keep the attention's padding mask (rows of any length share a call); by default a "
        "static INT8 cross-encoder graph drops it and the runtime batches rows of one length "
        "(faster attention)",
    )
    f = p.add_argument_group("first-stage fusion")
    f.add_argument(
        "--fit-fusion",
        action="append",
        nargs="+",
        default=[],
        metavar=("DATA_DIR", "SPLIT"),
        help="fit the weight of the first-stage scores (Ranker.score(..., first_stage=)) on this "
        "labelled BEIR folder with a candidates.run (its SPLIT, default --fusion-split), and "
        "record it in ranker.json; repeat to fit on the union of several folders "
        "(default: no fusion rule)",
    )
    f.add_argument(
        "--fusion-split", default="dev", help="qrels split of a --fit-fusion folder given without one (default: dev)"
    )
    r = p.add_argument_group("provenance")
    r.add_argument(
        "--base-model", default=None, help="base model name to record (default: the checkpoint folder's name)"
    )
    r.add_argument("--training-data", default=None, help="training data to record (free text)")
    r.add_argument(
        "--model-card",
        default=None,
        metavar="FILE.md",
        help="a Markdown model card to ship in the package as MODEL_CARD.md",
    )
    p.add_argument("--tar", action="store_true", help="also write PKG.tar.gz")
    p.add_argument("-v", "--verbose", action="store_true", help="log each step's details to stderr")
    p.set_defaults(func=_cmd_package)
    _register_fusion(subparsers)


def _register_fusion(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fusion",
        help="refit a package's first-stage fusion weight on your labelled candidates (writes a copy)",
        description=_FUSION_DESCRIPTION,
        epilog=_FUSION_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_package_option(p, what="package to refit:")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="DIR[=SPLIT]",
        help="labelled BEIR folder with a candidates.run (repeatable: one weight is fitted on the union); "
        "DIR=SPLIT gives it its own qrels split",
    )
    p.add_argument("--split", default="dev", help="qrels split of a --data folder given without one (default: dev)")
    p.add_argument(
        "--out", required=True, metavar="PKG", help="package directory to create (must not exist or be empty)"
    )
    p.add_argument(
        "--objective",
        choices=("pooled", "maxmin"),
        default="pooled",
        help="pooled: best mean nDCG@10 over all queries; maxmin: best worst-set gain over each set's own "
        "first stage, so fused never loses to a first stage where one weight can avoid it (default: pooled)",
    )
    p.add_argument(
        "--unjudged",
        choices=("skip", "irrelevant"),
        default="skip",
        help="unjudged candidates: left out of nDCG (skip), or not relevant, as trec_eval counts them; "
        "use irrelevant when a query has one judged answer (default: skip)",
    )
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: one per core)")
    p.set_defaults(func=_cmd_fusion)


def _cmd_fusion(args: argparse.Namespace) -> int:
    from ranker_eval.beir import parse_source
    from ranker_sdk.errors import InputError

    from .fusion import FitOptions, check_fusion_data, refit_package

    _setup_logging(False)
    if args.threads is not None and args.threads < 1:
        print(f"error: --threads must be a positive integer, got {args.threads}", file=sys.stderr)
        return 2
    sources = []
    for spec in args.data:
        parsed = parse_source(spec, args.split)
        if parsed is None:
            raise InputError(f"--data {spec!r}: expected DIR or DIR=SPLIT")
        sources.append(parsed)
    check_fusion_data(sources, flag="--data")
    bars = _Bars()
    try:
        out, fusion = refit_package(
            package_arg(args.package),
            args.out,
            sources,
            FitOptions(objective=args.objective, unjudged=args.unjudged),
            threads=args.threads,
            progress=lambda d, t: bars("score", d, t),
        )
    finally:
        bars.close()
    print(f"ok: wrote {out}")
    print(
        f"    fusion: first-stage weight {fusion['weight']:g} (z-scored model + weight x z-scored first stage), "
        f"best mean {fusion['metric']} on {', '.join(fusion['fitted_on'])}"
    )
    print(f"    {'data':<28} {'queries':>7} {'model':>7} {'first':>7} {'fused':>7}")
    for s in fusion["sources"] + ([{"data": "all", **fusion["dev"]}] if len(fusion["sources"]) > 1 else []):
        print(f"    {s['data']:<28} {s['queries']:>7} {s['model']:>7.4f} {s['first_stage']:>7.4f} {s['fused']:>7.4f}")
        if s["fused"] <= s["first_stage"] and s["data"] != "all":
            print(
                f"    note: on {s['data']} the fused order does not beat the first stage alone; the model "
                "adds little to this first stage"
            )
    if fusion.get("never_below_first_stage") is False:
        print(
            "    note: no weight keeps the fused order at or above the first stage on every set; this one "
            "maximises the worst set's gain"
        )
    print("    these figures are on the data fitted on; measure other queries with ranker eval --first-stage")
    return 0


class _Bars:
    """One tqdm bar per stage, closed when the next stage starts."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(
                total=total,
                desc=f"{stage:<8}",
                unit="step",
                file=sys.stderr,
                leave=True,
                bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}]",
            )
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _setup_logging(verbose: bool) -> None:
    # The CLI is the application, so it may configure logging: our steps at INFO with -v, and
    # third-party chatter (onnxruntime's quantizer suggests a pre-processing step we do not
    # want on an already fused graph) only when it is an error.
    ours = logging.getLogger("ranker_quantize")
    if not any(getattr(h, "_ranker_cli", False) for h in ours.handlers):  # once per process
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._ranker_cli = True  # type: ignore[attr-defined]
        ours.addHandler(handler)
    ours.setLevel(logging.INFO if verbose else logging.WARNING)
    ours.propagate = False
    logging.getLogger().setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a checkpoint is a local path: never reach a hub


def _gate_source(spec: str) -> tuple[str, str]:
    from ranker_eval.beir import parse_source
    from ranker_sdk.errors import InputError

    parsed = parse_source(spec, "dev")
    if parsed is None:
        raise InputError(f"--gate-data {spec!r}: expected DIR or DIR=SPLIT")
    return parsed


def _options(args: argparse.Namespace) -> Any:
    """The :class:`PackageOptions` of the parsed arguments (see the module docstring)."""
    from dataclasses import fields

    from ranker_sdk.dataclass_io import from_dict
    from ranker_sdk.errors import InputError

    from . import PackageOptions

    top = {f.name for f in fields(PackageOptions)}
    raw: dict[str, Any] = {"quantize": {}, "verify": {}}
    for dest, value in vars(args).items():
        head, _, rest = dest.partition(".")
        if head in top and value is not None:  # None: not given, the dataclass default holds
            if rest:
                raw[head][rest] = value
            else:
                raw[head] = value
    # The options that do not map one to one onto a field.
    if args.precision == "dynamic":
        raw["precision"], raw["quantize"]["activations"] = "int8", "dynamic"
    if args.fp32_embeddings:
        raw["quantize"]["embeddings"] = "fp32"
    if args.no_smooth:
        raw["quantize"]["smooth"] = None
    raw["fusion_data"] = [(v[0], v[1] if len(v) > 1 else args.fusion_split) for v in args.fit_fusion]
    raw["verify"]["gate_data"] = [_gate_source(v) for v in args.__dict__.get("verify.gate_data") or []]
    return from_dict(PackageOptions, raw, where="ranker package", error=InputError)


def _cmd_package(args: argparse.Namespace) -> int:
    import warnings

    _setup_logging(args.verbose)
    opts = vars(args)
    if any(len(v) > 2 for v in args.fit_fusion):
        print("error: --fit-fusion takes DATA_DIR and at most one SPLIT", file=sys.stderr)
        return 2
    if args.no_smooth and opts["quantize.smooth"] is not None:
        print("error: --no-smooth contradicts --smooth", file=sys.stderr)
        return 2
    if args.fp32_embeddings and opts["quantize.embeddings"] not in (None, "fp32"):
        print(f"error: --fp32-embeddings contradicts --embeddings {opts['quantize.embeddings']}", file=sys.stderr)
        return 2
    for name, value in (
        ("--calibration-queries", opts["verify.max_queries"]),
        ("--max-length", args.max_length),
        ("--calibration-pairs", opts["quantize.calibration_pairs"]),
        ("--threads", opts["verify.threads"]),
    ):
        if value is not None and value < 1:
            print(f"error: {name} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    from pathlib import Path

    if not (Path(args.model) / "config.json").is_file():  # before seconds of torch imports
        print(
            f"error: --model {args.model}: no config.json there; expected a local checkpoint directory "
            "(save_pretrained output)",
            file=sys.stderr,
        )
        return 1
    from . import build_package

    options = _options(args)
    bars = _Bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings would tear the bars
            result = build_package(args.model, args.out, options, progress=bars)
    finally:
        bars.close()
    _print_summary(result)
    return 0


def _print_summary(result: Any) -> None:
    cfg = result.config
    fid = cfg.fidelity
    mb = 1024 * 1024
    print(f"ok: wrote {result.path}" + (f" and {result.tarball}" if result.tarball else ""))
    qz = cfg.quantization
    kind = f" ({qz['activations']} activations, {qz['embeddings']} embeddings)" if "activations" in qz else ""
    print(
        f"    precision {qz['precision']}{kind}, model {result.sizes['model_bytes'] / mb:.1f} MiB "
        f"(fp32 {result.sizes['fp32_model_bytes'] / mb:.1f} MiB), max_length {cfg.max_length}, inputs {list(cfg.inputs)}"
    )
    print("    time " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
    line = (
        f"    fidelity vs {fid['reference']} on {fid['queries']} queries of {fid['data']}: "
        f"Spearman mean {fid['spearman']['mean']} (min {fid['spearman']['min']}), "
        f"top-10 overlap {fid['top10_overlap']['mean']}"
    )
    if "ndcg@10" in fid:
        nd = fid["ndcg@10"]
        line += f", nDCG@10 {nd[fid['reference']]} -> {nd[fid['candidate']]}"
    print(line)
    if fid["data"] == "generated":
        print("    note: verified on generated text (no --calibration): no labels, no nDCG")
    if fid.get("forced"):
        print("    warning: below the fidelity thresholds, packaged because of --force")
    if cfg.fusion is not None:
        dev = cfg.fusion.info.get("dev", {})
        print(
            f"    fusion: first-stage weight {cfg.fusion.weight:g} fitted on {dev.get('queries')} queries of "
            f"{', '.join(cfg.fusion.info.get('fitted_on', []))}: nDCG@10 model {dev.get('model')}, "
            f"first stage {dev.get('first_stage')}, fused {dev.get('fused')}"
        )
