"""``build_package``: checkpoint -> export -> optimize -> calibrate + INT8 -> verify -> package.

The one function behind ``ranker package``. Each step lives in its own module and can be called
alone; this module decides the package's settings (lengths, inputs, pad id), runs the steps in
order, and writes nothing until verification has passed (or ``force`` is set).

Example:
    >>> from ranker_quantize import PackageOptions, VerifyOptions, build_package   # doctest: +SKIP
    >>> result = build_package(
    ...     "runs/distill/final", "packages/minilm-int8",
    ...     PackageOptions(verify=VerifyOptions(calibration="../shared/data/trec-rag24", split="dev")),
    ... )                                                                        # doctest: +SKIP
    >>> result.config.fidelity["spearman"]["mean"] >= 0.9                         # doctest: +SKIP
    True
    >>> from ranker_sdk import Ranker
    >>> Ranker.load(result.path).rank("query", ["doc a", "doc b"])               # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ranker_sdk import encoding
from ranker_sdk.dataclass_io import convert
from ranker_sdk.errors import InputError
from ranker_sdk.package import PackageConfig

from .calibrate import calibration_feeds
from .checks import one_of, positive_int
from .errors import FidelityError
from .export import DEFAULT_OPSET, Checkpoint, export_onnx, is_segmented_checkpoint, load_checkpoint
from .fusion import OBJECTIVES, UNJUDGED, FitOptions, add_fusion, check_fusion_data, fit_fusion
from .optimize import drop_padding_mask, optimize_onnx
from .package import check_out_dir, tar_package, write_package
from .provenance import checkpoint_sha256, code_commit, tool_versions
from .quantize import QuantizeOptions, cpu_features, quantize_int8
from .verify import (
    VerifyOptions,
    calibration_groups,
    failures,
    fidelity_report,
    gate_groups,
    generated_groups,
    rounded,
    score_groups,
    torch_scores,
)

__all__ = ["PackageOptions", "PackageResult", "build_package", "quantization_settings", "QUANTIZATION_SETTINGS"]

log = logging.getLogger(__name__)

# progress(stage, done, total): called as each stage advances; the CLI draws bars from it.
Progress = Callable[[str, int, int], None]
# The precisions a package can have: INT8 (static or dynamic, as QuantizeOptions says) or fp32.
PRECISIONS = ("int8", "fp32")
# Queries that run under the export check (torch vs fp32 ONNX): a few groups find a broken
# export as surely as many.
EXPORT_CHECK_QUERIES = 2


@dataclass(frozen=True)
class PackageOptions:
    """Everything ``build_package`` can be told; the defaults make a verified INT8 package.

    Attributes:
        precision: ``"int8"`` (INT8 as ``quantize`` says: static by default, verified against
            the fp32 graph it was quantized from) or ``"fp32"`` (the fused fp32
            graph, verified against torch).
        max_length: tokens per pair; None: ``min(256, what the model and tokenizer allow)``.
        query_max_tokens: the query's token budget; None: ``max_length // 4`` (64 for 256).
        doc_max_chars: doc characters kept before tokenizing; None: ``max_length * 12``
            (:func:`ranker_sdk.encoding.char_budget`: a token is ~4-5 characters of English;
            12 leaves margin, never starves the doc).
        opset: ONNX opset of the export.
        quantize, verify: see :class:`QuantizeOptions` and :class:`VerifyOptions`.
        force: write the package even if it fails the fidelity thresholds (the report says so).
        base_model: recorded in provenance; None: the student's own record of its starting model
            (``ranker_student.json``), else the checkpoint directory's name.
        training_data: recorded in provenance (free text, e.g. "trec-rag24 train, teacher X").
        tar: also write ``<out>.tar.gz`` beside the package directory.
        model_card: a Markdown model card (path) shipped in the package as ``MODEL_CARD.md``
            (listed in the manifest like every other file).
        fusion_data: ``((data_dir, split), ...)``: fit the first-stage fusion weight on these
            labelled folders with the written package and record it in ``ranker.json``
            (:mod:`ranker_quantize.fusion`); empty: no fusion rule (first stage ignored).
        fusion_objective, fusion_unjudged: how the weight is chosen
            (:func:`ranker_quantize.fusion.fit_weight`: ``"pooled"`` or ``"maxmin"``; unjudged
            candidates ``"skip"``-ped or ``"irrelevant"``).
        padded_batches: keep the attention's padding mask in a static INT8 graph with fused
            ``MultiHeadAttention`` (rows of different lengths share a call). By default it is
            removed and the package says ``batching: "exact"`` (:func:`.optimize.drop_padding_mask`).

    Raises:
        InputError: a value no build can use (an unknown precision or fusion objective, a
            length that is not a positive integer); what depends on the model (``max_length``
            beyond its position table) is checked when the checkpoint is loaded.
    """

    precision: str = "int8"
    max_length: int | None = None
    query_max_tokens: int | None = None
    doc_max_chars: int | None = None
    opset: int = DEFAULT_OPSET
    quantize: QuantizeOptions = field(default_factory=QuantizeOptions)
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    force: bool = False
    base_model: str | None = None
    training_data: str | None = None
    tar: bool = False
    model_card: str | None = None
    fusion_data: tuple[tuple[str, str], ...] = ()
    fusion_objective: str = "pooled"
    fusion_unjudged: str = "skip"
    padded_batches: bool = False

    def __post_init__(self) -> None:
        one_of("precision", self.precision, PRECISIONS)
        for name in ("max_length", "query_max_tokens", "doc_max_chars"):
            positive_int(name, getattr(self, name), optional=True)
        positive_int("opset", self.opset)
        one_of("fusion_objective", self.fusion_objective, OBJECTIVES)
        one_of("fusion_unjudged", self.fusion_unjudged, UNJUDGED)


@dataclass(frozen=True)
class PackageResult:
    """What ``build_package`` made: where, with which config, and what it cost.

    ``timings`` (seconds per stage) and ``sizes`` (bytes of the fp32 and shipped model) are for
    the caller's report; they are not written into the package, which must be reproducible.
    """

    path: Path
    tarball: Path | None
    config: PackageConfig
    timings: dict[str, float]
    sizes: dict[str, int]


def _model_limit(ckpt: Checkpoint) -> int:
    """Longest input the model's position table and tokenizer allow."""
    cfg = ckpt.config
    return encoding.model_limit(
        getattr(cfg, "max_position_embeddings", None),
        cfg.model_type,
        getattr(cfg, "pad_token_id", None),
        getattr(ckpt.tokenizer, "model_max_length", None),
    )


