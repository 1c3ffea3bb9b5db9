"""Step 3: INT8 quantization of the fused graph, and the CPU it was done on.

Two ways to choose the activations' scales (``QuantizeOptions.activations``):

- **static** (the default): every quantized MatMul input gets one fixed scale and zero point,
  measured once on calibration pairs (the min and max each tensor reaches when real queries and
  candidates run through the fp32 graph; :mod:`.calibrate` feeds them, encoded by the SDK's own
  :class:`~ranker_sdk.tokenize.PairEncoder`). The graph is written in QDQ form
  (``QuantizeLinear -> DequantizeLinear -> MatMul``), which onnxruntime fuses at load into
  integer kernels (``MatMulIntegerToFloat``). Because the scales are constants, a row's
  integer arithmetic never sees another row: **a document's score depends on that document and
  the query only**, not on what else shares its batch.
- **dynamic** (``--set activations=dynamic``): onnxruntime quantizes each MatMul input on the fly
  from the range observed in *the whole batch* (padding and neighbours included). No
  calibration is needed, but the same pair scores differently in a different batch, by enough
  to change a top-10 (:func:`.verify.batch_invariance` measures it).

The other choices:

- **Per-channel weights** (one scale per output column) keep small-magnitude columns from being
  rounded to zero by one large column sharing their scale. Weights are int8 symmetric,
  activations uint8 asymmetric (the u8 x s8 form VNNI multiplies natively).
- **Separate Q, K, V projections for static**: onnxruntime's static quantizer has no rule for
  the fused ``Attention`` op, so a static graph is fused with ``MultiHeadAttention`` instead
  (:func:`.optimize.optimize_onnx` ``separate_qkv``): the three projections are plain MatMuls that
  quantize, the attention core (scores, softmax) stays fp32 in both modes.
- **MatMul outputs stay fp32** (``OpTypesToExcludeOutputQuantization``): the bias add, GELU and
  LayerNorm that follow run in float, so no extra rounding is added after the integer product.
- **Only MatMuls with a constant weight**: the attention score MatMuls of an unfused graph (the
  segmented student's, whose block mask does not fuse) multiply two activations; quantizing those
  costs accuracy. onnxruntime's ``MatMulConstBOnly`` does not keep them out on its own: it
  accepts a MatMul when *any* node upstream of its second input reads an initializer, and the
  key projection's bias is one, so ``Q x K^T`` and ``softmax x V`` were quantized (the softmax
  probabilities to uint8 steps of about 1/255, most of a 160-token row's probabilities rounding
  to 0 or 1/255). They are named in ``nodes_to_exclude`` (:func:`activation_matmuls`) and stay
  fp32 (``python -m lab.benchmarks.int8_variants`` compares the variants; docs/speed.md).
- **Types of contrib-op outputs**: ONNX shape inference cannot type the outputs of
  onnxruntime's contrib ops (``MultiHeadAttention``, ``SkipLayerNormalization``, ``BiasGelu``),
  and the static quantizer silently skips every MatMul whose input it cannot type (the FFN
  and attention-output MatMuls would stay fp32). onnxruntime's symbolic shape inference knows
  those ops, so the graph is typed with it first. (The dynamic quantizer is told instead:
  ``DefaultTensorType=FLOAT``, the fix its own error message documents.)
- **Smoothing** (``smooth``, alpha 0.8 by default; SmoothQuant, Xiao et al. 2023): a LayerNorm
  output has a few channels far larger than the rest, and one static scale for the whole tensor
  spends its uint8 steps on them. Each such channel is divided by ``s_j`` on the way into the
  Q/K/V and FFN MatMuls (one ``Mul``) and their weights' row ``j`` multiplied by it: the same
  product, with the outliers moved into the per-channel weight scales; the residual path keeps
  the unsmoothed tensor. It raises the INT8 graph's agreement with fp32 at the same speed (the
  packaging check's Spearman records it in ``ranker.json``). The division stays a ``Mul``: folded
  into a per-channel ``QuantizeLinear`` instead, onnxruntime no longer picks its integer kernel.
- **``reduce_range``** (7-bit weights), on by default: without VNNI, onnxruntime's AVX2 kernel
  multiplies uint8 activations by int8 weights with ``vpmaddubsw``, whose int16 pair sums
  saturate with full 8-bit weights, and a package runs on whatever CPU its user has
  (docs/packaging.md has the measured difference). The CPU the package was verified on is recorded
  (:func:`cpu_features`).
- **Embeddings** (``QuantizeOptions.embeddings``): the word table is most of a small BERT's
  bytes (MiniLM: 45 of 87 MiB fp32). ``"rows"`` (default) stores it int8 with **one scale per
  row** (per token): the Gather picks int8 rows and their scales, and a Cast and Mul turn only
  those rows back into floats (:func:`int8_embedding_rows`), so the fp32 table never exists in
  memory. ``"tensor"`` is onnxruntime's own embedding quantization (one scale for the whole
  table, dynamic only), coarser: one scale cannot fit rare and common tokens alike. ``"fp32"``
  keeps the table fp32, at more than twice the package size.
- **The FFN's output MatMul** (``ffn_output``): its input is the GELU output, the widest-ranged
  activation of a BERT layer (a few of its 1,536 channels reach tens while most stay under one),
  which LayerNorm smoothing does not reach. ``"int8"`` (default) quantizes it like every other
  MatMul; ``"smooth"`` applies the same SmoothQuant to the GELU outputs (with ``smooth``'s
  alpha); ``"fp32"`` keeps those MatMuls in float (a third of each layer's weights stay fp32:
  a larger, slower package).
"""

