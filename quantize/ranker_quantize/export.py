"""Step 1: a local transformers checkpoint -> an fp32 ONNX graph the SDK can run.

What comes out is the contract of ``model.onnx`` (see ``ranker_sdk.package``): inputs
``input_ids``, ``attention_mask`` and, only when the architecture takes them, ``token_type_ids``,
all int64 ``[batch, seq]`` with dynamic axes; the first output ``logits``, one float per row
(``[batch, 1]``). The graph is held in memory as an ``onnx.ModelProto`` with every weight
embedded, so nothing downstream ever sees an external-data file.

Two choices matter for what follows:

- The model is loaded with ``attn_implementation="eager"``. Recent transformers default to
  ``sdpa``, which traces to a ``scaled_dot_product_attention`` subgraph that onnxruntime's
  transformer optimizer does not recognise, so attention would stay unfused (and slow).
- The export itself is optimum's (``optimum-onnx``): its per-architecture ``OnnxConfig`` knows
  which inputs each family takes (DistilBERT and RoBERTa/XLM-R take no ``token_type_ids``) and
  which axes are dynamic.

Example:
    >>> from ranker_quantize.export import load_checkpoint, export_onnx   # doctest: +SKIP
    >>> ckpt = load_checkpoint("runs/distill/final")                       # doctest: +SKIP
    >>> graph = export_onnx(ckpt)                                          # doctest: +SKIP
    >>> graph.inputs                                                       # doctest: +SKIP
    ('input_ids', 'attention_mask', 'token_type_ids')
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ranker_sdk.errors import InputError

from .errors import ExportError

__all__ = ["Checkpoint", "ExportedGraph", "load_checkpoint", "export_onnx", "is_segmented_checkpoint", "DEFAULT_OPSET"]

log = logging.getLogger(__name__)

# Opset 17 has LayerNormalization as one op and runs on every onnxruntime the SDK accepts (>= 1.17).
DEFAULT_OPSET = 17
_RUNTIME_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded cross-encoder checkpoint: the torch model (eval mode, eager attention) and its tokenizer.

    Attributes:
        path: the checkpoint directory.
        model: a ``*ForSequenceClassification`` with exactly one output.
        tokenizer: its fast tokenizer (``PreTrainedTokenizerFast``).
        tokenizer_json: the ``tokenizers`` file that goes into the package, byte for byte
            the checkpoint's ``tokenizer.json`` when it has one.
    """

    path: Path
    model: Any
    tokenizer: Any
    tokenizer_json: bytes

    @property
    def config(self) -> Any:
        return self.model.config


@dataclass(frozen=True)
class ExportedGraph:
    """The fp32 ONNX graph with every weight embedded, and the names the runtime feeds and reads."""

    model: Any  # onnx.ModelProto
    inputs: tuple[str, ...]
    output: str
    opset: int


def load_checkpoint(model_dir: str | Path) -> Checkpoint:
    """Load a local sequence-classification checkpoint with one output, and its tokenizer.

    Nothing is fetched from a model hub: ``model_dir`` must be a directory holding
    ``config.json``, the weights and the tokenizer files (``save_pretrained`` writes them all).

    Raises:
        InputError: ``model_dir`` is not a checkpoint directory.
        ExportError: the model has a head with more or fewer than one output, the head's weights
            are missing (they would be random), or the tokenizer is not a fast tokenizer.
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise InputError(
            f"--model {path}: no config.json there; pass a local transformers checkpoint directory "
            "(the output of save_pretrained)"
        )
    if is_segmented_checkpoint(path):
        return _load_segmented(path)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path,
            attn_implementation="eager",
            output_loading_info=True,
            local_files_only=True,
            use_safetensors=True,
            dtype=torch.float32,  # never unpickle a pytorch_model.bin
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"--model {path}: transformers cannot load it as a sequence classifier: {exc}") from exc
    if info.get("missing_keys"):
        raise ExportError(
            f"--model {path}: weights missing from the checkpoint {sorted(info['missing_keys'])[:4]}: "
            "the classification head would be random. Package a trained cross-encoder (a "
            "*ForSequenceClassification checkpoint), not a bare encoder"
        )
    n = int(model.config.num_labels)
    if n != 1:
        raise ExportError(
            f"--model {path}: the head has {n} outputs; a ranker needs one score per (query, doc) pair (num_labels=1)"
        )
    model.eval()
    return _with_tokenizer(path, model)


def is_segmented_checkpoint(path: str | Path) -> bool:
    """True for a segmented student (:mod:`ranker_models.segmented`): it has the score head file.

    A path check only, so that asking imports no torch.
    """
    return (Path(path) / "score_head.safetensors").is_file()


def _with_tokenizer(path: Path, model: Any) -> Checkpoint:
    """``model`` and the checkpoint's fast tokenizer, as a :class:`Checkpoint`."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ExportError(f"--model {path}: cannot load its tokenizer: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ExportError(
            f"--model {path}: the tokenizer is not a fast (tokenizers) tokenizer; the SDK reads "
            "tokenizer.json. Save it with a PreTrainedTokenizerFast"
        )
    tok_file = path / "tokenizer.json"
    # Prefer the file as saved (byte-identical packages from the same checkpoint); fall back to
    # serialising the loaded fast tokenizer when the checkpoint only has vocab files.
    tokenizer_json = tok_file.read_bytes() if tok_file.is_file() else tokenizer.backend_tokenizer.to_str().encode()
    return Checkpoint(path=path, model=model, tokenizer=tokenizer, tokenizer_json=tokenizer_json)