def _student_meta(ckpt: Checkpoint) -> dict[str, Any]:
    """``ranker_student.json`` (written by ``ranker train distill`` beside the weights), or {}."""
    path = ckpt.path / "ranker_student.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from exc
    return raw if isinstance(raw, dict) else {}


def _trained_settings(ckpt: Checkpoint) -> dict[str, Any]:
    """The pair-encoding settings the student was trained with, if any (pad id included).

    Packaging with the same settings means the runtime feeds the model exactly what it saw in
    training. Explicit options win; a setting the record lacks gets the packager's default.
    """
    raw = _student_meta(ckpt)
    hints = typing.get_type_hints(PackageConfig)
    where = ckpt.path / "ranker_student.json"
    return {
        k: convert(hints[k], raw[k], where=f"{where}: {k}", error=InputError)
        for k in encoding.ENCODING_KEYS
        if raw.get(k) is not None
    }


def _distillation(ckpt: Checkpoint) -> dict[str, Any] | None:
    """How the student was trained (loss and weights; no local paths), if it says."""
    raw = _student_meta(ckpt)
    keys = ("architecture", "num_layers", "base_model", "loss", "alpha", "beta", "label_weight")
    out = {k: raw[k] for k in keys if raw.get(k) is not None}
    return out or None


def _package_config(ckpt: Checkpoint, inputs: tuple[str, ...], options: PackageOptions) -> PackageConfig:
    limit = _model_limit(ckpt)
    trained = _trained_settings(ckpt)
    settings = encoding.resolve(
        trained,
        limit,
        max_length=options.max_length,
        query_max_tokens=options.query_max_tokens,
        doc_max_chars=options.doc_max_chars,
    )
    max_length, query_max = settings["max_length"], settings["query_max_tokens"]
    if max_length > limit:
        raise InputError(f"--max-length {max_length} exceeds what the model allows ({limit} tokens)")
    if max_length < 8 or not 1 <= query_max < max_length - 3:
        raise InputError(
            f"need --max-length >= 8 and 1 <= query_max_tokens < max-length - 3 (room for the "
            f"special tokens and the doc), got {max_length} and {query_max}"
        )
    pad = trained.get("pad_token_id")
    if pad is None:  # the same rule distillation records it by (ranker_training.distill.StudentEncoder)
        pad = encoding.pad_token_id(ckpt.tokenizer.pad_token_id, getattr(ckpt.config, "pad_token_id", None))
    return PackageConfig.from_dict(
        {
            "format_version": encoding.FORMAT_VERSION,
            "max_length": max_length,
            "query_max_tokens": query_max,
            "doc_max_chars": settings["doc_max_chars"],
            "inputs": list(inputs),
            "title_separator": settings["title_separator"],
            "pad_token_id": pad,
        }
    )


