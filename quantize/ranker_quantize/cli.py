"""``ranker package`` and ``ranker fusion``: the command-line drivers of :func:`ranker_quantize.build_package`
and :func:`ranker_quantize.fusion.refit_package`.

Registered into the SDK's ``ranker`` CLI by :func:`register`. This module imports nothing heavy:
torch, transformers and optimum are imported by the handler when the command runs, so
``ranker --help`` stays fast. The handler shows one tqdm bar per stage on stderr and a summary
on stdout; errors come back as ``error: ...`` and a non-zero exit status.

``ranker package`` has an option of its own, with one spelling, for what most builds set: the
checkpoint, the output, the precision, the data and the provenance (:data:`_PACKAGE_OPTIONS`).
Every other field of :class:`~ranker_quantize.PackageOptions`,
:class:`~ranker_quantize.QuantizeOptions` and :class:`~ranker_quantize.VerifyOptions` is set
with ``--set KEY=VALUE``, the key being the field's name (:data:`_SETTINGS`): ``--set smooth=0.5``,
``--set reduce_range=false``, ``--set max_queries=8``. A value is converted to the field's type
by :func:`ranker_sdk.dataclass_io.convert` (``true``/``false`` for a yes/no field, ``none`` for
an optional one left off) and checked by the dataclass itself, so no rule is repeated here: an
unknown key or a bad value is one ``error:`` line, status 1.

An option of its own is stored under its field's path (``dest="verify.split"``), and the options
are built from those and the ``--set`` values in one call of
:func:`ranker_sdk.dataclass_io.from_dict`: nothing is copied by hand, and what is not given keeps
the dataclass default.

Example::

    ranker package --model runs/distill/final --out packages/minilm-int8 \\
        --calibration ../shared/data/trec-rag24 --split dev --set smooth=0.5 --tar
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from typing import Any

from ranker_sdk.cli import add_package_option, package_arg

__all__ = ["register", "StageBars"]

_PACKAGE_DESCRIPTION = """\
Turn a local transformers cross-encoder checkpoint (one output) into a verified
ONNX package: export -> graph optimization -> INT8 quantization (static scales
calibrated on --calibration) -> verification against fp32 -> model.onnx +
tokenizer.json + ranker.json + manifest.json.

