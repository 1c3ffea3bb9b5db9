"""quantize.py: INT8 dynamic quantization of the fused graph, and the CPU record."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ranker_quantize.export import export_onnx, load_checkpoint
from ranker_quantize.optimize import optimize_onnx
from ranker_quantize.quantize import QuantizeOptions, cpu_features, quantize_int8


@pytest.fixture(scope="module")
def fused(tiny_bert_dir):
    return optimize_onnx(export_onnx(load_checkpoint(tiny_bert_dir)).model, num_heads=2, hidden_size=32).model


def _scales(model):
    return [numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("_scale")]


def test_int8_per_channel(fused):
    q = quantize_int8(fused)
    ops = {n.op_type for n in q.graph.node}
    # Fused Attention becomes QAttention; the FFN MatMuls become MatMulInteger on int8 weights.
    assert {"QAttention", "MatMulInteger", "DynamicQuantizeLinear", "QEmbedLayerNormalization"} <= ops
    int8 = [t for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8, "no int8 weights"
    assert any(s.size > 1 for s in _scales(q)), "per-channel weights have one scale per column"
    assert len(q.SerializeToString()) < len(fused.SerializeToString()) / 2


def test_per_tensor_option(fused):
    q = quantize_int8(fused, QuantizeOptions(per_channel=False))
    assert all(s.size == 1 for s in _scales(q))


def test_fp32_embeddings_keep_the_table_and_quantize_the_rest(fused):
    q = quantize_int8(fused, QuantizeOptions(fp32_embeddings=True))
    ops = {n.op_type for n in q.graph.node}
    assert "EmbedLayerNormalization" in ops and "QEmbedLayerNormalization" not in ops
    assert {"QAttention", "MatMulInteger"} <= ops
    words = next(n for n in q.graph.node if n.op_type == "EmbedLayerNormalization").input[2]
    table = next(t for t in q.graph.initializer if t.name == words)
    assert table.data_type == onnx.TensorProto.FLOAT
    assert len(q.SerializeToString()) > len(quantize_int8(fused).SerializeToString())


def test_deterministic(fused):
    assert quantize_int8(fused).SerializeToString() == quantize_int8(fused).SerializeToString()


def test_cpu_features():
    cpu = cpu_features()
    assert set(cpu) == {"arch", "flags", "vnni", "amx"}
    assert isinstance(cpu["arch"], str) and cpu["arch"]
    assert cpu["vnni"] == bool({"avx512_vnni", "avx_vnni"} & set(cpu["flags"]))
    assert np.all([isinstance(f, str) for f in cpu["flags"]])