def _provenance(ckpt: Checkpoint, options: PackageOptions) -> dict[str, Any]:
    cfg = ckpt.config
    return {
        # a student records the model it started from; a folder name ("student") says nothing
        "base_model": options.base_model or _student_meta(ckpt).get("base_model") or ckpt.path.resolve().name,
        # a segmented student's config is a bare BertModel's; name the model that was exported
        "architecture": type(ckpt.model).__name__
        if is_segmented_checkpoint(ckpt.path)
        else (cfg.architectures or [type(ckpt.model).__name__])[0],
        "model_type": cfg.model_type,
        "checkpoint_sha256": checkpoint_sha256(ckpt.path),
        "training_data": options.training_data,
        "distillation": _distillation(ckpt),
        "code_commit": code_commit(),
        "tools": tool_versions(),
    }


MODEL_CARD = "MODEL_CARD.md"


def _read_card(path: str) -> bytes:
    """The model card's bytes: an existing UTF-8 text file (checked before any work is done)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--model-card {path}: no such file")
    data = p.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"--model-card {path}: not UTF-8 text ({exc})") from exc
    return data


class _Clock:
    """Times the stages of one build and reports them through ``progress``.

    ``stage(name)`` is a context manager: the block's seconds go into ``timings[name]``. A stage
    with ``steps=True`` is one step on the progress bar (0 of 1 on entry, 1 of 1 on exit); the
    others (quantize, verify, fusion) report their own steps through :attr:`tick`.
    """

    def __init__(self, progress: Progress | None) -> None:
        self.tick: Progress = progress or (lambda stage, done, total: None)
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str, *, steps: bool = True) -> Iterator[None]:
        t0 = time.perf_counter()
        if steps:
            self.tick(name, 0, 1)
        yield
        self.timings[name] = time.perf_counter() - t0
        if steps:
            self.tick(name, 1, 1)


def build_package(
    model_dir: str | Path,
    out_dir: str | Path,
    options: PackageOptions = PackageOptions(),
    progress: Progress | None = None,
) -> PackageResult:
    """Turn a cross-encoder checkpoint into a verified package at ``out_dir``.

    The steps, each timed in :attr:`PackageResult.timings`: export (torch -> ONNX), optimize
    (graph fusion), quantize (INT8 only), verify (against fp32, or torch for an fp32 package),
    package (write the files and the manifest), and fusion (only with ``fusion_data``).

    Raises:
        InputError: bad arguments (no checkpoint, non-empty ``out_dir``, too long ``max_length``).
        ExportError: the checkpoint is not a one-output cross-encoder optimum can export.
        FidelityError: the package ranks too differently from its reference (unless ``force``);
            nothing is written then.
    """
    out, groups, data = _check_inputs(out_dir, options)
    clock = _Clock(progress)
    with clock.stage("export"):
        ckpt = load_checkpoint(model_dir)
        exported = export_onnx(ckpt, opset=options.opset)
        config = _package_config(ckpt, exported.inputs, options)
    with clock.stage("optimize"):
        optimized = _optimize(ckpt, exported.model, options)
        fp32_bytes = optimized.model.SerializeToString()
    shipped, pairs = fp32_bytes, None
    if options.precision == "int8":
        with clock.stage("quantize", steps=False):
            shipped, pairs, exact = _quantize(ckpt, optimized.model, config, groups, options, clock.tick)
        if exact:
            config = replace(config, batching="exact")
    quantization = _quantization_record(options, exported.opset, optimized.fused_ops, fp32_bytes, data, pairs)
    config = replace(config, quantization=quantization, provenance=_provenance(ckpt, options))
    with clock.stage("verify", steps=False):
        more, names = gate_groups(options.verify)
        verify_data = " + ".join([data, *names])
        fidelity = _verify(ckpt, config, fp32_bytes, shipped, options, clock.tick, groups + more, verify_data)
    with clock.stage("package"):
        config = replace(config, fidelity=fidelity)
        path = write_package(out, _package_files(ckpt, shipped, options), config)
    if options.fusion_data:
        # Fitted on the package as written (what ships is what is fitted), then sealed into it.
        with clock.stage("fusion", steps=False):
            config = add_fusion(path, _fit_fusion(path, options, clock.tick))
    tarball = tar_package(path) if options.tar else None
    log.info("wrote %s (%d bytes of model)", path, len(shipped))
    return PackageResult(
        path=path,
        tarball=tarball,
        config=config,
        timings=clock.timings,
        sizes={"fp32_model_bytes": len(fp32_bytes), "model_bytes": len(shipped)},
    )


def _check_inputs(out_dir: str | Path, options: PackageOptions) -> tuple[Path, list[Any], str]:
    """Fail before minutes of export on what can be checked now; returns the output folder and the groups.

    The groups are the calibration queries (static INT8 scales and verification) and their name
    for the report: a bad ``--calibration`` fails here, and so does a bad gate set.
    """
    out = check_out_dir(out_dir, tar=options.tar)
    if options.model_card:
        _read_card(options.model_card)
    if options.fusion_data:
        check_fusion_data(options.fusion_data)
    groups, data = _groups(options.verify)
    gate_groups(replace(options.verify, max_queries=1))
    return out, groups, data


def _optimize(ckpt: Checkpoint, model: Any, options: PackageOptions) -> Any:
    """The fused fp32 graph (:func:`.optimize.optimize_onnx`).

    An INT8 package is verified against the very fp32 graph it was quantized from, so the graph
    is fused the way the quantization needs (see :meth:`QuantizeOptions.fusion`).
    """
    fuse = options.quantize.fusion() if options.precision == "int8" else {}
    cfg = ckpt.config
    return optimize_onnx(model, num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size, **fuse)


def _quantize(
    ckpt: Checkpoint, model: Any, config: PackageConfig, groups: list[Any], options: PackageOptions, tick: Progress
) -> tuple[bytes, int | None, bool]:
    """The INT8 graph's bytes, how many pairs calibrated it (None: dynamic), and whether it batches exactly.

    A static graph drops its attention padding mask (unless ``padded_batches``): its runtime then
    batches rows of one length only (``batching: "exact"``).
    """
    q = options.quantize
    feeds = calibration_feeds(ckpt.tokenizer_json, config, groups, q.calibration_pairs) if q.static else None
    quantized = quantize_int8(model, q, feeds, progress=lambda d, t: tick("quantize", d, t))
    exact = q.static and not options.padded_batches and bool(drop_padding_mask(quantized))
    return quantized.SerializeToString(), (len(feeds or ()) if q.static else None), exact


# The fields of ranker.json's "quantization" that PackageOptions decide (the rest describe the build).
QUANTIZATION_SETTINGS = (
    "precision",
    "method",
    "activations",
    "embeddings",
    "per_channel",
    "reduce_range",
    "smooth",
    "ffn_output",
    "op_types",
)


def quantization_settings(options: PackageOptions) -> dict[str, Any]:
    """What ``ranker.json``'s ``quantization`` records of ``options`` (its :data:`QUANTIZATION_SETTINGS` fields).

    Two builds from one checkpoint and calibration set with equal settings make the same graph:
    a caller can reuse a package whose recorded settings equal these.
    """
    if options.precision != "int8":
        return {"precision": options.precision}
    q = options.quantize
    return {
        "precision": options.precision,
        "method": q.method(),
        "activations": q.activations,
        "embeddings": q.embeddings,
        "per_channel": q.per_channel,
        "reduce_range": q.reduce_range,
        **({"smooth": q.smooth} if q.static and q.smooth is not None else {}),
        **({"ffn_output": q.ffn_output} if q.ffn_output != "int8" else {}),
        "op_types": list(q.quantized_ops()),
    }


def _quantization_record(
    options: PackageOptions,
    opset: int,
    fused_ops: dict[str, int],
    fp32_bytes: bytes,
    data: str,
    pairs: int | None,
) -> dict[str, Any]:
    """``ranker.json``'s ``quantization``: how the shipped graph was made, and on which CPU."""
    record: dict[str, Any] = {
        "precision": options.precision,
        "opset": opset,
        "fused_ops": fused_ops,
        "cpu": cpu_features(),
        "fp32_model_bytes": len(fp32_bytes),
    }
    record.update(quantization_settings(options))
    if options.precision == "int8" and options.quantize.static:
        record["calibration"] = {"data": data, "pairs": pairs, "method": "MinMax, one unpadded pair a feed"}
    return record


