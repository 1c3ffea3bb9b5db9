"""What INT8 costs a trained student on dev, by what is quantized: every MatMul + embeddings (the
default), embeddings kept fp32 (``--fp32-embeddings``), FFN output kept fp32, both.

    python benchmarks/int8_variants.py --model runs/default/students/hybrid

Prints wikiqa dev MAP (the 126 answered questions), trec-rag24 dev nDCG@10 and the model size of
each variant, fp32 first, all through the SDK's Ranker (2 threads).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from ranker_quantize.export import load_checkpoint, export_onnx
from ranker_quantize.optimize import optimize_onnx
from ranker_quantize.package import write_package
from ranker_quantize.pipeline import PackageOptions, _package_config
from ranker_sdk import Ranker
from ranker_sdk.beir import load_groups
from ranker_sdk.metrics import average_precision, ndcg_at_k
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", required=True, help="a student checkpoint folder")
args = ap.parse_args()
ck = load_checkpoint(args.model)
ex = export_onnx(ck)
opt = optimize_onnx(ex.model, num_heads=ck.config.num_attention_heads, hidden_size=ck.config.hidden_size)
config = _package_config(ck, ex.inputs, PackageOptions())  # the settings `ranker package` would write
D = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
wq = [g for g in load_groups(D/'wikiqa','dev') if any(g.labels)]
tq = load_groups(D/'trec-rag24','dev')
def evalm(model_bytes, name):
    with tempfile.TemporaryDirectory() as t:
        p = write_package(Path(t)/'p', {'model.onnx': model_bytes, 'tokenizer.json': ck.tokenizer_json}, config)
        r = Ranker.load(p, threads=2)
        m = np.mean([average_precision(r.score(g.query, list(g.docs)), [y or 0 for y in g.labels]) for g in wq])
        n = np.mean([ndcg_at_k(r.score(g.query, list(g.docs)), [y or 0 for y in g.labels], 10) for g in tq])
    print(f'{name:40s} wikiqa MAP {m:.4f}  trec nDCG@10 {n:.4f}  size {len(model_bytes)/2**20:.1f} MiB', flush=True)
fp32 = opt.model.SerializeToString()
evalm(fp32, 'fp32')
def q(name, exclude=(), ops=("MatMul", "Attention", "EmbedLayerNormalization", "Gather"), per_channel=True):
    with tempfile.TemporaryDirectory() as t:
        src, dst = Path(t)/'a.onnx', Path(t)/'b.onnx'
        onnx.save_model(opt.model, str(src))
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel, op_types_to_quantize=list(ops),
                         nodes_to_exclude=list(exclude),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True})
        evalm(dst.read_bytes(), name)
names = [n.name for n in opt.model.graph.node]
ffn_out = [n for n in names if '/output/dense/MatMul' in n and 'attention' not in n]
print(ffn_out[:2], len(ffn_out))
q('int8 default')
q('int8 keep embeddings fp32', ops=("MatMul", "Attention"))
q('int8 keep FFN output fp32', exclude=ffn_out)
q('int8 keep FFN output + emb fp32', exclude=ffn_out, ops=("MatMul", "Attention"))
