"""Weight-space interpolation of a fine-tuned student with its starting point (WiSE-FT).

Fine-tuning a pretrained encoder on a few hundred queries teaches it the training collections and
costs it some of what it knew: the all-MiniLM-L6-v2 bi-encoder ranks TREC DL21 better as it ships
than after distillation, while distillation lifts trec-rag24 and wikiqa (docs/results.md).
Wortsman et al., "Robust fine-tuning of zero-shot models" (CVPR 2022, WiSE-FT) keep both by
averaging the weights, not the scores::

    theta = (1 - alpha) * theta_start + alpha * theta_tuned        (alpha = 1: the tuned model)

one model, no extra inference cost. It works because the tuned weights stay close to the start
(a small fraction of the weights' mean magnitude), in one basin where a straight line between them
does not cross a barrier.

Only the encoder is interpolated. A segmented student's score head (``w * cos + b``) stays the
tuned one's: it scales the scores, it does not rank, and the starting head is a placeholder.
Its interaction blocks, if it has any, are the tuned ones with each gate times ``alpha``: the
start is the same model with every gate closed (0), so that is the same straight line.
The start is the student's own ``base_model`` (from ``ranker_student.json``) taken as a segmented
student, or any checkpoint with exactly the same tensors (``base=``). A cross-encoder student's
head starts random, so there it needs an explicit ``base``.

Example:
    >>> interpolate("runs/gpu/students/seg_hybrid_lw2", 0.7, "runs/gpu/students/seg_wise07")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["interpolate", "check_alpha", "MERGE_FILE"]

MERGE_FILE = "merge.json"
WEIGHTS = "model.safetensors"


def check_alpha(alpha: object) -> None:
    """Raise :class:`ConfigError` unless ``alpha`` is a number in (0, 1] (1 keeps the tuned model)."""
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) <= 1.0:
        raise ConfigError(f"alpha must be in (0, 1] (1 keeps the tuned model), got {alpha!r}")


def interpolate(tuned: str | Path, alpha: float, out: str | Path, *, base: str | Path | None = None) -> Path:
    """Write ``(1 - alpha) * base + alpha * tuned`` (encoder weights) to ``out``; returns ``out``.

    ``out`` gets the tuned checkpoint's other files (tokenizer, configs, score head, its
    ``ranker_student.json`` and ``train_config.json``) and a ``merge.json`` saying how it was made.

    Raises:
        ConfigError: ``alpha`` outside (0, 1]; ``out`` exists; a checkpoint without
            ``model.safetensors``; tensors that differ in name or shape; no ``base`` for a
            student that is not segmented.
    """
    import numpy as np
    from ranker_models.segmented import INTERACTION_FILE, is_segmented
    from safetensors.numpy import load_file, save_file

    from .config import local_model_dir

    check_alpha(alpha)
    tuned, out = Path(local_model_dir(str(tuned), "tuned student")), Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists; interpolation writes a new checkpoint folder")
    if not (tuned / WEIGHTS).is_file():
        raise ConfigError(f"{tuned}: no {WEIGHTS}; pass a student folder that distillation wrote")
    with tempfile.TemporaryDirectory() as tmp:
        start, base_name = _start(tuned, base, Path(tmp))
        a, b = load_file(str(start / WEIGHTS)), load_file(str(tuned / WEIGHTS))
        if set(a) != set(b) or any(a[k].shape != b[k].shape for k in b):
            diff = sorted(set(a) ^ set(b)) or [k for k in b if a[k].shape != b[k].shape]
            raise ConfigError(f"{start} and {tuned} are not the same architecture (tensors {diff[:5]} differ)")
        merged = {
            k: (b[k] if not np.issubdtype(b[k].dtype, np.floating) else (1 - alpha) * a[k] + alpha * b[k]).astype(
                b[k].dtype
            )
            for k in b
        }
    record = {"method": "WiSE-FT weight interpolation", "alpha": float(alpha), "base": base_name, "tuned": str(tuned)}
    if not is_segmented(tuned):
        record["note"] = "cross-encoder: the classification head is interpolated with the base's too"
    # Written beside ``out`` and renamed into place: an interrupted merge leaves no ``out`` that a
    # rerun would refuse, and no half-written checkpoint that looks finished.
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    partial.chmod(0o755)  # mkdtemp's 0700 would follow the folder into place
    try:
        shutil.copytree(tuned, partial, dirs_exist_ok=True)
        save_file(merged, str(partial / WEIGHTS), metadata={"format": "pt"})
        if (partial / INTERACTION_FILE).is_file():
            blocks = load_file(str(partial / INTERACTION_FILE))
            blocks = {k: (v * alpha).astype(v.dtype) if k.endswith("gate") else v for k, v in blocks.items()}
            save_file(blocks, str(partial / INTERACTION_FILE))
            record["interaction_gates"] = f"the tuned gates times {alpha}"
        (partial / MERGE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def _start(tuned: Path, base: str | Path | None, tmp: Path) -> tuple[Path, str]:
    """The checkpoint folder of the starting weights, and how to name it in ``merge.json``."""
    from ranker_models.segmented import is_segmented, load_segmented, save_segmented

    from .config import local_model_dir

    if base is not None:
        path = Path(local_model_dir(str(base), "base"))
        if not (path / WEIGHTS).is_file():
            raise ConfigError(f"{path}: no {WEIGHTS}; the base must be a checkpoint folder")
        return path, str(base)
    if not is_segmented(tuned):
        raise ConfigError(
            f"{tuned} is a cross-encoder: its head started random, so there is no starting model to return to; pass the checkpoint to merge with as base= (--base on the command line)"
        )
    meta_path = tuned / "ranker_student.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    ref = meta.get("base_model")
    if not ref:
        raise ConfigError(
            f"{meta_path} names no base_model; pass the checkpoint the student started from as base= (--base on the command line)"
        )
    save_segmented(
        load_segmented(local_model_dir(str(ref), "base_model")), tmp
    )  # the encoder as it ships, under the student's tensor names
    return tmp, str(ref)