def _package_files(ckpt: Checkpoint, shipped: bytes, options: PackageOptions) -> dict[str, bytes]:
    files = {"model.onnx": shipped, "tokenizer.json": ckpt.tokenizer_json}
    if options.model_card:
        files[MODEL_CARD] = _read_card(options.model_card)
    return files


def _fit_fusion(path: Path, options: PackageOptions, tick: Progress) -> dict[str, Any]:
    return fit_fusion(
        path,
        options.fusion_data,
        FitOptions(objective=options.fusion_objective, unjudged=options.fusion_unjudged),
        threads=options.verify.threads,
        progress=lambda done, total: tick("fusion", done, total),
    )


def _groups(vo: VerifyOptions) -> tuple[list[Any], str]:
    """The calibration groups (static INT8 scales and verification) and their name for the report."""
    if vo.calibration:
        return calibration_groups(vo.calibration, vo.split, max_queries=vo.max_queries)
    log.info("no calibration data: calibrating and verifying on generated text (no labels)")
    return generated_groups(vo.max_queries), "generated"


def _verify(
    ckpt: Checkpoint,
    config: PackageConfig,
    fp32_bytes: bytes,
    shipped: bytes,
    options: PackageOptions,
    tick: Progress,
    groups: list[Any],
    data: str,
) -> dict[str, Any]:
    """Score through the SDK's Ranker, compare, and enforce the thresholds (see :mod:`.verify`).

    An INT8 package is compared with the fp32 package it was quantized from, and the fp32
    package's scores of the first :data:`EXPORT_CHECK_QUERIES` groups with torch's (the export
    check); an fp32 package is compared with torch on every group, which is its export check too.
    """
    vo = options.verify
    int8 = options.precision == "int8"
    # fp32 and int8 (or torch) scores of every group, plus the torch export check (int8 only)
    total = len(groups) * 2 + (min(EXPORT_CHECK_QUERIES, len(groups)) if int8 else 0)
    done = 0

    def step(_i: int, _n: int) -> None:
        nonlocal done
        done += 1
        tick("verify", done, total)

    tick("verify", 0, total)
    with tempfile.TemporaryDirectory(prefix="ranker-verify-") as tmp:
        fp32 = _scratch_ranker(Path(tmp) / "fp32", ckpt, config, fp32_bytes, vo.threads)
        if int8:
            reference = score_groups(fp32, groups, step)
            candidate = score_groups(
                _scratch_ranker(Path(tmp) / "int8", ckpt, config, shipped, vo.threads), groups, step
            )
            report = fidelity_report(reference, candidate, groups, data=data)
            pairs = list(zip(_torch_scores(ckpt, config, groups[:EXPORT_CHECK_QUERIES], step), reference))
        else:
            candidate = score_groups(fp32, groups, step)
            reference = _torch_scores(ckpt, config, groups, step)
            report = fidelity_report(
                reference, candidate, groups, data=data, reference_name="torch", candidate_name="fp32"
            )
            pairs = list(zip(reference, candidate))
    diff = max((float(abs(want - got).max()) for want, got in pairs), default=0.0)
    report["export_check"] = {"reference": "torch", "queries": len(pairs), "max_abs_diff": rounded(diff)}
    tick("verify", total, total)
    return _enforce(report, options, data)


