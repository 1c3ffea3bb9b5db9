"""Step 2: fuse the exported graph with onnxruntime's transformer optimizer.

``onnxruntime.transformers.optimizer`` rewrites the traced BERT-family subgraphs into single
contrib ops that onnxruntime's CPU kernels run much faster:

- ``Attention``: Q/K/V projections, the scaled dot-product, mask and softmax in one op (its
  packed QKV weight is also what INT8 quantizes as one ``QAttention``);
- ``EmbedLayerNormalization``: word + position + token-type embeddings and their LayerNorm;
- ``BiasGelu``: bias add + exact GELU.

Not fused: the residual add + LayerNorm (``SkipLayerNormalization``). onnxruntime's CPU kernel for
it is slower than a plain ``Add`` + ``LayerNormalization`` (``python -m lab.benchmarks.profile_ops``
shows each op's share; docs/speed.md). The runtime also keeps onnxruntime from fusing it back at
load (:mod:`ranker_sdk.session`). ``fuse_skip_layer_norm=True`` restores it, to compare.

Every encoder family we package (BERT, MiniLM, ELECTRA, DistilBERT, RoBERTa/XLM-R) uses the
``bert`` fusion rules. Attention fusion only matches the graph of *eager* attention, which is
why :mod:`.export` loads the model with ``attn_implementation="eager"``.

Two fusions are optional, for what INT8 needs (:meth:`.quantize.QuantizeOptions.fusion`):

- ``separate_qkv=True`` fuses attention as ``MultiHeadAttention`` fed by three plain Q, K, V
  MatMuls instead of one ``Attention`` op with a packed QKV weight: onnxruntime's static
  quantizer can quantize MatMuls but has no rule for ``Attention``.
- ``fuse_embeddings=False`` leaves the word-embedding ``Gather`` visible, so its table can be
  stored int8 row by row (:func:`.quantize.int8_embedding_rows`).

After quantization, :func:`drop_padding_mask` takes the padding mask off the
``MultiHeadAttention`` nodes of a static INT8 graph (``ranker.json`` ``batching: "exact"``): with
no mask, onnxruntime runs its CPU flash-attention kernel, and the runtime then batches only rows
of one length, so the mask was never needed, and the two paths give the same scores up to float
rounding (``python -m lab.benchmarks.ceiling`` times and compares them).

``opt_level=0`` runs the Python fusions only. Higher levels would first run onnxruntime's own
graph optimizer, whose level-2 output is specialised to the machine it ran on; the runtime
applies those optimizations itself when it loads the package, on the user's machine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["OptimizedGraph", "optimize_onnx", "drop_padding_mask"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptimizedGraph:
    """The fused graph and how many of each fused op the optimizer created (only counts > 0)."""

    model: Any  # onnx.ModelProto
    fused_ops: dict[str, int]


def optimize_onnx(
    model: Any,
    *,
    num_heads: int,
    hidden_size: int,
    separate_qkv: bool = False,
    fuse_embeddings: bool = True,
    fuse_skip_layer_norm: bool = False,
) -> OptimizedGraph:
    """Fuse attention, LayerNorm and GELU subgraphs of an exported BERT-family graph.

    Args:
        model: the ``onnx.ModelProto`` from :func:`ranker_quantize.export.export_onnx` (not modified).
        num_heads, hidden_size: from the model config; given explicitly because detecting them
            from the graph fails on some families (DistilBERT).
        separate_qkv: fuse attention as ``MultiHeadAttention`` after separate Q, K, V MatMuls
            (for static INT8) instead of ``Attention`` with a packed QKV weight.
        fuse_embeddings: fuse the embeddings into ``EmbedLayerNormalization`` (False keeps the
            word ``Gather``, for per-row INT8 embeddings).
        fuse_skip_layer_norm: fuse residual add + LayerNorm into ``SkipLayerNormalization``
            (off: slower on onnxruntime's CPU kernels, see the module docstring).

    A graph whose attention did not fuse still works, only slower; that is logged as a warning
    and visible in the package's ``quantization.fused_ops``.
    """
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.use_multi_head_attention = separate_qkv
    options.enable_embed_layer_norm = fuse_embeddings
    options.enable_skip_layer_norm = fuse_skip_layer_norm
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    opt = optimize_model(
        copy,
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        optimization_options=options,
        opt_level=0,
        use_gpu=False,
    )
    stats = {k: int(v) for k, v in sorted(opt.get_fused_operator_statistics().items()) if v}
    if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
        log.warning("attention did not fuse (fused ops: %s); the model will run, but slower", stats)
    else:
        log.info("fused ops: %s", stats)
    fused = opt.model
    # The fused ops live in onnxruntime's contrib domain; the graph must import it (the
    # optimizer's own save_model_to_file adds this; we keep the proto in memory instead).
    if any(n.domain == "com.microsoft" for n in fused.graph.node) and not any(
        o.domain == "com.microsoft" for o in fused.opset_import
    ):
        fused.opset_import.add(domain="com.microsoft", version=1)
    return OptimizedGraph(model=fused, fused_ops=stats)


def drop_padding_mask(model: Any) -> int:
    """Remove the padding-mask input of every ``MultiHeadAttention`` node of ``model``, in place.

    Returns how many nodes lost their mask (0: nothing to do; the graph is unchanged). The
    ``attention_mask`` graph input stays (the runtime still feeds it; the nodes that summed it
    into the mask are left for onnxruntime to drop). Only valid for a package whose runtime
    never pads (``PackageConfig.batching == "exact"``): a padded row would attend to its padding.
    """
    dropped = 0
    for node in model.graph.node:
        # inputs: query, key, value, bias, key_padding_mask, (attention_bias, past...)
        if node.op_type == "MultiHeadAttention" and len(node.input) == 5 and node.input[4]:
            del node.input[4]
            dropped += 1
    return dropped