Common choices have an option each; every other setting is --set KEY=VALUE,
with the keys listed at the end.
"""


# How the printed fit names its objective: the pooled fit maximises the mean over all queries, the
# max-min fit the smallest gain of any set over that set's own first stage.
_OBJECTIVE_WORDS = {"pooled": "best mean {}", "maxmin": "best worst-set gain of {} over each set's first stage"}


def _option(*flags: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kw


# The options of `ranker package` with a spelling of their own, by --help group. A dotted dest is a
# field of a nested options dataclass ("verify.split" is VerifyOptions.split); an option left out
# is None, so the dataclass default holds.
_PACKAGE_OPTIONS: dict[str | None, list[tuple[tuple[str, ...], dict[str, Any]]]] = {
    None: [
        _option("--model", required=True, metavar="HF_DIR", help="local checkpoint directory (save_pretrained output)"),
        _option("--out", required=True, metavar="PKG", help="package directory to create (must not exist or be empty)"),
        _option(
            "--precision",
            choices=("int8", "fp32"),
            help="int8: INT8, with activation scales calibrated once (static), so a document's score never "
            "depends on its batch neighbours (default; --set activations=dynamic for scales per batch); "
            "fp32: no quantization",
        ),
        _option(
            "--max-length", type=int, metavar="N", help="tokens per (query, doc) pair (default: min(256, model limit))"
        ),
        _option("-v", "--verbose", action="store_true", help="log each step's details to stderr"),
    ],
    "data": [
        _option(
            "--calibration",
            dest="verify.calibration",
            metavar="DATA_DIR",
            help="BEIR folder of real queries and candidates: static INT8 scales are calibrated and the "
            "package verified on them (default: generated text, no labels)",
        ),
        _option("--split", dest="verify.split", metavar="SPLIT", help="qrels split of --calibration (default: dev)"),
        _option(
            "--gate-data",
            dest="verify.gate_data",
            action="append",
            metavar="DIR[=SPLIT]",
            help="another labelled set whose queries join the verification pool (repeatable; split default: dev)",
        ),
        _option(
            "--fit-fusion",
            dest="fusion_data",
            action="append",
            metavar="DIR[=SPLIT]",
            help="fit the weight of the first-stage scores (Ranker.score(..., first_stage=)) on this labelled "
            "BEIR folder with a candidates.run and record it in ranker.json; repeat to fit on the union of "
            "several folders (split default: dev; default: no fusion rule)",
        ),
        _option(
            "--threads",
            dest="verify.threads",
            type=int,
            metavar="N",
            help="onnxruntime threads for verification and the fusion fit (default: all cores)",
        ),
    ],
    "output": [
        _option(
            "--force", action="store_true", default=None, help="package even if verification fails (the report says so)"
        ),
        _option("--tar", action="store_true", default=None, help="also write PKG.tar.gz"),
        _option(
            "--model-card", metavar="FILE.md", help="a Markdown model card to ship in the package as MODEL_CARD.md"
        ),
        _option(
            "--base-model",
            metavar="NAME",
            help="base model name to record (default: the checkpoint's own record, else its folder's name)",
        ),
        _option("--training-data", metavar="TEXT", help="training data to record (free text)"),
    ],
    "settings": [
        _option(
            "--set",
            dest="settings",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any setting below (repeatable): true/false for a yes/no one, none to switch one off",
        ),
    ],
}

# The keys of --set: every field of PackageOptions, QuantizeOptions and VerifyOptions without an
# option of its own (tests/quantize/test_cli.py checks that these and the dataclasses agree),
# and what each does; the dataclasses' docstrings say more.
_SETTINGS = {
    # QuantizeOptions
    "activations": "static (default): scales calibrated once; dynamic: scales per batch (a score then "
    "depends on its batch; for comparison)",
    "embeddings": "word table: rows (default): int8 with a scale per row; tensor: int8 with one scale "
    "(dynamic only); fp32: kept fp32 (larger package)",
    "per_channel": "true (default): one weight scale per output column; false: one per tensor",
    "reduce_range": "true (default): 7-bit weights, exact on every x86 CPU; false: 8 bits, which saturate "
    "in the AVX2 kernels of CPUs without VNNI",
    "calibration_pairs": "static INT8 calibrates on at most N (query, doc) pairs of the verification queries "
    "(default 512)",
    "smooth": "static INT8: SmoothQuant alpha (0..1, default 0.8) of the LayerNorm outputs, whose outlier "
    "channels move into the weights' per-channel scales; none: off",
    "ffn_output": "the FFN's output MatMul (its input the GELU output, the widest-ranged): int8 (default), "
    "smooth (static: SmoothQuant on the GELU outputs too) or fp32 (larger, slower package)",
    # VerifyOptions
    "max_queries": "verify on at most N queries of each set (default 32)",
    "min_spearman": "minimum mean per-query Spearman (default 0.9)",
    "max_ndcg_drop": "maximum nDCG@10 drop when labelled (default 0.01)",
    "min_top10_overlap": "minimum mean top-10 overlap with the reference (default 0: not checked)",
    "max_export_diff": "largest score difference allowed between the fp32 graph and torch (default 0.001)",
    # PackageOptions
    "query_max_tokens": "query token budget (default: max-length / 4)",
    "doc_max_chars": "doc characters kept (default: max-length x 12)",
    "padded_batches": "true: keep the attention's padding mask (rows of any length share a call); false "
    "(default): a static INT8 graph drops it and the runtime batches rows of one length (faster attention)",
    "fusion_objective": "how --fit-fusion picks the weight: pooled (default) or maxmin (as ranker fusion --objective)",
    "fusion_unjudged": "unjudged candidates in the fusion fit: skip (default) or irrelevant (as ranker fusion --unjudged)",
    "opset": "ONNX opset of the export (default 17)",
}


def _own_options() -> dict[str, str]:
    """``{name: option}`` of every option with a spelling of its own (``split: --split``), keyed
    by the field it sets; ``--set`` refuses these names and points to the option."""
    out = {}
    for options in _PACKAGE_OPTIONS.values():
        for flags, kw in options:
            dest = kw.get("dest") or flags[-1].lstrip("-").replace("-", "_")
            out[dest.rpartition(".")[2]] = flags[-1]
    return out


def register(subparsers: Any) -> None:
    """Add the ``package`` and ``fusion`` subcommands to the ``ranker`` CLI's subparsers."""
    p = subparsers.add_parser(
        "package",
        help="export, optimize, INT8-quantize, verify and package a cross-encoder checkpoint",
        description=_PACKAGE_DESCRIPTION,
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for title, options in _PACKAGE_OPTIONS.items():
        group = p.add_argument_group(title) if title else p
        for flags, kw in options:
            group.add_argument(*flags, **kw)
    p.set_defaults(func=_cmd_package)
    _register_fusion(subparsers)


def _settings_help() -> str:
    """The --help list of the --set keys."""
    lines = ["keys of --set (fields of PackageOptions, QuantizeOptions and VerifyOptions):"]
    for key, text in _SETTINGS.items():
        body = textwrap.wrap(text, width=56)
        lines.append(f"  {key:<19} {body[0]}")
        lines += [f"  {'':<19} {more}" for more in body[1:]]
    return "\n".join(lines)


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
    sources = []
    for spec in args.data:
        parsed = parse_source(spec, args.split)
        if parsed is None:
            raise InputError(f"--data {spec!r}: expected DIR or DIR=SPLIT")
        sources.append(parsed)
    check_fusion_data(sources, flag="--data")
    bars = StageBars()
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
        f"{_OBJECTIVE_WORDS[fusion.get('objective', 'pooled')].format(fusion['metric'])} on {', '.join(fusion['fitted_on'])}"
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


class StageBars:
    """``build_package``'s ``progress(stage, done, total)`` as one tqdm bar per stage, closed when the
    next stage starts (``ranker package`` and the lab's build of the default draw them)."""

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


def _sources(specs: list[str], flag: str) -> list[tuple[str, str]]:
    """``DIR[=SPLIT]`` values of ``flag`` as ``(dir, split)``, the split ``dev`` when not given."""
    from ranker_eval.beir import parse_source
    from ranker_sdk.errors import InputError

    out = []
    for spec in specs:
        parsed = parse_source(spec, "dev")
        if parsed is None:
            raise InputError(f"{flag} {spec!r}: expected DIR or DIR=SPLIT")
        out.append(parsed)
    return out


def _set_value(text: str) -> object:
    """A ``--set`` value as :func:`~ranker_sdk.dataclass_io.convert` takes it: true, false and none are words."""
    return {"true": True, "false": False, "none": None}.get(text.strip().lower(), text)


def _settings(specs: list[str]) -> dict[str, Any]:
    """``{field path: value}`` of the ``--set KEY=VALUE`` options, each converted to its field's type.

    Raises:
        InputError: no ``=``, a key that is no setting (the message lists them), or a value its
            field's type does not take.
    """
    import typing

    from ranker_sdk.dataclass_io import convert
    from ranker_sdk.errors import InputError

    from . import PackageOptions, QuantizeOptions, VerifyOptions

    fields = {}
    for prefix, cls in (("", PackageOptions), ("quantize.", QuantizeOptions), ("verify.", VerifyOptions)):
        fields.update({name: (prefix + name, tp) for name, tp in typing.get_type_hints(cls).items()})
    own = _own_options()
    out = {}
    for spec in specs:
        key, eq, text = spec.partition("=")
        key = key.strip()
        if not eq:
            raise InputError(f"--set {spec!r}: expected KEY=VALUE, such as --set smooth=0.5")
        if key in own:
            raise InputError(f"--set {key}: {key} has an option of its own: {own[key]}")
        if key not in _SETTINGS:
            raise InputError(f"--set {key}: unknown key; the keys are {', '.join(_SETTINGS)}")
        path, tp = fields[key]
        out[path] = convert(tp, _set_value(text), where=f"--set {key}", error=InputError)
    return out


def _options(args: argparse.Namespace) -> Any:
    """The :class:`PackageOptions` of the parsed arguments (see the module docstring).

    Raises:
        InputError: a bad ``DIR[=SPLIT]``, ``--set`` or value; the dataclasses check every value.
    """
    from dataclasses import fields

    from ranker_sdk.dataclass_io import from_dict
    from ranker_sdk.errors import InputError

    from . import PackageOptions

    paths = {f.name for f in fields(PackageOptions)} | {d for d in vars(args) if d.startswith(("quantize.", "verify."))}
    given = {dest: value for dest, value in vars(args).items() if dest in paths and value is not None}
    for dest, flag in (("verify.gate_data", "--gate-data"), ("fusion_data", "--fit-fusion")):
        if dest in given:
            given[dest] = _sources(given[dest], flag)
    given |= _settings(args.settings)
    raw: dict[str, Any] = {"quantize": {}, "verify": {}}
    for path, value in given.items():
        head, _, name = path.rpartition(".")
        (raw[head] if head else raw)[name] = value
    return from_dict(PackageOptions, raw, where="ranker package", error=InputError)


def _cmd_package(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    _setup_logging(args.verbose)
    options = _options(args)
    if not (Path(args.model) / "config.json").is_file():  # before seconds of torch imports
        print(
            f"error: --model {args.model}: no config.json there; expected a local checkpoint directory "
            "(save_pretrained output)",
            file=sys.stderr,
        )
        return 1
    from . import build_package

    bars = StageBars()
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
