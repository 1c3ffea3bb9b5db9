"""The LLM teacher: a causal-LM backbone (LoRA or full fine-tuning) and a linear score head.

``score(query, doc) = w . h_L[last real token] + b`` where ``h_L`` is the backbone's final
hidden state (after its last norm) and the last real token is always the explicit end token
(:mod:`ranker_training.prompt`). Works with any local HF causal LM that ``AutoModel`` loads
(Llama, Qwen2, Gemma, SmolLM, ...), GGUF files included (``gguf_file=``, dequantised to fp32).

Padding never changes a score:

- the final token is found from the attention mask (the last position where it is 1), so left
  and right padding pick the same token;
- ``position_ids`` are computed from the mask (``cumsum - 1``), so a left-padded row's first real
  token is still at position 0 (HF would otherwise number the pads);
- the pad id itself is irrelevant (masked), so the end token's id is used when the tokenizer has
  no pad token.

Build vs load: :meth:`Teacher.build` starts training from a base (or CPT) checkpoint and adds
LoRA; :meth:`Teacher.load` reads a trained teacher folder written by :meth:`Teacher.save`
(backbone with LoRA merged, ``model.safetensors``; ``head.safetensors``; tokenizer;
``teacher.json``). No pickle.

Example:
    >>> t = Teacher.load("runs/default/teacher")                                    # doctest: +SKIP
    >>> t.score_pairs([("what is bm25", {"title": "Okapi BM25", "text": "BM25 ..."})])  # doctest: +SKIP
    array([3.1], dtype=float32)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ranker_sdk.encoding import pad_token_id
from torch import nn

from .config import ConfigError, TeacherConfig, hf_load_kwargs, local_model_dir, save_config
from .prompt import PromptEncoder

__all__ = ["Teacher", "collate", "rank_batch", "train_teacher"]

log = logging.getLogger(__name__)
META = "teacher.json"


def collate(rows: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad token-id rows to the longest; ``side`` is "right" or "left" (scores do not depend on it)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r)
        sl = slice(0, n) if side == "right" else slice(width - n, width)
        ids[i, sl] = torch.tensor(list(r), dtype=torch.long)
        mask[i, sl] = 1
    return {"input_ids": ids, "attention_mask": mask}


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of the mask (works for left and right padding)."""
    pos = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * (pos + 1)).argmax(dim=1)


class Teacher(nn.Module):
    """Backbone + ``nn.Linear(hidden, 1)`` on the final token; ``forward`` returns one score per row."""

    def __init__(self, backbone: nn.Module, head: nn.Linear, tokenizer, encoder: PromptEncoder, meta: dict) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.meta = meta
        self.pad_id = pad_token_id(tokenizer.pad_token_id, encoder.end_id)

    # ------------------------------------------------------------------ building and loading
    @classmethod
    def build(cls, cfg: TeacherConfig) -> "Teacher":
        """A trainable teacher from ``cfg.model`` (+ ``cfg.gguf_file``): LoRA adapters unless disabled."""
        from transformers import AutoModel, AutoTokenizer

        if not cfg.model:
            raise ConfigError("teacher: set model (a local HF checkpoint dir, or pkg:NAME with gguf_file)")
        path = local_model_dir(cfg.model, "teacher model")
        tokenizer = AutoTokenizer.from_pretrained(path, **hf_load_kwargs(cfg.gguf_file, weights=False))
        backbone = AutoModel.from_pretrained(
            path, dtype=torch.float32, attn_implementation=cfg.attn_implementation, **hf_load_kwargs(cfg.gguf_file)
        )
        if cfg.lora.enabled:
            from peft import LoraConfig, get_peft_model

            targets = list(cfg.lora.target_modules)
            lcfg = LoraConfig(
                r=cfg.lora.r,
                lora_alpha=cfg.lora.alpha,
                lora_dropout=cfg.lora.dropout,
                target_modules=targets[0] if targets == ["all-linear"] else targets,
            )
            backbone = get_peft_model(backbone, lcfg)
        hidden = backbone.config.hidden_size
        head = nn.Linear(hidden, 1)
        nn.init.normal_(head.weight, std=hidden**-0.5)
        nn.init.zeros_(head.bias)
        encoder = PromptEncoder(tokenizer, cfg.prompt, cfg.end_token, cfg.max_length, cfg.query_max_tokens)
        meta = {
            "base_model": cfg.model,
            "gguf_file": cfg.gguf_file,
            "prompt": cfg.prompt,
            "end_token": cfg.end_token,
            "end_token_id": encoder.end_id,
            "max_length": cfg.max_length,
            "query_max_tokens": cfg.query_max_tokens,
            "hidden_size": hidden,
        }
        return cls(backbone, head, tokenizer, encoder, meta)

    @classmethod
    def load(cls, path: str | Path, *, attn_implementation: str = "sdpa") -> "Teacher":
        """A trained teacher folder written by :meth:`save` (in eval mode, fp32, on the CPU)."""
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        meta_path = path / META
        if not meta_path.is_file():
            raise ConfigError(
                f"{path} is not a teacher folder: {META} is missing (train one with `ranker train teacher`)"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tokenizer = AutoTokenizer.from_pretrained(path, **hf_load_kwargs(weights=False))
        backbone = AutoModel.from_pretrained(
            path, dtype=torch.float32, attn_implementation=attn_implementation, **hf_load_kwargs()
        )
        head = nn.Linear(int(meta["hidden_size"]), 1)
        head.load_state_dict(load_file(str(path / "head.safetensors")))
        encoder = PromptEncoder(
            tokenizer, meta["prompt"], meta["end_token"], int(meta["max_length"]), int(meta["query_max_tokens"])
        )
        return cls(backbone, head, tokenizer, encoder, meta).eval()

    def save(self, path: str | Path) -> None:
        """Write backbone (LoRA merged into the weights, in place), head, tokenizer and ``teacher.json``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if hasattr(self.backbone, "merge_and_unload"):
            self.backbone = self.backbone.merge_and_unload()
        self.backbone.save_pretrained(path, safe_serialization=True)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
            str(path / "head.safetensors"),
        )
        self.tokenizer.save_pretrained(path)
        (path / META).write_text(json.dumps(self.meta, indent=2) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------ scoring
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores ``[B]`` of padded rows (either padding side)."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        )
        hidden = out.last_hidden_state
        last = last_token_index(attention_mask)
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(h.to(self.head.weight.dtype)).squeeze(-1)

    def encode(self, query: str, doc: Any) -> list[int]:
        """Token ids of one pair (template, truncated fields, end token)."""
        return self.encoder.encode(query, doc)

    @torch.no_grad()
    def score_pairs(
        self,
        pairs: Sequence[tuple[str, Any]],
        *,
        batch_size: int = 32,
        bf16: bool = False,
        device: str | torch.device | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Scores of ``(query, doc)`` pairs as float32, in input order (batched, sorted by length)."""
        self.eval()
        device = torch.device(device) if device else next(self.parameters()).device
        rows = [self.encode(q, d) for q, d in pairs]
        order = np.argsort([len(r) for r in rows], kind="stable")
        out = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), batch_size):
            idx = order[s : s + batch_size]
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in idx], self.pad_id).items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                sc = self(**batch)
            out[idx] = sc.float().cpu().numpy()
            if on_batch:
                on_batch(len(idx))
        return out