def _scratch_ranker(folder: Path, ckpt: Checkpoint, config: PackageConfig, model: bytes, threads: int | None) -> Any:
    """A :class:`~ranker_sdk.Ranker` of a scratch package holding ``model``: verification scores what ships."""
    from ranker_sdk import Ranker

    pkg = write_package(folder, {"tokenizer.json": ckpt.tokenizer_json, "model.onnx": model}, config)
    return Ranker.load(pkg, threads=threads)


def _torch_scores(
    ckpt: Checkpoint, config: PackageConfig, groups: list[Any], step: Callable[[int, int], None]
) -> list[Any]:
    """The torch checkpoint's scores of each group, on the token ids the package feeds."""
    out = []
    for g in groups:
        out.append(torch_scores(ckpt.model, ckpt.tokenizer_json, config, g.query, g.docs))
        step(0, 0)
    return out


def _enforce(report: dict[str, Any], options: PackageOptions, data: str) -> dict[str, Any]:
    """``report`` with its thresholds and verdict; raises :class:`FidelityError` on a miss unless ``force``."""
    vo = options.verify
    report["thresholds"] = {
        "min_spearman": vo.min_spearman,
        "max_ndcg_drop": vo.max_ndcg_drop,
        "max_export_diff": vo.max_export_diff,
        **({"min_top10_overlap": vo.min_top10_overlap} if vo.min_top10_overlap else {}),
    }
    missed = failures(report, vo)
    report["passed"] = not missed
    report["forced"] = bool(missed) and options.force
    if missed:
        summary = "; ".join(missed)
        if not options.force:
            raise FidelityError(
                f"the {report['candidate']} model fails verification against {report['reference']} on "
                f"{report['queries']} queries of {data}: {summary}. Nothing was written. Check the "
                "checkpoint, try --precision fp32, or pass --force to package it anyway"
            )
        log.warning("fidelity below thresholds (%s); packaging anyway because force is set", summary)
    return report