from __future__ import annotations

import logging
import platform
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ranker_sdk.errors import InputError

from .checks import one_of, positive_int
from .errors import ExportError

__all__ = [
    "QuantizeOptions",
    "quantize_int8",
    "activation_matmuls",
    "smooth_layer_norm_outputs",
    "ffn_output_matmuls",
    "int8_embedding_rows",
    "cpu_features",
    "ACTIVATIONS",
    "EMBEDDINGS",
    "FFN_OUTPUTS",
]

log = logging.getLogger(__name__)

ACTIVATIONS = ("static", "dynamic")
EMBEDDINGS = ("rows", "tensor", "fp32")
FFN_OUTPUTS = ("int8", "smooth", "fp32")
# The ops whose outputs :func:`smooth_layer_norm_outputs` smooths: LayerNorms always, the GELU
# forms onnxruntime's fusion leaves (BiasGelu, FastGelu) or the plain op with ffn_output="smooth".
LAYER_NORMS = ("LayerNormalization",)
GELUS = ("BiasGelu", "FastGelu", "Gelu")
# The /proc/cpuinfo flags that decide which INT8 kernels onnxruntime uses.
_INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")
# The graph input whose Gather reads the word table (every exported BERT-family graph has it).
_IDS = "input_ids"


@dataclass(frozen=True)
class QuantizeOptions:
    """How the graph is quantized (see the module docstring for why each default).

    Attributes:
        activations: ``"static"`` (scales calibrated once; batch-independent scores) or
            ``"dynamic"`` (scales per batch).
        embeddings: ``"rows"`` (int8, one scale per row), ``"tensor"`` (int8, one scale for the
            table; dynamic only) or ``"fp32"``.
        per_channel: one weight scale per output column (else one per tensor).
        reduce_range: 7-bit weights (default), exact on CPUs without VNNI too.
        calibration_pairs: at most this many (query, doc) pairs calibrate static scales.
        smooth: move this share (alpha, 0..1) of each LayerNorm output channel's range into the
            weights of the MatMuls it feeds (:func:`smooth_layer_norm_outputs`; static
            activations only, ignored for dynamic); None: off.
        ffn_output: the FFN's second MatMul (reading the GELU output): ``"int8"`` like the
            rest, ``"smooth"`` with its input smoothed too (static, ``smooth`` set), or ``"fp32"``.
    """

    activations: str = "static"
    embeddings: str = "rows"
    per_channel: bool = True
    reduce_range: bool = True
    calibration_pairs: int = 512
    smooth: float | None = 0.8
    ffn_output: str = "int8"

    def __post_init__(self) -> None:
        one_of("activations", self.activations, ACTIVATIONS)
        one_of("embeddings", self.embeddings, EMBEDDINGS)
        one_of("ffn_output", self.ffn_output, FFN_OUTPUTS)
        if self.ffn_output == "smooth" and (self.activations != "static" or self.smooth is None):
            raise InputError(
                "ffn_output='smooth' smooths the GELU outputs with the static graph's SmoothQuant: it needs "
                "activations='static' and a smooth alpha"
            )
        if self.embeddings == "tensor" and self.activations == "static":
            raise InputError(
                "embeddings='tensor' is onnxruntime's dynamic embedding quantization; with static "
                "activations use 'rows' (int8 with a scale per row) or 'fp32'"
            )
        if self.smooth is not None and not (isinstance(self.smooth, (int, float)) and 0.0 < self.smooth < 1.0):
            raise InputError(
                f"smooth must be an alpha strictly between 0 and 1, or none (None in Python) to switch it off,"
                f" got {self.smooth!r}"
            )
        positive_int("calibration_pairs", self.calibration_pairs)

    @property
    def static(self) -> bool:
        return self.activations == "static"

    def fusion(self) -> dict[str, bool]:
        """How :func:`.optimize.optimize_onnx` must fuse the graph these options quantize.

        Static needs the Q, K, V projections as MatMuls; per-row embeddings need the word
        ``Gather`` outside ``EmbedLayerNormalization``.
        """
        return {"separate_qkv": self.static, "fuse_embeddings": self.embeddings != "rows"}

    def quantized_ops(self) -> tuple[str, ...]:
        """The op types handed to onnxruntime's quantizer (the row-wise table is ours, not its)."""
        if self.static:
            return ("MatMul",)
        ops = ("MatMul", "Attention")
        return ops + ("EmbedLayerNormalization", "Gather") if self.embeddings == "tensor" else ops

    def method(self) -> str:
        """One line for ``ranker.json``'s quantization details."""
        acts = (
            "static QDQ: uint8 activations with fixed scales calibrated (MinMax) on real pairs"
            if self.static
            else "dynamic: uint8 activations quantized per batch"
        )
        emb = {
            "rows": "int8 word table with a scale per row",
            "tensor": "int8 word table, one scale",
            "fp32": "fp32 embeddings",
        }[self.embeddings]
        chan = "per-channel" if self.per_channel else "per-tensor"
        smooth = (
            f"; LayerNorm outputs smoothed into the weights (alpha {self.smooth:g})"
            if self.static and self.smooth
            else ""
        )
        ffn = {
            "int8": "",
            "smooth": "; GELU outputs smoothed too",
            "fp32": "; FFN output MatMuls kept fp32",
        }[self.ffn_output]
        return f"onnxruntime {acts}; int8 {chan} weights; {emb}{smooth}{ffn}"


