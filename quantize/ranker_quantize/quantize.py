"""Step 3: INT8 dynamic quantization of the fused graph, and the CPU it was done on.

Dynamic quantization stores weights as int8 and quantizes activations to uint8 on the fly, per
batch, from their observed range: no calibration set, and the accuracy cost on BERT-family
rankers is small (:mod:`.verify` measures it). The choices:

- **Per-channel weights** (one scale per output column) keep small-magnitude columns from being
  rounded to zero by one large column sharing their scale.
- **Weights only in MatMul** (``MatMulConstBOnly``): the attention score MatMuls of an unfused
  graph multiply two activations; quantizing those costs accuracy for little speed.
- **``DefaultTensorType=FLOAT``**: on a fused graph, shape inference cannot type the outputs
  of contrib ops (``Attention``, ``SkipLayerNormalization``), and per-channel quantization then
  fails with "Unable to find data type for weight_name=...". Telling the quantizer that an
  untyped tensor is float is the fix onnxruntime's own error message documents.
- **``reduce_range``** (7-bit weights) exists for CPUs without VNNI, where the u8 x s8
  ``vpmaddubsw`` instruction can saturate. It is off by default: the verification runs on this
  machine, whose CPU features are recorded in the package (:func:`cpu_features`) so a
  difference on another CPU can be traced.
- **Embeddings** (``EmbedLayerNormalization``/``Gather``) are quantized by default: the word
  table is most of a small BERT's bytes (MiniLM: 45 of 87 MiB). Their int8 table is
  per-tensor, though, and it is the biggest single error source: on the default student,
  wikiqa dev MAP fell 1.1 points with it and 0.2 without it (fp32 0.769, int8 0.758, int8 with
  fp32 embeddings 0.767; trec-rag24 nDCG@10 within 0.6 points either way). ``fp32_embeddings``
  keeps them fp32 (package 22 -> 56 MiB; the matrix products, where the time goes, stay int8).
"""

from __future__ import annotations

import logging
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["QuantizeOptions", "quantize_int8", "cpu_features"]

log = logging.getLogger(__name__)

# The /proc/cpuinfo flags that decide which INT8 kernels onnxruntime uses.
_INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8")


@dataclass(frozen=True)
class QuantizeOptions:
    """How weights are quantized (see the module docstring for why each default)."""

    per_channel: bool = True
    reduce_range: bool = False
    op_types: tuple[str, ...] = ("MatMul", "Attention", "EmbedLayerNormalization", "Gather")
    fp32_embeddings: bool = False

    def quantized_ops(self) -> tuple[str, ...]:
        """The op types handed to the quantizer (``op_types`` less the embedding ops if kept fp32)."""
        if not self.fp32_embeddings:
            return self.op_types
        return tuple(t for t in self.op_types if t not in ("EmbedLayerNormalization", "Gather"))


def quantize_int8(model: Any, options: QuantizeOptions = QuantizeOptions()) -> Any:
    """Return an INT8 dynamically quantized copy of ``model`` (an ``onnx.ModelProto``).

    Example:
        >>> q = quantize_int8(optimized.model)          # doctest: +SKIP
        >>> len(q.SerializeToString()) < len(optimized.model.SerializeToString()) / 3  # doctest: +SKIP
        True
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="ranker-quantize-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(model, str(src))
        quantize_dynamic(
            src, dst, weight_type=QuantType.QInt8, per_channel=options.per_channel,
            reduce_range=options.reduce_range, op_types_to_quantize=list(options.quantized_ops()),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )
        return onnx.load(str(dst), load_external_data=True)


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