def _load_segmented(path: Path) -> Checkpoint:
    """A segmented student: a BERT encoder + ``score_head.safetensors`` (see ranker_models.segmented)."""
    from ranker_models.segmented import load_segmented

    try:
        model = load_segmented(path).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"--model {path}: cannot load it as a segmented student: {exc}") from exc
    return _with_tokenizer(path, model)


def _export_segmented(ckpt: Checkpoint, opset: int) -> Any:
    """torch.onnx.export of a segmented student: the three runtime inputs, output ``logits`` [batch, 1]."""
    import onnx
    import torch

    class _Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids, attention_mask, token_type_ids).logits

    cls = ckpt.model.cls_token_id  # any in-vocabulary ids trace the same graph
    ids = torch.tensor([[cls, 5, 6, 7, 8, 6], [cls, 5, 6, 7, 6, 0]])
    args = (ids, (ids != 0).long(), torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0]]))
    names = list(_RUNTIME_INPUTS)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    with tempfile.TemporaryDirectory(prefix="ranker-export-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                _Logits(ckpt.model).eval(),
                args,
                str(out),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
        except Exception as exc:  # one boundary converts the exporter's many error types
            raise ExportError(f"exporting the segmented student to ONNX failed: {type(exc).__name__}: {exc}") from exc
        return onnx.load(str(out), load_external_data=True)


def export_onnx(ckpt: Checkpoint, *, opset: int = DEFAULT_OPSET) -> ExportedGraph:
    """Export ``ckpt`` with optimum's ONNX exporter and check the graph against the SDK contract.

    Raises:
        ExportError: optimum has no ONNX config for this architecture, or the graph's inputs or
            output are not what the runtime feeds and reads.
    """
    import onnx
    import torch
    from optimum.exporters.onnx import export
    from optimum.exporters.tasks import TasksManager

    model = ckpt.model
    if is_segmented_checkpoint(ckpt.path):
        return _check_graph(_export_segmented(ckpt, opset), opset)
    try:
        ctor = TasksManager.get_exporter_config_constructor(
            exporter="onnx", model=model, task="text-classification", library_name="transformers"
        )
    except (KeyError, ValueError) as exc:
        raise ExportError(
            f"optimum's ONNX exporter does not support model_type {model.config.model_type!r} "
            f"for text-classification: {exc}"
        ) from exc
    onnx_config = ctor(model.config)
    with tempfile.TemporaryDirectory(prefix="ranker-export-") as tmp, warnings.catch_warnings():
        # The tracer warns about Python control flow on shapes; the dynamic axes cover it.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        out = Path(tmp) / "model.onnx"
        log.info("exporting %s (%s) to ONNX, opset %d", ckpt.path, model.config.model_type, opset)
        try:
            export(model, onnx_config, out, opset=opset)
        except Exception as exc:  # the tracer and exporter raise many types; one boundary converts
            raise ExportError(
                f"exporting {model.config.model_type} to ONNX failed: {type(exc).__name__}: {exc}"
            ) from exc
        # load() pulls any external-data file the exporter wrote back into the proto.
        proto = onnx.load(str(out), load_external_data=True)
    return _check_graph(proto, opset)


def _check_graph(proto: Any, opset: int) -> ExportedGraph:
    """The exported graph, checked against the runtime's contract (inputs, one score a row)."""
    import onnx

    inputs = tuple(i.name for i in proto.graph.input)
    bad = [n for n in inputs if n not in _RUNTIME_INPUTS]
    if bad or "input_ids" not in inputs or "attention_mask" not in inputs:
        raise ExportError(
            f"the exported graph takes inputs {list(inputs)}; the runtime feeds input_ids, "
            "attention_mask and optionally token_type_ids"
        )
    for i in proto.graph.input:
        t = i.type.tensor_type
        if t.elem_type != onnx.TensorProto.INT64 or len(t.shape.dim) != 2:
            raise ExportError(f"exported input {i.name} is not int64 [batch, seq]")
    outputs = list(proto.graph.output)
    dims = outputs[0].type.tensor_type.shape.dim if outputs else []
    if not outputs or len(dims) != 2 or dims[1].dim_value != 1:
        raise ExportError("the exported graph's first output is not one score per row ([batch, 1])")
    return ExportedGraph(model=proto, inputs=inputs, output=outputs[0].name, opset=opset)
