"""How much faster one package's graph could run in onnxruntime: variants of its model calls.

    python -m lab.benchmarks.ceiling --package PKG [--model HF_DIR] [--repeats 5] [--data DIR --split S]

Times only the model calls (onnxruntime ``run``, 1 thread, the runtime's own session options) on
the shared workload (1 query x 100 trec-rag24 dev passages, encoded as the SDK encodes them; or
the first 100 candidates of ``--data``/``--split``), each variant in this process, alternating
rounds, and prints each variant's speed against the first and the Spearman of its 100 scores
against the first's. For a cross-encoder package built with ``ranker package --set padded_batches=true``
(fused ``MultiHeadAttention`` that still has its padding mask):

- ``sdk batches``: the package as the SDK runs it (length-sorted batches of up to 512 tokens);
- ``one row a call``: every pair alone (nothing padded);
- ``no mask, one row a call``: the ``MultiHeadAttention`` nodes without their padding-mask input,
  which lets onnxruntime take its CPU flash-attention path; valid only with nothing padded;
- ``no mask, exact-length batches``: the same graph in calls of rows of one length (what a
  package with ``batching: "exact"``, the ``ranker package`` default, runs);
- ``+ GELU approximation``: the same with onnxruntime's tanh GELU
  (``optimization.enable_gelu_approximation``): not exact, see the Spearman;
- ``MatMulNBits 8-bit`` (with ``--model``): the checkpoint's fp32 graph with every weight MatMul
  as onnxruntime's block-quantized ``MatMulNBits`` (bits 8, block 32, accuracy level 4: int8
  compute, activations quantized per row inside the kernel, so batch-independent by design).

A diagnosis for choosing what to build, not a product figure: the speed a user sees is
``lab/benchmarks/bench_rank.py``'s (tokenization and batching included).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from ranker_eval.metrics import spearman

from lab.benchmarks.workload import load_workload


def _without_mask(model_bytes: bytes) -> bytes:
    import onnx

    m = onnx.load_from_string(model_bytes)
    hit = 0
    for n in m.graph.node:
        if n.op_type == "MultiHeadAttention" and len(n.input) > 4:
            del n.input[4:]
            hit += 1
    if not hit:
        sys.exit("error: no MultiHeadAttention with a mask input: this variant needs a cross-encoder package")
    return m.SerializeToString()


def _nbits(model_dir: str, block: int = 32) -> bytes:
    from onnx import helper, numpy_helper
    from ranker_quantize.export import export_onnx, load_checkpoint
    from ranker_quantize.optimize import optimize_onnx
    from ranker_quantize.quantize import QuantizeOptions

    ckpt = load_checkpoint(model_dir)
    cfg = ckpt.config
    m = optimize_onnx(
        export_onnx(ckpt).model,
        num_heads=cfg.num_attention_heads,
        hidden_size=cfg.hidden_size,
        **QuantizeOptions().fusion(),
    ).model
    inits = {t.name: t for t in m.graph.initializer}
    nodes = []
    for node in m.graph.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if w is None or len(w.dims) != 2 or w.dims[0] % block:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(w).astype(np.float32)  # [K, N]
        k, n = weight.shape
        blocks = weight.T.reshape(n, k // block, block)
        scale = np.abs(blocks).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        codes = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)  # zero point 128
        name = node.input[1]
        del inits[name]
        inits[name + "_q"] = numpy_helper.from_array(codes, name + "_q")
        inits[name + "_s"] = numpy_helper.from_array(scale.astype(np.float32).reshape(-1), name + "_s")
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], name + "_q", name + "_s"],
                list(node.output),
                name=node.name + "_nbits",
                domain="com.microsoft",
                K=k,
                N=n,
                bits=8,
                block_size=block,
                accuracy_level=4,
            )
        )
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits.values())
    return m.SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True, help="a cross-encoder package (fused MultiHeadAttention)")
    ap.add_argument("--model", default=None, help="its checkpoint, for the MatMulNBits variant")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--data", default=None, help="another BEIR folder's first 100 candidates (default: the shared workload)"
    )
    ap.add_argument("--split", default="dev")
    args = ap.parse_args()

    import onnxruntime as ort
    from ranker_sdk import Ranker
    from ranker_sdk.ranker import batch_rows
    from ranker_sdk.session import session_options
    from ranker_sdk.tokenize import PairEncoder, doc_text

    cfg = Ranker.load(args.package, threads=1).config
    if cfg.batching != "padded":
        sys.exit("error: --package must keep its padding mask (build it with ranker package --set padded_batches=true)")
    w = (
        load_workload(args.data, args.split, title_separator=cfg.title_separator)
        if args.data
        else load_workload(title_separator=cfg.title_separator)
    )
    enc = PairEncoder((Path(args.package) / "tokenizer.json").read_bytes(), cfg).encode(
        w.query, [doc_text(d, cfg.title_separator) for d in w.docs]
    )
    n = len(w.docs)
    # the SDK's batching at its defaults (Ranker.load: batch_size=32, max_batch_tokens=512)
    sdk_batches = batch_rows(enc.lengths(), batch_size=32, max_batch_tokens=512)
    alone = [[i] for i in range(n)]
    model = (Path(args.package) / "model.onnx").read_bytes()
    variants = [
        ("sdk batches", model, sdk_batches, {}),
        ("one row a call", model, alone, {}),
        ("no mask, one row a call", _without_mask(model), alone, {}),
        (
            "no mask, exact-length batches",
            _without_mask(model),
            batch_rows(enc.lengths(), batch_size=32, max_batch_tokens=512, exact=True),
            {},
        ),
        ("+ GELU approximation", _without_mask(model), alone, {"optimization.enable_gelu_approximation": "1"}),
    ]
    if args.model:
        variants.append(("MatMulNBits 8-bit, sdk batches", _nbits(args.model), sdk_batches, {}))

    runs = []
    for name, graph, batches, entries in variants:
        so = session_options(threads=1)
        for k, v in entries.items():
            so.add_session_config_entry(k, v)
        sess = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        feeds = [enc.batch(b, cfg.pad_token_id) for b in batches]

        def call(sess=sess, names=names, feeds=feeds, batches=batches) -> np.ndarray:
            out = np.empty(n, dtype=np.float64)
            for b, f in zip(batches, feeds):
                out[b] = sess.run(None, {k: f[k] for k in names})[0].reshape(-1)
            return out

        runs.append({"name": name, "call": call, "scores": call(), "times": []})
    for _ in range(args.repeats):  # alternating rounds: drift on a shared machine hits every variant alike
        for r in runs:
            t = time.perf_counter()
            r["call"]()
            r["times"].append(time.perf_counter() - t)
    base = runs[0]
    t0 = float(np.median(base["times"]))
    where = f"{Path(args.data).name} {args.split}" if args.data else "trec-rag24 dev"
    print(f"model calls only, 1 thread, {n} {where} passages, median of {args.repeats} rounds")
    print(f"{'variant':<34} {'docs/s':>8} {'speed':>7} {'Spearman':>9}")
    for r in runs:
        t = float(np.median(r["times"]))
        rho = spearman(r["scores"], base["scores"])
        print(f"{r['name']:<34} {n / t:>8.1f} {t0 / t:>6.3f}x {rho:>9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
