"""The optimisation loop every trainer shares, on top of accelerate (never a home-made engine).

``accelerate launch`` / ``torchrun`` / a plain ``python`` run the same code: the
:class:`accelerate.Accelerator` picks the device (CUDA when present), wraps the model in DDP (or
FSDP / DeepSpeed from its config), and handles gradient accumulation and bf16 autocast.

What the loop adds:

- AdamW with linear warm-up then linear decay, the learning rate a pure function of the step;
- batches that are a pure function of ``(seed, step, micro, rank)`` (:func:`data.schedule`), and
  a torch seed re-set per step, so a resumed run continues exactly;
- checkpoints without pickle: ``checkpoint/model.safetensors`` (the trainable parameters),
  ``checkpoint/optimizer.safetensors`` (AdamW's moments) + ``optimizer.json`` (its
  hyper-parameters) and ``checkpoint/state.json`` (the step). Under FSDP / DeepSpeed the
  optimizer state is sharded and the engine's own ``Accelerator.save_state`` would pickle it, so
  a resumable checkpoint is refused there: train with ``save_every: 0`` (the final model is still
  saved as safetensors) or with DDP.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .config import ConfigError, TrainConfig

__all__ = ["make_accelerator", "train_loop", "stage_done", "mark_done"]

log = logging.getLogger(__name__)

DONE_FILE = "train_state.json"
Progress = Callable[..., Any]  # progress(total=, initial=, desc=) -> object with update(n), close()


def make_accelerator(cfg: TrainConfig):
    """An Accelerator with ``cfg``'s gradient accumulation.

    Mixed precision is not passed here: accelerate's state is process-wide and refuses a second
    Accelerator with another precision, which the recipe (several stages in one process) would
    create. ``cfg.bf16`` is applied by :func:`train_loop` as a ``torch.autocast`` region instead;
    a launcher's own ``--mixed_precision`` (FSDP / DeepSpeed configs) still applies.
    """
    import os

    from accelerate import Accelerator

    # accelerate only forms a CPU process group (gloo) when told it runs on CPUs: without this a
    # `torchrun --nproc_per_node 2` on a machine without CUDA would train 2 independent copies.
    multi_cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=multi_cpu)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_ratio * max_steps`` steps, then linear decay to 0."""
    warm = max(1, int(math.ceil(cfg.warmup_ratio * cfg.max_steps))) if cfg.warmup_ratio > 0 else 0
    if warm and step < warm:
        return cfg.lr * (step + 1) / warm
    rest = max(1, cfg.max_steps - warm)
    return cfg.lr * max(0.0, 1.0 - (step - warm) / rest)


def stage_done(out: str | Path) -> bool:
    """True when a trainer finished in ``out`` (its ``train_state.json`` says done)."""
    p = Path(out) / DONE_FILE
    if not p.is_file():
        return False
    try:
        return bool(json.loads(p.read_text(encoding="utf-8")).get("done"))
    except ValueError:
        return False


def mark_done(out: str | Path, **info: Any) -> None:
    (Path(out) / DONE_FILE).write_text(json.dumps({"done": True, **info}, indent=2) + "\n", encoding="utf-8")


def _sharded(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def _save_checkpoint(accelerator, model, optimizer, step: int, ckpt: Path, history: list[float]) -> None:
    from safetensors.torch import save_file

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if accelerator.is_main_process:
        tmp.mkdir(parents=True, exist_ok=True)
        inner = accelerator.unwrap_model(model)
        weights = {n: p.detach().cpu().contiguous() for n, p in inner.named_parameters() if p.requires_grad}
        save_file(weights, str(tmp / "model.safetensors"))
        sd = optimizer.optimizer.state_dict() if hasattr(optimizer, "optimizer") else optimizer.state_dict()
        tensors = {
            f"{i}.{k}": v.detach().cpu().contiguous().reshape(v.shape)
            for i, st in sd["state"].items()
            for k, v in st.items()
            if torch.is_tensor(v)
        }
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps({"param_groups": sd["param_groups"]}), encoding="utf-8")
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps({"step": step, "losses": history}), encoding="utf-8")
        if ckpt.exists():
            shutil.rmtree(ckpt)
        tmp.rename(ckpt)
    accelerator.wait_for_everyone()


def _load_checkpoint(accelerator, model, optimizer, ckpt: Path) -> tuple[int, list[float]]:
    from safetensors.torch import load_file

    state_json = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    step, history = int(state_json["step"]), [float(x) for x in state_json.get("losses", [])]
    inner = accelerator.unwrap_model(model)
    weights = load_file(str(ckpt / "model.safetensors"))
    missing, unexpected = inner.load_state_dict(weights, strict=False)
    trainable = {n for n, p in inner.named_parameters() if p.requires_grad}
    if unexpected or trainable - set(weights):
        raise ConfigError(
            f"{ckpt}: checkpoint does not match the model (unexpected {unexpected[:5]}, "
            f"missing {sorted(trainable - set(weights))[:5]}); delete it to start over"
        )
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    groups = json.loads((ckpt / "optimizer.json").read_text(encoding="utf-8"))["param_groups"]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        i, _, name = key.partition(".")
        state.setdefault(int(i), {})[name] = v
    inner_opt = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
    inner_opt.load_state_dict({"state": state, "param_groups": groups})
    return step, history


