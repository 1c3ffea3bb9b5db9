"""The onnxruntime session of a package, checked against ``ranker.json`` at load time.

Two process-wide choices are made here, because this is the one module that imports onnxruntime:

- **No telemetry.** onnxruntime's Linux/Windows builds start a telemetry client when they are
  imported: it writes a device id and an event database under ``~/.cache/Microsoft/`` and a
  session file in ``$TMPDIR``, and resolves a telemetry host. A library embedded in someone
  else's search service (or C program) must not write to the user's home or phone home by
  default, so ``ORT_DISABLE_TELEMETRY=1`` is set before the import. It is a default, not an
  override: a host that wants onnxruntime's telemetry sets ``ORT_DISABLE_TELEMETRY=0`` in the
  environment before importing ranker_sdk (or imports onnxruntime first).
- **Quiet stderr.** onnxruntime logs failed runs to stderr itself, in colour, even when the
  exception is raised to the caller. Sessions here log at FATAL only; the SDK reports every
  failure as a :class:`~ranker_sdk.RankerError` instead.
"""

from __future__ import annotations

import os
from pathlib import Path

# Must run before `import onnxruntime` (the telemetry client starts at import). setdefault: the
# host's own setting wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from .errors import InternalError, PackageError, wrap_backend_errors  # noqa: E402
from .package import PackageConfig  # noqa: E402

__all__ = ["ModelSession", "session_options"]

_FATAL_ONLY = 4  # onnxruntime severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The onnxruntime options every package session gets (benchmarks profile with these too).

    ``threads``: intra-op threads (None: onnxruntime's default, one per core).
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No memory pattern: onnxruntime plans one block per input shape it has seen and keeps it,
    # and batches here come in many padded shapes, so the kept blocks only add to the peak RSS
    # without saving CPU time (docs/speed.md).
    opts.enable_mem_pattern = False
    # Residual add + LayerNorm stay two ops: onnxruntime's fused SkipLayerNormalization CPU
    # kernel is slower than the two it replaces (docs/speed.md). ranker_quantize.optimize does not
    # fuse them offline; this stops onnxruntime from fusing them at load. Only that name: with
    # "BiasSkipLayerNormFusion" also in the list, onnxruntime fuses them anyway.
    opts.add_session_config_entry("optimization.disable_specified_optimizers", "SkipLayerNormFusion")
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = int(threads) if threads else 0
    opts.log_severity_level = _FATAL_ONLY
    return opts


class ModelSession:
    """An onnxruntime CPU session over a verified model, proven to work before it is returned.

    ``model`` is the verified bytes, or the path of a file already verified (and to be checked
    again by the caller once this returns: :func:`ranker_sdk.package.recheck_file`). From a path,
    onnxruntime reads the file itself and nothing keeps a second copy of the model in memory;
    onnxruntime's Python session holds on to bytes it was given for as long as it lives.

    ``threads`` sets intra-op parallelism (``None``: onnxruntime's default, one per core).
    Inter-op is 1 and execution sequential: a ranker call is one small graph, and callers that
    want more throughput run several calls from their own threads (``run`` is thread-safe).

    ``probe`` is one padded batch (see :meth:`ranker_sdk.tokenize.PairEncoder.probe_batch`)
    whose widest row is ``max_length`` tokens. It runs once here, so a package that would fail on
    its first real query fails at load instead, as a :class:`PackageError`: a model whose
    position table is shorter than ``max_length``, a pad or token id outside its vocabulary,
    several outputs per row, or non-finite (NaN/inf) scores.
    """

    def __init__(
        self,
        model: bytes | Path,
        config: PackageConfig,
        threads: int | None = None,
        *,
        probe: dict[str, np.ndarray],
    ) -> None:
        opts = session_options(threads)
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = _FATAL_ONLY
        try:
            source = str(model) if isinstance(model, Path) else model
            self._sess = ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
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
                raise PackageError(f"model.onnx input {name} must be int64 [batch, seq], got {info.type} {info.shape}")
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
        self._check(probe, config)

    def _check(self, probe: dict[str, np.ndarray], config: PackageConfig) -> None:
        """Run the probe batch; any failure means the package, not the caller, is at fault."""
        width = probe["input_ids"].shape[1]
        try:
            scores = self.run(probe)
        except InternalError as exc:
            raise PackageError(
                f"model.onnx fails on a {width}-token probe batch (ranker.json max_length "
                f"{config.max_length}): {exc.__cause__ or exc}. Is max_length within the model's "
                "position limit, and pad_token_id within its vocabulary? Re-create the package"
            ) from exc
        if not np.isfinite(scores).all():
            raise PackageError(
                f"model.onnx returns non-finite scores {scores.tolist()} on a {width}-token probe "
                "batch; the weights are corrupt or the export is broken: re-create the package"
            )

    def run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Scores of one padded batch as float32 ``[batch]``.

        Raises:
            PackageError: the model returned other than one value per row.
            InternalError: onnxruntime failed on this batch.
        """
        batch = feed["input_ids"].shape[0]
        with wrap_backend_errors("running the model"):
            (out,) = self._sess.run([self._output], {k: feed[k] for k in self._input_names}, self._run_options)
        out = np.asarray(out, dtype=np.float32)
        if out.size != batch:
            raise PackageError(
                f"model.onnx returned {out.shape} for a batch of {batch}; a ranker model must return one score per row"
            )
        return out.reshape(batch)
