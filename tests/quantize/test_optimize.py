"""optimize.py: the fused graph computes what the exported graph computes, faster ops."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from ranker_quantize.export import export_onnx, load_checkpoint
from ranker_quantize.optimize import optimize_onnx


def _run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)[0]


def test_fuses_bert_and_keeps_outputs(tiny_bert_dir):
    ckpt = load_checkpoint(tiny_bert_dir)
    graph = export_onnx(ckpt)
    before = graph.model.SerializeToString()
    opt = optimize_onnx(graph.model, num_heads=2, hidden_size=32)
    assert graph.model.SerializeToString() == before, "the input graph must not be modified"
    # residual add + LayerNorm stays unfused by default (onnxruntime's CPU SkipLayerNormalization is slow)
    assert {k: v for k, v in opt.fused_ops.items() if k != "LayerNormalization"} == {
        "Attention": 2,
        "BiasGelu": 2,
        "EmbedLayerNormalization": 1,
    }
    assert not any(n.op_type == "SkipLayerNormalization" for n in opt.model.graph.node)
    skip = optimize_onnx(graph.model, num_heads=2, hidden_size=32, fuse_skip_layer_norm=True)
    assert skip.fused_ops["SkipLayerNormalization"] == 4
    assert any(o.domain == "com.microsoft" for o in opt.model.opset_import)

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, size=(3, 17), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0  # a padded row: the fused Attention must honour the mask
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    want, got = _run(graph.model, feed), _run(opt.model, feed)
    assert np.ptp(want) > 0.1
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_run(skip.model, feed), want, atol=1e-5, rtol=0)