def _reader(feeds: list[Mapping[str, np.ndarray]], tick: Callable[[int], None]) -> Any:
    """onnxruntime's calibration reader over ``feeds``; ``tick(n)`` as the calibrator takes the n-th."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)
            self.count = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self._it, None)
            if feed is None:
                return None
            self.count += 1
            tick(self.count)  # the calibrator runs the fp32 graph on each feed as it takes it
            return dict(feed)

    return _Reader()


def quantize_int8(
    model: Any,
    options: QuantizeOptions = QuantizeOptions(),
    calibration: Iterable[Mapping[str, np.ndarray]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Return an INT8 copy of ``model`` (an ``onnx.ModelProto`` fused as ``options.fusion()`` says).

    Args:
        calibration: model feeds (``{input name: int64 [1, seq]}``) whose activation ranges set
            the static scales; required for static activations, ignored for dynamic. One pair
            per feed, unpadded, so padding never widens a range (:func:`.calibrate.calibration_feeds`).
        progress: called as ``progress(done, total)``: one step per calibration pair (twice with
            smoothing: it reads them first) and one for writing the quantized graph.

    Example:
        >>> feeds = calibration_feeds(tokenizer_json, config, groups, 512)       # doctest: +SKIP
        >>> q = quantize_int8(optimized.model, QuantizeOptions(), feeds)         # doctest: +SKIP
    """
    import onnx

    if options.static and calibration is None:
        raise InputError("static INT8 needs calibration feeds (pairs from --calibration or generated text)")
    model = _typed(model) if options.static else _copy(model)
    excluded = activation_matmuls(model)
    if options.ffn_output == "fp32":
        excluded += ffn_output_matmuls(model)
    feeds = list(calibration) if options.static else []  # read twice with smoothing
    smoothed = len(feeds) if options.static and options.smooth is not None else 0
    total = smoothed + len(feeds) + 1
    tick = progress or (lambda done, total: None)
    tick(0, total)
    if smoothed:
        ops = LAYER_NORMS + (GELUS if options.ffn_output == "smooth" else ())
        smooth_layer_norm_outputs(model, feeds, options.smooth, ops=ops)
        tick(smoothed, total)
    with tempfile.TemporaryDirectory(prefix="ranker-quantize-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        if options.static:
            _quantize_static(src, dst, options, feeds, excluded, lambda n: tick(smoothed + n, total))
        else:
            _quantize_dynamic(src, dst, options, excluded)
        quantized = onnx.load(str(dst), load_external_data=True)
    if options.embeddings == "rows":
        quantized = int8_embedding_rows(quantized)
    tick(total, total)
    return quantized


def _extra_options() -> dict[str, Any]:
    """The quantizers' ``extra_options`` of both modes (see the module docstring for each)."""
    import onnx

    return {"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True}


def _quantize_static(
    src: Path,
    dst: Path,
    options: QuantizeOptions,
    feeds: list[Mapping[str, np.ndarray]],
    excluded: list[str],
    tick: Callable[[int], None],
) -> None:
    """onnxruntime's static QDQ quantization of ``src`` into ``dst``, calibrated (MinMax) on ``feeds``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    reader = _reader(feeds, tick)
    quantize_static(
        src,
        dst,
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(options.quantized_ops()),
        per_channel=options.per_channel,
        reduce_range=options.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=excluded,
        extra_options={**_extra_options(), "OpTypesToExcludeOutputQuantization": ["MatMul"]},
    )
    log.info("static scales calibrated on %d pairs", reader.count)


def _quantize_dynamic(src: Path, dst: Path, options: QuantizeOptions, excluded: list[str]) -> None:
    """onnxruntime's dynamic quantization of ``src`` into ``dst`` (activation scales per batch)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        weight_type=QuantType.QInt8,
        per_channel=options.per_channel,
        reduce_range=options.reduce_range,
        op_types_to_quantize=list(options.quantized_ops()),
        nodes_to_exclude=excluded,
        extra_options=_extra_options(),
    )


def smooth_layer_norm_outputs(
    model: Any, calibration: list[Mapping[str, np.ndarray]], alpha: float, *, ops: tuple[str, ...] = LAYER_NORMS
) -> int:
    """SmoothQuant on the LayerNorm outputs that feed weight MatMuls, in place; returns how many.

    ``ops``: the op types whose outputs are smoothed (LayerNorms; with :data:`GELUS` the FFN's
    GELU outputs too, whose only reader is the FFN output MatMul).

    A LayerNorm output has a few channels far larger than the rest, and one static scale for the
    whole tensor spends the uint8 steps on them. For such a tensor ``X`` (its per-channel
    maximum ``|X_j|`` measured on the calibration pairs through the fp32 graph) and the weights
    ``W`` of the MatMuls it feeds, ``s_j = max|X_j| ** alpha / max_k |W_jk| ** (1 - alpha)``;
    those MatMuls then read ``X / s`` (one ``Mul`` node) and carry ``diag(s) W``: the same
    product in exact arithmetic, with the outliers moved into the per-channel weight scales. The
    residual ``Add`` keeps reading ``X`` itself.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    consumers = _weight_matmuls_of(model, inits, ops)
    if not consumers or not calibration:
        return 0
    peak = _channel_peaks(model, list(consumers), calibration)
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        if node.op_type in ops and node.output[0] in consumers:
            x = node.output[0]
            weights = [numpy_helper.to_array(inits[c.input[1]]) for c in consumers[x]]
            w_peak = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
            s = np.power(np.maximum(peak[x], 1e-5), alpha) / np.power(np.maximum(w_peak, 1e-5), 1.0 - alpha)
            s = np.clip(s, 1e-3, 1e3).astype(np.float32)
            nodes.append(_divide_by(model, x, s))
            for c in consumers[x]:
                w = numpy_helper.to_array(inits[c.input[1]]).astype(np.float32)
                inits[c.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], c.input[1]))
                c.input[0] = f"{x}_smoothed"
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(consumers)


def _weight_matmuls_of(model: Any, inits: Mapping[str, Any], ops: tuple[str, ...]) -> dict[str, list[Any]]:
    """``{output of an op in ops: the MatMuls with a constant weight that read it}``."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in inits:
            p = producer.get(n.input[0])
            if p is not None and p.op_type in ops:
                consumers.setdefault(n.input[0], []).append(n)
    return consumers


def ffn_output_matmuls(model: Any) -> list[str]:
    """Names of the weight MatMuls of ``model`` that read a GELU output (the FFN's second MatMul).

    Unnamed ones are named first (in place), as :func:`activation_matmuls` does.
    """
    inits = {t.name: t for t in model.graph.initializer}
    matmuls = [m for ms in _weight_matmuls_of(model, inits, GELUS).values() for m in ms]
    return _names(matmuls, "ranker_ffn_output_matmul")


def _channel_peaks(model: Any, names: list[str], calibration: list[Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Per tensor of ``names``: each channel's largest ``|value|`` over the calibration feeds (fp32 graph)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    peak: dict[str, Any] = {name: None for name in names}
    for feed in calibration:
        for name, out in zip(names, sess.run(names, {k: feed[k] for k in inputs})):
            m = np.abs(out.reshape(-1, out.shape[-1])).max(axis=0)
            peak[name] = m if peak[name] is None else np.maximum(peak[name], m)
    return peak


def _divide_by(model: Any, x: str, s: np.ndarray) -> Any:
    """The ``Mul`` node computing ``x / s`` as ``{x}_smoothed`` (its ``1 / s`` added to the initializers)."""
    from onnx import helper, numpy_helper

    inv = f"{x}_smooth_inv"
    model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), inv))
    smoothed = f"{x}_smoothed"
    # typed like X: the static quantizer skips a MatMul whose input has no type
    typed = next((v for v in model.graph.value_info if v.name == x), None)
    if typed is not None:
        info = model.graph.value_info.add()
        info.CopyFrom(typed)
        info.name = smoothed
    return helper.make_node("Mul", [x, inv], [smoothed], name=f"{x}_smooth")