def train_loop(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, int, int], torch.Tensor],
    cfg: TrainConfig,
    out: str | Path,
    *,
    accelerator=None,
    progress: Progress | None = None,
    desc: str = "train",
) -> tuple[torch.nn.Module, list[float], Any]:
    """Run ``cfg.max_steps`` optimizer steps of ``loss_fn(model, step, micro)``; resume if possible.

    ``loss_fn`` builds its own micro-batch from ``(step, micro)`` and the accelerator's
    ``process_index`` / ``num_processes`` (see :func:`data.schedule`) and returns the mean loss.
    Returns ``(unwrapped model, per-step mean losses (resumed runs included), accelerator)``.
    """
    from accelerate.utils import set_seed

    accelerator = accelerator or make_accelerator(cfg)
    ckpt = Path(out) / "checkpoint"
    if _sharded(accelerator) and (cfg.save_every or (ckpt / "state.json").is_file()):
        raise ConfigError(
            "train.save_every: a resumable checkpoint under FSDP / DeepSpeed would pickle the sharded "
            "optimizer state (accelerate's save_state), and nothing here is pickled; set save_every: 0 "
            "(the final model is still saved as safetensors) or train with DDP"
        )
    set_seed(cfg.seed)
    model, optimizer = accelerator.prepare(model, _adamw(model, cfg))
    start, history = 0, []
    if (ckpt / "state.json").is_file():
        start, history = _load_checkpoint(accelerator, model, optimizer, ckpt)
        log.info("resumed from %s at step %d", ckpt, start)
    bar = progress(total=cfg.max_steps, initial=start, desc=desc) if progress and accelerator.is_main_process else None
    model.train()
    t0 = time.perf_counter()
    for step in range(start, cfg.max_steps):
        mean = _step(accelerator, model, optimizer, loss_fn, cfg, step)
        history.append(mean)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{mean:.4f}")
        if cfg.log_every and (step + 1) % cfg.log_every == 0:
            took = time.perf_counter() - t0
            log.info(
                "%s step %d/%d loss %.4f lr %.2e (%.1fs)", desc, step + 1, cfg.max_steps, mean, lr_at(cfg, step), took
            )
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.max_steps:
            _save_checkpoint(accelerator, model, optimizer, step + 1, ckpt, history)
    if bar is not None:
        bar.close()
    accelerator.wait_for_everyone()
    return accelerator.unwrap_model(model), history, accelerator


def _adamw(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; biases and norms (under 2 dimensions) get no weight decay.

    A model may name parameters that learn at their own peak rate (``model.learning_rates``:
    parameter name -> lr, e.g. newly added layers); each group keeps its rate as ``lr_scale``, a
    multiple of ``cfg.lr``, so the warm-up and decay of :func:`lr_at` apply to it too.
    """
    rates = getattr(model, "learning_rates", None) or {}
    unknown = sorted(set(rates) - {n for n, _ in model.named_parameters()})
    if unknown:
        raise ConfigError(f"learning_rates name no parameter of the model: {unknown[:5]}")
    groups: dict[tuple[bool, float], list] = {(True, cfg.lr): [], (False, cfg.lr): []}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim >= 2, float(rates.get(name, cfg.lr))), []).append(p)
    return torch.optim.AdamW(
        [
            {"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0, "lr_scale": lr / cfg.lr}
            for (decay, lr), ps in groups.items()
        ],
        lr=cfg.lr,
    )


def _step(accelerator, model, optimizer, loss_fn, cfg: TrainConfig, step: int) -> float:
    """Optimizer step ``step``: ``cfg.grad_accum`` micro-batches; returns their mean loss over every process."""
    for g in optimizer.param_groups:
        g["lr"] = lr_at(cfg, step) * g.get("lr_scale", 1.0)
    # Dropout masks depend on the step only, so a resumed run repeats them.
    torch.manual_seed(cfg.seed * 1_000_003 + step * accelerator.num_processes + accelerator.process_index)
    total = 0.0
    for micro in range(cfg.grad_accum):
        with accelerator.accumulate(model):
            with torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = loss_fn(model, step, micro)
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        total += float(loss.detach())
    return float(accelerator.reduce(torch.tensor(total / cfg.grad_accum, device=accelerator.device), "mean"))


def finish(accelerator, out: str | Path, history: list[float], **info: Any) -> None:
    """After the stage saved its model: drop the resumable checkpoint and write ``train_state.json``."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        ckpt = Path(out) / "checkpoint"
        if ckpt.exists():
            shutil.rmtree(ckpt)
        mark_done(out, losses=history, num_processes=accelerator.num_processes, **info)
    accelerator.wait_for_everyone()
