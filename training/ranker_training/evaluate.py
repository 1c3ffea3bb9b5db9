"""Evaluation over candidate groups: nDCG@k, MAP, MRR and PNR for a model or a baseline.

For each query the model scores its candidates; unjudged candidates are scored but left out of
the metrics (the judged list is re-ranked). The measures are :mod:`ranker_eval.metrics`'s:

- ``ndcg@k``: gain ``2**grade - 1``, log2 discount, over the judged candidates re-ranked, mean
  over queries;
- ``ndcg@k_trec``: nDCG@k as trec_eval computes it (``ndcg_cut``, by ir-measures): gain = grade,
  every candidate ranked, an unjudged one counting as not relevant, the ideal order from all
  judged candidates. This is the figure TREC DL papers report;
- ``mrr@k_trec``: RR@k the same way (unjudged = not relevant), the measure of squad, whose
  questions each have one judged paragraph;
- ``map``, ``mrr``: relevance = ``grade > 0``, mean over queries;
- ``pnr``: positive-negative ratio, concordant / discordant label-distinct pairs summed over all
  queries (score ties count as discordant); None, with a ``pnr_note``, when no pair is discordant (x/0).

Every mean is over the queries with at least one relevant candidate (``queries``); the others
(``skipped``) have no defined AP or RR. This is how WikiQA is evaluated in the literature
(MAP/MRR over the 126 dev questions that have a correct sentence) and changes nothing on
trec-rag24, where every query has a relevant passage.

Models (``load_scorer``):

- a package directory or ``.tar.gz`` (``manifest.json``): scored with :class:`ranker_sdk.Ranker`;
- a teacher folder (``teacher.json``): :class:`ranker_training.teacher.Teacher`;
- any other HF folder: a sequence-classification cross-encoder, inputs built like the runtime
  (settings from its ``ranker_student.json`` when present);
- a teacher scores file (``.jsonl``/``.tsv`` from ``ranker train label``) or a TREC run
  (``.run``, e.g. a signal of :mod:`ranker_training.signals`): its scores; a query with no
  scored candidate is left out (``uncovered``);
- ``first-stage``: the order of ``candidates.run``; ``bm25``: Okapi BM25 (``rank_bm25``) with
  statistics over all candidates of the evaluated queries; ``random``: a random order, seeded by
  the query id (the floor every reranker must clear).

Example:
    >>> from ranker_training.config import DataSource
    >>> evaluate_model("bm25", [DataSource("../shared/data/wikiqa", "dev")])["map"]   # doctest: +SKIP
    0.61
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from ranker_eval import metrics
from ranker_eval.beir import Group

from .config import DataSource, resolve_path
from .errors import ConfigError

__all__ = ["evaluate_groups", "load_scorer", "evaluate_model", "evaluate_package", "BASELINES"]

log = logging.getLogger(__name__)
Scorer = Callable[[Group], "np.ndarray | None"]
BASELINES = ("first-stage", "bm25", "random")


def evaluate_groups(groups: Sequence[Group], scores: Sequence[np.ndarray], k: int = 10) -> dict:
    """Mean metrics of ``scores`` (one array per group, in candidate order) against the groups' labels.

    >>> g = Group("q", "query", ("a", "b", "c"), ({}, {}, {}), (0, 1, None))
    >>> r = evaluate_groups([g], [np.array([0.9, 0.1, 5.0])], k=10)
    >>> r["mrr"], r["pnr"], r["queries"]
    (0.5, 0.0, 1)
    """
    if k < 1:  # trec_eval would abort the whole process
        raise ConfigError(f"k (the nDCG cut-off) must be a positive integer, got {k!r}")
    runs = []
    conc = disc = skipped = uncovered = 0
    trec_qrels, trec_run = [], []
    for g, s in zip(groups, scores):
        if s is None:
            uncovered += 1
            continue
        keep = [i for i, y in enumerate(g.labels) if y is not None]
        y = np.array([g.labels[i] for i in keep], dtype=np.int64)
        sc = np.asarray(s, dtype=np.float64)[keep]
        if not (y > 0).any():
            skipped += 1
            continue
        runs.append((sc, y))
        c, d = metrics.pnr_pairs(sc, y)
        conc, disc = conc + c, disc + d
        trec_qrels += [(g.qid, g.doc_ids[i], int(g.labels[i])) for i in keep]
        trec_run += [(g.qid, d, float(v)) for d, v in zip(g.doc_ids, np.asarray(s, dtype=np.float64))]
    per = metrics.per_query(runs, k)
    trec = metrics.trec_measures(trec_qrels, trec_run, k)
    mean = lambda v: float(np.mean(v)) if len(v) else 0.0  # noqa: E731
    out = {
        f"ndcg@{k}": mean(per[f"ndcg@{k}"]),
        f"ndcg@{k}_trec": trec["ndcg"],
        f"mrr@{k}_trec": trec["rr"],
        "map": mean(per["ap"]),
        "mrr": mean(per["rr"]),
        # No discordant pair leaves the ratio undefined (x/0): None, never inf, with the counts.
        "pnr": conc / disc if disc else None if conc else 0.0,
        "queries": len(runs),
        "skipped": skipped,
    }
    if disc == 0 and conc:
        out["pnr_note"] = f"undefined: all {conc} label-distinct pairs ordered right, none wrong"
    if uncovered:
        out["uncovered"] = uncovered
    return out


def _bm25_scorer(groups: Sequence[Group]) -> Scorer:
    from rank_bm25 import BM25Okapi
    from ranker_sdk.encoding import TITLE_SEPARATOR, doc_text

    def toks(s: str) -> list[str]:
        return re.findall(r"\w+", s.lower())

    index: dict[str, int] = {}
    corpus = []
    for g in groups:
        for d, doc in zip(g.doc_ids, g.docs):
            if d not in index:
                index[d] = len(corpus)
                corpus.append(toks(doc_text(doc, TITLE_SEPARATOR)) or ["_"])
    bm25 = BM25Okapi(corpus)
    return lambda g: np.asarray(bm25.get_batch_scores(toks(g.query), [index[d] for d in g.doc_ids]), dtype=np.float32)


def _scores_file_scorer(path: Path) -> Scorer:
    from .label import read_scores

    if path.suffix == ".run":  # a TREC run scores its source's own qids (no source prefix)
        from .external import read_run_scores

        scores = {(q, d): v for q, docs in read_run_scores(path).items() for d, v in docs.items()}
    else:
        scores = read_scores(path)

    def score(g: Group) -> np.ndarray | None:
        qid = g.qid if path.suffix != ".run" else g.qid.split("/", 1)[-1]
        got = [scores.get((qid, d)) for d in g.doc_ids]
        if all(v is None for v in got):
            return None
        floor = min(v for v in got if v is not None) - 1.0  # unscored: below every scored candidate
        return np.array([floor if v is None else v for v in got], dtype=np.float32)

    return score


def _limit(path: Path) -> int:
    """:func:`ranker_sdk.encoding.model_limit` of a checkpoint folder (its config and tokenizer)."""
    from ranker_sdk import encoding
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, local_files_only=True)
    tok_max = None
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.is_file():
        tok_max = json.loads(tok_cfg.read_text(encoding="utf-8")).get("model_max_length")
    return encoding.model_limit(
        getattr(cfg, "max_position_embeddings", None), cfg.model_type, getattr(cfg, "pad_token_id", None), tok_max
    )


def _checkpoint_scorer(path: Path, batch_size: int) -> Scorer:
    import torch
    from ranker_sdk import encoding

    from .distill import STUDENT_META, StudentEncoder, load_student, model_inputs

    meta_path = path / STUDENT_META
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    # The settings the student recorded; a checkpoint without a record gets the settings the
    # packager gives it (encoding.resolve), so a checkpoint and its package read the same text.
    enc = StudentEncoder(path, **encoding.resolve(meta, _limit(path)), pad_token_id=meta.get("pad_token_id"))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_student(str(path)).to(device).eval()

    @torch.no_grad()
    def score(g: Group) -> np.ndarray:
        out = []
        for s in range(0, len(g.docs), batch_size):
            arrays = enc.batch(g.query, list(g.docs[s : s + batch_size]))
            out.append(model(**model_inputs(model, arrays, device)).logits.squeeze(-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    return score


def load_scorer(
    model: str,
    groups: Sequence[Group] = (),
    *,
    batch_size: int = 32,
    threads: int | None = None,
    first_stage: bool = False,
) -> Scorer:
    """A function ``group -> scores`` for a package, teacher folder, HF cross-encoder or baseline name.

    ``first_stage``: a package scores with its fusion rule, the first stage being ``-rank`` in
    ``candidates.run`` (a package without a rule scores as without it).
    """
    if model == "first-stage":
        return lambda g: -np.arange(len(g.doc_ids), dtype=np.float32)
    if model == "random":
        return lambda g: (
            np.random.default_rng(zlib.crc32(g.qid.encode("utf-8"))).permutation(len(g.doc_ids)).astype(np.float32)
        )
    if model == "bm25":
        return _bm25_scorer(groups)
    path = Path(resolve_path(model))
    if path.suffix in (".jsonl", ".tsv", ".run"):
        return _scores_file_scorer(path)
    if (path / "manifest.json").is_file() or path.name.endswith(".tar.gz"):
        from ranker_sdk import Ranker

        ranker = Ranker.load(path, threads=threads, batch_size=batch_size)
        if first_stage:
            return lambda g: ranker.score(g.query, list(g.docs), first_stage=-np.arange(len(g.docs), dtype=np.float64))
        return lambda g: ranker.score(g.query, list(g.docs))
    if first_stage:
        raise ConfigError(f"--first-stage: {model!r} is not a package; fusion rules live in packages")
    if (path / "teacher.json").is_file():
        import torch

        from .teacher import Teacher

        teacher = Teacher.load(path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        teacher.to(device)
        return lambda g: teacher.score_pairs([(g.query, d) for d in g.docs], batch_size=batch_size, device=device)
    if (path / "config.json").is_file():
        return _checkpoint_scorer(path, batch_size)
    raise ConfigError(
        f"--model {model!r}: expected a package, a teacher or HF cross-encoder folder, or one of {BASELINES}"
    )


def evaluate_model(
    model: str,
    sources: Sequence[DataSource],
    *,
    k: int = 10,
    max_queries: int | None = None,
    batch_size: int = 32,
    progress=None,
    first_stage: bool = False,
) -> dict:
    """Load ``model`` and evaluate it on ``sources`` (each source separately, plus their union when several).

    ``first_stage``: score a package fused with the first stage (``-rank`` in ``candidates.run``).
    """
    scored = _score_sources(
        sources,
        max_queries,
        progress,
        lambda groups: load_scorer(model, groups, batch_size=batch_size, first_stage=first_stage),
        per_source=model == "bm25",  # BM25's statistics are per evaluated collection
    )
    return _results(model, sources, scored, k, first_stage=first_stage)


def evaluate_package(
    model: str,
    sources: Sequence[DataSource],
    *,
    k: int = 10,
    max_queries: int | None = None,
    batch_size: int = 32,
    progress=None,
) -> tuple[dict, dict]:
    """A package's results alone and fused with the first stage, scoring each pair once.

    The same two results as ``evaluate_model(first_stage=False)`` and ``(first_stage=True)``:
    the fused scores are the package's fusion rule applied to its own scores
    (:func:`ranker_sdk.fusion.fuse`, as :meth:`ranker_sdk.Ranker.score` applies it).
    """
    from ranker_sdk import Ranker
    from ranker_sdk.fusion import fuse

    ranker = Ranker.load(resolve_path(model), threads=None, batch_size=batch_size)  # as load_scorer loads it
    rule = ranker.config.fusion
    scored = _score_sources(sources, max_queries, progress, lambda _: lambda g: ranker.score(g.query, list(g.docs)))
    fused = [
        (src, groups, [fuse(s, -np.arange(len(s), dtype=np.float64), rule) for s in scores])
        for src, groups, scores in scored
    ]
    return _results(model, sources, scored, k), _results(model, sources, fused, k, first_stage=True)


def _score_sources(
    sources: Sequence[DataSource],
    max_queries: int | None,
    progress,
    make_scorer: Callable[[list[Group]], Scorer],
    *,
    per_source: bool = False,
) -> list:
    """``[(source, groups, scores)]``: each source's groups scored by ``make_scorer(groups)``, made once
    (``per_source``: again for every source)."""
    from .data import load_sourced

    out = []
    scorer: Scorer | None = None
    # read together so qids carry the source prefix exactly as a labeller reading the same
    # sources wrote them (a teacher scores file is looked up by those qids)
    sourced = load_sourced(sources, max_queries=max_queries)
    for src in sources:
        groups = [g for g, s, _ in sourced if s is src]
        if scorer is None or per_source:
            scorer = make_scorer(groups)
        bar = progress(total=len(groups), desc=f"eval {Path(src.path).name}") if progress else None
        scores = []
        for g in groups:
            scores.append(scorer(g))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        out.append((src, groups, scores))
    return out


def _results(model: str, sources: Sequence[DataSource], scored: list, k: int, *, first_stage: bool = False) -> dict:
    results: dict = {"model": model, **({"first_stage": True} if first_stage else {})}
    per_source = [
        {"data": src.path, "split": src.split, **evaluate_groups(groups, scores, k)} for src, groups, scores in scored
    ]
    results["sources"] = per_source
    if len(per_source) > 1:
        results["all"] = evaluate_groups(
            [g for _, groups, _ in scored for g in groups], [s for _, _, scores in scored for s in scores], k
        )
    return results