def rank_batch(
    teacher: Teacher, groups, cfg: TeacherConfig, step: int, micro: int, rank: int, world: int, cache: dict
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One micro-batch: padded token rows, labels ``[B, G]`` and mask ``[B, G]``."""
    from .data import sample_group, schedule, step_rng

    t = cfg.train
    rng = step_rng(t.seed, step, micro, rank)
    chosen = [
        (gi, sample_group(groups[gi], cfg.group.size, cfg.group.negatives, rng))
        for gi in schedule(len(groups), t.batch_size, t.seed, step, micro, t.grad_accum, rank, world)
    ]
    width = max(len(c) for _, c in chosen)
    labels = torch.zeros(len(chosen), width)
    mask = torch.zeros(len(chosen), width, dtype=torch.bool)
    rows = []
    for b, (gi, cands) in enumerate(chosen):
        g = groups[gi]
        for j, ci in enumerate(cands):
            key = (gi, ci)
            if key not in cache:
                cache[key] = teacher.encode(g.query, g.docs[ci])
            rows.append(cache[key])
            labels[b, j] = float(g.labels[ci])
            mask[b, j] = True
    return collate(rows, teacher.pad_id), labels, mask


def train_teacher(cfg: TeacherConfig, out: str | Path, *, progress=None) -> Path:
    """Fine-tune a teacher with the rank loss ``cfg.loss`` and save it to ``out`` (resumes a checkpoint there).

    Trains on the groups that have two differently-labelled candidates; each step draws
    ``train.batch_size`` groups per process (see :class:`~ranker_training.config.GroupConfig`).
    """
    from .data import load_sources, trainable
    from .loop import finish, make_accelerator, train_loop
    from .losses import listwise_softmax, pairwise_logistic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(cfg.train)
    groups = [g for g in load_sources(cfg.data, max_queries=cfg.max_queries) if trainable(g)]
    log.info("teacher: %d trainable groups", len(groups))
    torch.manual_seed(cfg.train.seed)  # the score head's and the adapters' initial weights
    teacher = Teacher.build(cfg)
    cache: dict = {}

    def loss_fn(model, step, micro):
        batch, labels, mask = rank_batch(
            teacher, groups, cfg, step, micro, accelerator.process_index, accelerator.num_processes, cache
        )
        dev = accelerator.device
        scores = torch.zeros(mask.shape, device=dev, dtype=torch.float32)
        flat = model(**{k: v.to(dev) for k, v in batch.items()}).float()
        scores = scores.masked_scatter(mask.to(dev), flat)
        if cfg.loss == "pairwise":
            return pairwise_logistic(scores, labels.to(dev), mask.to(dev))
        return listwise_softmax(scores, mask.to(dev))

    model, history, accelerator = train_loop(
        teacher, loss_fn, cfg.train, out, accelerator=accelerator, progress=progress, desc="teacher"
    )
    if accelerator.is_main_process:
        model.save(out)
        save_config(cfg, out / "train_config.json")
    finish(accelerator, out, history, stage="teacher")
    return out
