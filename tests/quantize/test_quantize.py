"""quantize.py: static and dynamic INT8 of the fused graph, per-row int8 embeddings, the CPU record."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from ranker_quantize.calibrate import calibration_feeds
from ranker_quantize.errors import ExportError
from ranker_quantize.export import export_onnx, load_checkpoint
from ranker_quantize.optimize import optimize_onnx
from ranker_quantize.quantize import (
    QuantizeOptions,
    activation_matmuls,
    cpu_features,
    ffn_output_matmuls,
    int8_embedding_rows,
    quantize_int8,
)
from ranker_quantize.verify import calibration_groups
from ranker_sdk.errors import InputError

from ..conftest import tiny_config

DYNAMIC = QuantizeOptions(activations="dynamic", embeddings="tensor")  # the old default


@pytest.fixture(scope="module")
def exported(tiny_bert_dir):
    ckpt = load_checkpoint(tiny_bert_dir)
    return ckpt, export_onnx(ckpt)


@pytest.fixture(scope="module")
def fused(exported):
    """Fused the way dynamic INT8 (and fp32) packages are: packed Attention, EmbedLayerNormalization."""
    return optimize_onnx(exported[1].model, num_heads=2, hidden_size=32).model


@pytest.fixture(scope="module")
def fused_static(exported):
    """Fused the way the default (static, per-row embeddings) needs it."""
    return optimize_onnx(exported[1].model, num_heads=2, hidden_size=32, **QuantizeOptions().fusion()).model


@pytest.fixture(scope="module")
def feeds(exported, data_dir):
    ckpt, graph = exported
    config = tiny_config(inputs=graph.inputs)
    groups, _ = calibration_groups(data_dir / "trec-rag24", "dev", max_queries=4)
    return calibration_feeds(ckpt.tokenizer_json, config, groups, max_pairs=48)


def _run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)[0].reshape(-1)


def _scales(model):
    return [numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("_scale")]


def test_dynamic_int8_per_channel(fused):
    q = quantize_int8(fused, DYNAMIC)
    ops = {n.op_type for n in q.graph.node}
    # Fused Attention becomes QAttention; the FFN MatMuls become MatMulInteger on int8 weights.
    assert {"QAttention", "MatMulInteger", "DynamicQuantizeLinear", "QEmbedLayerNormalization"} <= ops
    int8 = [t for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8, "no int8 weights"
    assert any(s.size > 1 for s in _scales(q)), "per-channel weights have one scale per column"
    assert len(q.SerializeToString()) < len(fused.SerializeToString()) / 2


def test_per_tensor_option(fused):
    q = quantize_int8(fused, QuantizeOptions(activations="dynamic", per_channel=False, embeddings="fp32"))
    assert all(s.size == 1 for s in _scales(q))


def test_fp32_embeddings_keep_the_table_and_quantize_the_rest(fused):
    q = quantize_int8(fused, QuantizeOptions(activations="dynamic", embeddings="fp32"))
    ops = {n.op_type for n in q.graph.node}
    assert "EmbedLayerNormalization" in ops and "QEmbedLayerNormalization" not in ops
    assert {"QAttention", "MatMulInteger"} <= ops
    words = next(n for n in q.graph.node if n.op_type == "EmbedLayerNormalization").input[2]
    table = next(t for t in q.graph.initializer if t.name == words)
    assert table.data_type == onnx.TensorProto.FLOAT
    assert len(q.SerializeToString()) > len(quantize_int8(fused, DYNAMIC).SerializeToString())


def test_static_is_qdq_with_constant_activation_scales(fused_static, feeds):
    q = quantize_int8(fused_static, QuantizeOptions(), feeds)
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "MultiHeadAttention"} <= ops
    assert not ops & {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "QAttention"}, ops
    inits = {t.name for t in q.graph.initializer}
    # Every activation scale is a constant of the graph: nothing is measured per batch.
    quant = [n for n in q.graph.node if n.op_type == "QuantizeLinear"]
    assert quant and all(n.input[1] in inits and n.input[2] in inits for n in quant)
    # The Q, K and V projections are quantized too (their MatMuls read dequantized int8 weights).
    weights = [t for t in q.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    assert len(weights) >= 2 * 6 + 1, "6 MatMuls a layer (Q, K, V, out, FFN in/out) + the word table"
    assert any(s.size > 1 for s in _scales(q)), "per-channel weights have one scale per column"


def test_static_scores_track_fp32(fused_static, feeds):
    q = quantize_int8(fused_static, QuantizeOptions(), feeds)
    want = np.concatenate([_run(fused_static, f) for f in feeds[:16]])
    got = np.concatenate([_run(q, f) for f in feeds[:16]])
    assert np.corrcoef(want, got)[0, 1] > 0.98


def test_static_needs_calibration(fused_static):
    with pytest.raises(InputError, match="calibration"):
        quantize_int8(fused_static, QuantizeOptions())


def test_option_errors():
    with pytest.raises(InputError, match="dynamic"):
        QuantizeOptions(embeddings="tensor")  # onnxruntime's table quantization is dynamic-only
    with pytest.raises(InputError, match="activations"):
        QuantizeOptions(activations="int4")
    with pytest.raises(InputError, match="calibration_pairs"):
        QuantizeOptions(calibration_pairs=0)


def test_embedding_rows_keep_each_row_within_half_a_step(fused_static):
    table_name = next(
        n.input[0] for n in fused_static.graph.node if n.op_type == "Gather" and n.input[1] == "input_ids"
    )
    table = numpy_helper.to_array(next(t for t in fused_static.graph.initializer if t.name == table_name))
    q = int8_embedding_rows(fused_static)
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    assert table_name not in inits, "the fp32 table is gone"
    rows, scales = inits[f"{table_name}_int8"], inits[f"{table_name}_row_scale"]
    assert rows.dtype == np.int8 and rows.shape == table.shape and scales.shape == (table.shape[0], 1)
    assert np.all(np.abs(rows.astype(np.float32) * scales - table) <= scales / 2 + 1e-7)
    # The graph still computes the same thing, up to that rounding.
    ids = np.array([[2, 40, 41, 3, 500, 3]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    np.testing.assert_allclose(_run(q, feed), _run(fused_static, feed), atol=0.05)


def test_embedding_rows_need_the_gather(fused):
    with pytest.raises(ExportError, match="fuse_embeddings"):
        int8_embedding_rows(fused)  # fused into EmbedLayerNormalization: no Gather to rewrite


def test_deterministic(fused, fused_static, feeds):
    assert quantize_int8(fused, DYNAMIC).SerializeToString() == quantize_int8(fused, DYNAMIC).SerializeToString()
    a = quantize_int8(fused_static, QuantizeOptions(), feeds).SerializeToString()
    assert a == quantize_int8(fused_static, QuantizeOptions(), feeds).SerializeToString()


def test_cpu_features():
    cpu = cpu_features()
    assert set(cpu) == {"arch", "flags", "vnni", "amx"}
    assert isinstance(cpu["arch"], str) and cpu["arch"]
    assert cpu["vnni"] == bool({"avx512_vnni", "avx_vnni"} & set(cpu["flags"]))
    assert np.all([isinstance(f, str) for f in cpu["flags"]])


def test_static_graph_runs_on_integer_kernels(fused_static, feeds, tmp_path):
    """At load, onnxruntime must fuse each DequantizeLinear -> MatMul into an integer kernel.

    If it did not, every call would dequantize every weight back to fp32 and multiply in float:
    correct scores, but slower than fp32 itself. The optimized graph onnxruntime runs is saved
    and inspected.
    """
    q = quantize_int8(fused_static, QuantizeOptions(), feeds)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(q.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    ran = onnx.load(str(tmp_path / "optimized.onnx"))
    ops = [n.op_type for n in ran.graph.node]
    assert ops.count("MatMulIntegerToFloat") >= 2 * 6, sorted(set(ops))
    inits = {t.name: t for t in ran.graph.initializer}
    weight_dq = [
        n.name
        for n in ran.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
    ]
    assert not weight_dq, f"weights dequantized at run time: {weight_dq}"


def test_static_keeps_activation_by_activation_matmuls_fp32(exported, feeds):
    """An unfused graph (the segmented student's) keeps Q x K^T and softmax x V in fp32.

    onnxruntime's MatMulConstBOnly alone let them through (the key bias is an initializer
    upstream of K^T), quantizing the softmax probabilities to uint8.
    """
    raw = onnx.ModelProto()
    raw.CopyFrom(exported[1].model)  # not fused: attention is plain MatMul / Softmax / MatMul
    names = activation_matmuls(raw)
    layers = sum(1 for n in raw.graph.node if n.op_type == "Softmax")
    assert layers >= 1 and len(names) == 2 * layers
    q = quantize_int8(raw, QuantizeOptions(), feeds)
    producer = {o: n.op_type for n in q.graph.node for o in n.output}
    matmuls = [n for n in q.graph.node if n.op_type == "MatMul"]
    assert {n.name for n in matmuls} >= set(names)
    for n in matmuls:
        dq = [producer.get(i) == "DequantizeLinear" for i in n.input]
        assert (not any(dq)) if n.name in names else all(dq), (n.name, dq)
    fp32 = np.concatenate([_run(raw, f) for f in feeds])
    int8 = np.concatenate([_run(q, f) for f in feeds])
    assert np.corrcoef(fp32, int8)[0, 1] > 0.95


def test_smoothing_preserves_the_fp32_function_and_is_recorded(fused_static, feeds):
    """SmoothQuant moves range from activations into weights: before quantization the graph
    computes the same scores; the quantized graph keeps the residual path unsmoothed."""
    from ranker_quantize.quantize import smooth_layer_norm_outputs

    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(fused_static)
    n = smooth_layer_norm_outputs(smoothed, feeds, 0.8)
    layer_norms = sum(1 for node in fused_static.graph.node if node.op_type == "LayerNormalization")
    assert 1 <= n <= layer_norms
    muls = [node for node in smoothed.graph.node if node.op_type == "Mul" and node.name.endswith("_smooth")]
    assert len(muls) == n
    for f in feeds[:8]:
        np.testing.assert_allclose(_run(smoothed, f), _run(fused_static, f), rtol=1e-4, atol=1e-4)
    # every smoothed tensor still reaches a residual Add (or the next LayerNorm) unsmoothed
    readers = {i for node in smoothed.graph.node if node.op_type != "Mul" for i in node.input}
    assert all(m.input[0] in readers for m in muls)
    assert "smoothed into the weights (alpha 0.8)" in QuantizeOptions().method()
    assert "smoothed" not in QuantizeOptions(smooth=None).method()
    assert "smoothed" not in QuantizeOptions(activations="dynamic").method()
    with pytest.raises(InputError, match="smooth"):
        QuantizeOptions(smooth=1.5)


def _fed_by_dequantize(q):
    """``{MatMul name: whether any input comes from a DequantizeLinear}`` of a QDQ graph."""
    producer = {o: n.op_type for n in q.graph.node for o in n.output}
    return {
        n.name: any(producer.get(i) == "DequantizeLinear" for i in n.input)
        for n in q.graph.node
        if n.op_type == "MatMul"
    }


def test_ffn_output_fp32_keeps_the_gelu_readers_in_float(fused_static, feeds):
    """ffn_output="fp32": the MatMuls reading a GELU output stay float, every other weight MatMul is INT8."""
    names = ffn_output_matmuls(fused_static)
    gelus = sum(1 for n in fused_static.graph.node if n.op_type in ("BiasGelu", "FastGelu", "Gelu"))
    assert gelus >= 1 and len(names) == gelus
    default = _fed_by_dequantize(quantize_int8(fused_static, QuantizeOptions(), feeds))
    assert all(default[n] for n in names)  # the default quantizes them
    kept = _fed_by_dequantize(quantize_int8(fused_static, QuantizeOptions(ffn_output="fp32"), feeds))
    assert not any(kept[n] for n in names)
    assert all(v for name, v in kept.items() if name not in names)
    assert "FFN output MatMuls kept fp32" in QuantizeOptions(ffn_output="fp32").method()


def test_ffn_output_smooth_preserves_the_function(fused_static, feeds):
    """ffn_output="smooth" divides each GELU output before its MatMul, and that MatMul's weight
    rows carry the factor: the fp32 graph's scores do not change."""
    from ranker_quantize.quantize import GELUS, LAYER_NORMS, smooth_layer_norm_outputs

    plain, both = onnx.ModelProto(), onnx.ModelProto()
    plain.CopyFrom(fused_static)
    both.CopyFrom(fused_static)
    n_plain = smooth_layer_norm_outputs(plain, feeds, 0.8)
    n_both = smooth_layer_norm_outputs(both, feeds, 0.8, ops=LAYER_NORMS + GELUS)
    assert n_both - n_plain == len(ffn_output_matmuls(fused_static))
    for f in feeds[:8]:
        np.testing.assert_allclose(_run(both, f), _run(fused_static, f), rtol=1e-4, atol=1e-4)
    q = quantize_int8(fused_static, QuantizeOptions(ffn_output="smooth"), feeds)
    fp32 = np.concatenate([_run(fused_static, f) for f in feeds])
    int8 = np.concatenate([_run(q, f) for f in feeds])
    assert np.corrcoef(fp32, int8)[0, 1] > 0.95
    assert "GELU outputs smoothed too" in QuantizeOptions(ffn_output="smooth").method()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ffn_output": "bf16"}, "ffn_output"),
        ({"ffn_output": "smooth", "smooth": None}, "needs activations='static' and a smooth alpha"),
        ({"ffn_output": "smooth", "activations": "dynamic"}, "needs activations='static' and a smooth alpha"),
    ],
)
def test_ffn_output_rejects_what_cannot_be_built(kwargs, match):
    with pytest.raises(InputError, match=match):
        QuantizeOptions(**kwargs)