def activation_matmuls(model: Any) -> list[str]:
    """Names of the MatMuls of ``model`` whose second input is not a constant (activation x activation).

    These stay fp32 (see the module docstring). Unnamed MatMuls are given a name first (in
    place), since onnxruntime's quantizer excludes nodes by name.
    """
    consts = {t.name for t in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    nodes = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in consts]
    return _names(nodes, "ranker_activation_matmul")


def _names(nodes: Iterable[Any], prefix: str) -> list[str]:
    """The names of ``nodes``, naming the unnamed ones ``{prefix}_{i}`` first (in place): onnxruntime's
    quantizer excludes nodes by name."""
    out = []
    for i, node in enumerate(nodes):
        if not node.name:
            node.name = f"{prefix}_{i}"
        out.append(node.name)
    return out


def _copy(model: Any) -> Any:
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _typed(model: Any) -> Any:
    """``model`` with every tensor's type recorded, contrib ops' outputs included (see the module docstring)."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        return SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    except Exception as exc:  # noqa: BLE001 - it raises bare Exceptions on graphs it cannot follow
        raise ExportError(
            f"cannot type the fused graph for static quantization ({exc}); try --set activations=dynamic"
        ) from exc


def int8_embedding_rows(model: Any) -> Any:
    """Store the word-embedding table int8 with one scale per row; return the new model.

    ``Gather(table, input_ids)`` becomes::

        Gather(table_int8 [V, H], input_ids) -> Cast(float) -> Mul(Gather(scales [V, 1], input_ids))

    with ``scales[v] = max|table[v]| / 127`` (symmetric, so no zero point). Only the gathered rows
    are ever turned back into floats. Each row keeps its own range, so rare tokens with small
    vectors are not flattened by the table's largest entry (the per-tensor scheme's error).

    Raises:
        ExportError: the graph has no ``Gather`` of a 2-D constant table by ``input_ids`` (it
            was fused with ``EmbedLayerNormalization``; optimize with ``fuse_embeddings=False``).
    """
    import onnx
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    node = _word_table_gather(model, inits)
    table = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
    amax = np.abs(table).max(axis=1, keepdims=True)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scales), -127, 127).astype(np.int8)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    name = node.input[0]
    kept = [t for t in out.graph.initializer if t.name != name]
    del out.graph.initializer[:]
    out.graph.initializer.extend(kept)
    out.graph.initializer.extend(
        [numpy_helper.from_array(q, f"{name}_int8"), numpy_helper.from_array(scales, f"{name}_row_scale")]
    )
    p = node.name or "word_embeddings"
    ids = node.input[1]
    new = [
        helper.make_node("Gather", [f"{name}_int8", ids], [f"{p}_rows_int8"], name=f"{p}_int8", axis=0),
        helper.make_node("Gather", [f"{name}_row_scale", ids], [f"{p}_row_scales"], name=f"{p}_scales", axis=0),
        helper.make_node("Cast", [f"{p}_rows_int8"], [f"{p}_rows_float"], name=f"{p}_cast", to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}_rows_float", f"{p}_row_scales"], list(node.output), name=f"{p}_dequant"),
    ]
    nodes = list(out.graph.node)
    i = next(k for k, n in enumerate(nodes) if n.name == node.name and list(n.output) == list(node.output))
    del out.graph.node[:]
    out.graph.node.extend(nodes[:i] + new + nodes[i + 1 :])
    return out


def _word_table_gather(model: Any, inits: Mapping[str, Any]) -> Any:
    """The ``Gather`` node that reads the word-embedding table (see :func:`int8_embedding_rows`)."""
    tables = [
        n
        for n in model.graph.node
        if n.op_type == "Gather" and len(n.input) == 2 and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
    ]
    # The table gathered by input_ids itself; else (a graph that rewrites the ids first, like the
    # segmented student's inserted [CLS]) the largest gathered table, which is the vocabulary.
    node = next((n for n in tables if n.input[1] == _IDS), None) or max(
        tables, key=lambda n: inits[n.input[0]].dims[0], default=None
    )
    if node is None:
        raise ExportError(
            "no Gather of the word-embedding table by input_ids in the graph; per-row int8 "
            "embeddings need the graph optimized with fuse_embeddings=False (or use embeddings='fp32')"
        )
    return node


def cpu_features() -> dict[str, Any]:
    """The machine architecture and its INT8-relevant CPU flags, for the package's record.

    INT8 results can differ slightly between CPUs with and without VNNI/AMX (different kernels,
    and saturation without VNNI), so the package says where its fidelity was measured.
    """
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass  # not Linux: the architecture is still recorded
    found = [f for f in _INT8_FLAGS if f in flags]
    return {
        "arch": platform.machine(),
        "flags": found,
        "vnni": "avx512_vnni" in flags or "avx_vnni" in flags,
        "amx": "amx_int8" in flags,
    }
