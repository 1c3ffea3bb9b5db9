"""The onnxruntime session of a package, checked against ``ranker.json`` at load time."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .errors import PackageError, wrap_backend_errors
from .package import PackageConfig

__all__ = ["ModelSession"]


class ModelSession:
    """An onnxruntime CPU session over verified model bytes.

    ``threads`` sets intra-op parallelism (``None``: onnxruntime's default, one per core).
    Inter-op is 1 and execution sequential: a ranker call is one small graph, and callers that
    want more throughput run several calls from their own threads (``run`` is thread-safe).
    """

    def __init__(self, model_bytes: bytes, config: PackageConfig, threads: int | None = None) -> None:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = int(threads) if threads else 0
        opts.log_severity_level = 3  # onnxruntime logs to stderr itself; keep the host's stderr quiet
        try:
            self._sess = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise PackageError(f"model.onnx cannot be loaded by onnxruntime: {exc}") from exc
        inputs = {i.name: i for i in self._sess.get_inputs()}
        if set(inputs) != set(config.inputs):
            raise PackageError(
                f"model.onnx takes inputs {sorted(inputs)} but ranker.json declares "
                f"{sorted(config.inputs)}; the package is inconsistent: re-create it"
            )
        for name, info in inputs.items():
            if info.type != "tensor(int64)" or len(info.shape) != 2:
                raise PackageError(
                    f"model.onnx input {name} must be int64 [batch, seq], got {info.type} {info.shape}"
                )
        outputs = self._sess.get_outputs()
        if len(outputs) < 1:
            raise PackageError("model.onnx has no output")
        shape = outputs[0].shape
        if len(shape) > 2 or (len(shape) == 2 and isinstance(shape[1], int) and shape[1] != 1):
            raise PackageError(
                f"model.onnx output {outputs[0].name} has shape {shape}; a ranker model must return "
                "one score per row ([batch] or [batch, 1])"
            )
        self._output = outputs[0].name
        self._input_names = tuple(config.inputs)
        # Fail at load, not at the first query: a symbolic output shape can hide a model that
        # returns several values per row, so run one tiny batch now and check what comes back.
        probe = np.zeros((2, 4), dtype=np.int64)
        self.run({"input_ids": probe, "attention_mask": np.ones_like(probe), "token_type_ids": probe})

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Scores of one padded batch as float32 ``[batch]``."""
        batch = feed["input_ids"].shape[0]
        with wrap_backend_errors("running the model"):
            (out,) = self._sess.run([self._output], {k: feed[k] for k in self._input_names})
        out = np.asarray(out, dtype=np.float32)
        if out.size != batch:
            raise PackageError(
                f"model.onnx returned {out.shape} for a batch of {batch}; a ranker model must "
                "return one score per row"
            )
        return out.reshape(batch)
