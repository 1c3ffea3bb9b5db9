"""Step 4: does the packaged model rank like the model it came from?

Verification scores the same candidate groups with a *reference* and a *candidate* and compares,
per query:

- **Spearman** rank correlation of the two score vectors (1.0 = same order);
- **top-10 overlap**: ``|top10(ref) & top10(cand)| / min(10, n)``;
- **nDCG@10** of each, when the data has graded labels (gain ``2**grade - 1``, unjudged = 0),
  and the drop ``ndcg(ref) - ndcg(cand)``;
- the largest absolute score difference.

For an INT8 package the reference is the fp32 package and the candidate the INT8 package, both
scored through the SDK's own :class:`~ranker_sdk.Ranker`: what is verified is what ships,
tokenization, truncation and batching included. Separately, :func:`torch_scores` checks the
export itself: the fp32 package against the torch checkpoint on the same token ids.

The groups come from a BEIR folder (:func:`calibration_groups`, e.g. ``trec-rag24`` ``dev``) or,
without one, from :func:`generated_groups`: a fixed set of English sentences on unrelated
topics, enough to compare two rankings but with no labels, which the report says
(``"data": "generated"``).

Example:
    >>> groups, source = calibration_groups("../shared/data/trec-rag24", "dev", max_queries=8)  # doctest: +SKIP
    >>> ref, cand = score_groups(fp32_ranker, groups), score_groups(int8_ranker, groups)       # doctest: +SKIP
    >>> report = fidelity_report(ref, cand, groups, data=source)                             # doctest: +SKIP
    >>> report["spearman"]["mean"] >= 0.9                                                    # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ranker_eval.beir import Group, load_groups
from ranker_eval.metrics import ndcg_at_k, spearman
from ranker_sdk.encoding import doc_text
from ranker_sdk.errors import InputError
from ranker_sdk.package import PackageConfig
from ranker_sdk.tokenize import PairEncoder

from .checks import number, positive_int

__all__ = [
    "VerifyOptions",
    "calibration_groups",
    "generated_groups",
    "score_groups",
    "torch_scores",
    "fidelity_report",
    "batch_invariance",
    "failures",
    "rounded",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyOptions:
    """Where verification data comes from and what counts as faithful.

    Attributes:
        calibration: a BEIR-layout folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/``,
            ``candidates.run``); None uses generated text.
        split: the qrels split whose queries are used.
        max_queries: at most this many queries (the first by qid): fp32 + INT8 scoring of 32
            queries x 20 candidates takes seconds for a MiniLM on two cores.
        min_spearman: the mean per-query Spearman must be at least this.
        max_ndcg_drop: nDCG@10 of the candidate may be at most this much below the reference
            (checked only when the data has labels).
        max_export_diff: the fp32 package may differ from torch by at most this much per score.
        threads: onnxruntime threads for verification scoring (None: one per core).
        gate_data: more ``(data_dir, split)`` sets whose queries (``max_queries`` of each) are
            pooled with the calibration set's for verification, so the gate reads fidelity
            over every dev collection and not the rounding luck of one (their queries never
            calibrate the INT8 scales).
        min_top10_overlap: the mean top-10 overlap must be at least this.

    Raises:
        InputError: ``max_queries`` or ``threads`` is not a positive integer, or a threshold is
            not a number. (A threshold may be unreachable on purpose: ``min_spearman=1.01``
            fails every package.)
    """

    calibration: str | None = None
    split: str = "dev"
    max_queries: int = 32
    min_spearman: float = 0.9
    max_ndcg_drop: float = 0.01
    max_export_diff: float = 1e-3
    threads: int | None = None
    gate_data: tuple[tuple[str, str], ...] = ()
    min_top10_overlap: float = 0.0

    def __post_init__(self) -> None:
        positive_int("max_queries", self.max_queries)
        positive_int("threads", self.threads, optional=True)
        for name in ("min_spearman", "max_ndcg_drop", "max_export_diff", "min_top10_overlap"):
            number(name, getattr(self, name))


def gate_groups(options: VerifyOptions) -> tuple[list[Group], list[str]]:
    """The queries of ``options.gate_data`` (``max_queries`` of each set) and their set names."""
    groups, names = [], []
    for root, split in options.gate_data:
        more, name = calibration_groups(root, split, max_queries=options.max_queries)
        groups += more
        names.append(name)
    return groups, names


def calibration_groups(root: str | Path, split: str, *, max_queries: int) -> tuple[list[Group], str]:
    """Candidate groups of a BEIR folder, and a location-free name for the report (``folder/split``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--calibration {root}: not a directory; pass a BEIR folder such as ../shared/data/trec-rag24")
    groups = [g for g in load_groups(root, split, max_queries=max_queries) if len(g.docs) >= 2]
    if not groups:
        raise InputError(f"--calibration {root} --split {split}: no query with at least 2 candidates")
    return groups, f"{root.name}/{split}"


_TOPICS = {
    "volcano": [
        "A volcano erupts when pressure from molten rock beneath the crust forces magma to the surface.",
        "Lava flows from shield volcanoes are runny and travel far, building gentle slopes.",
        "Volcanic ash can ground aircraft because it melts inside jet engines.",
    ],
    "bread": [
        "Yeast ferments the sugars in dough and the carbon dioxide it releases makes bread rise.",
        "Sourdough bread uses a starter of wild yeast and lactic acid bacteria.",
        "Kneading develops gluten, the protein network that gives bread its chewy texture.",
    ],
    "tax": [
        "A progressive income tax charges higher rates on higher slices of income.",
        "Value added tax is collected at each stage of production on the value added there.",
        "Tax deductions lower taxable income, while tax credits reduce the tax owed directly.",
    ],
    "heart": [
        "The heart pumps blood through two circuits: to the lungs and to the rest of the body.",
        "A resting adult heart beats between sixty and one hundred times per minute.",
        "Coronary arteries supply the heart muscle itself with oxygen-rich blood.",
    ],
    "python": [
        "Python is a programming language that uses indentation to delimit blocks of code.",
        "A Python list can grow and shrink, while a tuple cannot be changed after creation.",
        "The Python package index hosts libraries that pip can install.",
    ],
    "football": [
        "A football match lasts ninety minutes, split into two halves of forty-five minutes.",
        "The offside rule stops attackers from waiting behind the last defender.",
        "The World Cup is held every four years and brings together national teams.",
    ],
    "moon": [
        "The Moon takes about twenty-seven days to orbit the Earth.",
        "Tides are caused mainly by the Moon's gravity pulling on the oceans.",
        "Astronauts first walked on the Moon in 1969 during the Apollo 11 mission.",
    ],
    "coffee": [
        "Coffee beans are the roasted seeds of the coffee plant's cherries.",
        "Caffeine in coffee blocks adenosine receptors, which makes people feel more alert.",
        "Espresso is brewed by forcing hot water through finely ground coffee under pressure.",
    ],
}
_QUERIES = {
    "volcano": ["why do volcanoes erupt", "what is volcanic ash dangerous for"],
    "bread": ["how does yeast make bread rise", "what is sourdough starter"],
    "tax": ["difference between tax credit and deduction", "what is a progressive tax"],
    "heart": ["normal resting heart rate", "how does the heart pump blood"],
    "python": ["python list vs tuple", "how to install python packages"],
    "football": ["how long is a football match", "what is offside in football"],
    "moon": ["what causes tides", "when did humans land on the moon"],
    "coffee": ["how does caffeine work", "how is espresso made"],
}


def generated_groups(max_queries: int, seed: int = 0) -> list[Group]:
    """Deterministic groups without labels: each query against all sentences, shuffled.

    Each query has a few on-topic sentences among many off-topic ones, so a working
    cross-encoder gives its candidates clearly different scores and the comparison of two
    rankings means something. There are 16 queries of 24 candidates.
    """
    rng = random.Random(seed)
    sentences = [s for topic in sorted(_TOPICS) for s in _TOPICS[topic]]
    groups = []
    for topic in sorted(_QUERIES):
        for j, query in enumerate(_QUERIES[topic]):
            docs = list(sentences)
            rng.shuffle(docs)
            ids = tuple(f"gen-{i}" for i in range(len(docs)))
            groups.append(
                Group(
                    qid=f"{topic}-{j}",
                    query=query,
                    doc_ids=ids,
                    docs=tuple({"title": "", "text": d} for d in docs),
                    labels=(None,) * len(docs),
                )
            )
    return groups[:max_queries]


def score_groups(ranker: Any, groups: Sequence[Group], progress: Progress | None = None) -> list[np.ndarray]:
    """Score every group with a :class:`~ranker_sdk.Ranker`; ``progress(done, total)`` after each."""
    out = []
    for i, g in enumerate(groups, 1):
        out.append(ranker.score(g.query, list(g.docs)))
        if progress:
            progress(i, len(groups))
    return out


def torch_scores(
    model: Any, tokenizer_json: bytes, config: PackageConfig, query: str, docs: Sequence[Any]
) -> np.ndarray:
    """Scores of ``docs`` from the torch ``model``, on the token ids the SDK would feed the ONNX model.

    The pairs are encoded by the SDK's :class:`~ranker_sdk.tokenize.PairEncoder` with the
    package's config, padded as one batch (right padding, mask 0), and only the inputs the
    package declares are passed, so any difference is the export's, not the tokenization's.
    """
    import torch

    encoder = PairEncoder(tokenizer_json, config)
    texts = [doc_text(d, config.title_separator) for d in docs]
    enc = encoder.encode(query, texts)
    feed = enc.batch(list(range(len(enc))), config.pad_token_id)
    with torch.inference_mode():
        logits = model(**{k: torch.from_numpy(feed[k]) for k in config.inputs}).logits
    return logits.reshape(-1).float().numpy()


def _r(x: float) -> float:
    # Rounded so that float noise in the last bits cannot change ranker.json between two runs.
    return round(float(x), 4)


def _sig(x: float) -> float:
    """``x`` to 3 significant digits (differences span 1e-7 to 1; 4 decimals would hide the small ones)."""
    return float(f"{float(x):.3g}")


def fidelity_report(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    groups: Sequence[Group],
    *,
    data: str,
    reference_name: str = "fp32",
    candidate_name: str = "int8",
) -> dict[str, Any]:
    """Compare two scorings of ``groups`` (see the module docstring); a JSON-able dict."""
    rho, overlap, diff = [], [], 0.0
    ndcg_ref, ndcg_cand = [], []
    labelled = any(lab is not None and lab > 0 for g in groups for lab in g.labels)
    for ref, cand, g in zip(reference, candidate, groups):
        rho.append(spearman(ref, cand))
        k = min(10, len(ref))
        top_r = set(np.argsort(-ref, kind="stable")[:k].tolist())
        top_c = set(np.argsort(-cand, kind="stable")[:k].tolist())
        overlap.append(len(top_r & top_c) / k)
        diff = max(diff, float(np.max(np.abs(ref - cand))))
        if labelled:
            labels = [lab or 0 for lab in g.labels]
            ndcg_ref.append(ndcg_at_k(ref, labels, 10))
            ndcg_cand.append(ndcg_at_k(cand, labels, 10))
    report: dict[str, Any] = {
        "reference": reference_name,
        "candidate": candidate_name,
        "data": data,
        "queries": len(groups),
        "pairs": int(sum(len(g.docs) for g in groups)),
        "labels": labelled,
        "spearman": {"mean": _r(np.mean(rho)), "min": _r(np.min(rho))},
        "top10_overlap": {"mean": _r(np.mean(overlap)), "min": _r(np.min(overlap))},
        "max_abs_diff": _sig(diff),
    }
    if labelled:
        a, b = float(np.mean(ndcg_ref)), float(np.mean(ndcg_cand))
        report["ndcg@10"] = {reference_name: _r(a), candidate_name: _r(b), "drop": _r(a - b)}
    return report


def batch_invariance(
    package: str | Path, groups: Sequence[Group], *, threads: int | None = 1, seed: int = 0
) -> dict[str, Any]:
    """Does a document's score depend on its batch neighbours? Score each group three ways.

    1. **alone**: one pair per model call (``batch_size=1``), the reference;
    2. **batched**: the SDK default (sorted by length, <= 32 rows and 512 padded tokens a call);
    3. **shuffled**: the documents in a random order, in one unsorted call padded to the longest.

    Returns ``{"queries", "max_abs_diff", "top10_identical"}``: the largest score difference of
    (2) or (3) against (1), and the share of queries whose top 10 (ties kept in input order) is
    identical in all three. A statically quantized package keeps differences at float rounding
    (about 1e-6); a dynamically quantized one changes its activation scales with the batch.

    Example:
        >>> batch_invariance("packages/minilm-int8", groups)["max_abs_diff"] <= 1e-3   # doctest: +SKIP
        True
    """
    from ranker_sdk import Ranker

    alone = Ranker.load(package, threads=threads, batch_size=1)
    batched = Ranker.load(package, threads=threads)
    whole = Ranker.load(package, threads=threads, batch_size=10**6, max_batch_tokens=10**9, sort_by_length=False)
    rng = np.random.default_rng(seed)
    diff, same = 0.0, 0
    for g in groups:
        docs = list(g.docs)
        ref = alone.score(g.query, docs)
        perm = rng.permutation(len(docs))
        shuffled = np.empty_like(ref)
        shuffled[perm] = whole.score(g.query, [docs[i] for i in perm])
        runs = (batched.score(g.query, docs), shuffled)
        diff = max(diff, *(float(np.max(np.abs(r - ref))) for r in runs))
        k = min(10, len(docs))
        top = [np.argsort(-r, kind="stable")[:k].tolist() for r in (ref, *runs)]
        same += all(t == top[0] for t in top)
    return {"queries": len(groups), "max_abs_diff": _sig(diff), "top10_identical": _r(same / max(1, len(groups)))}


def rounded(x: float) -> float:
    """A score difference as recorded in ``ranker.json`` (3 significant digits)."""
    return _sig(x)


def failures(report: dict[str, Any], options: VerifyOptions) -> list[str]:
    """The thresholds ``report`` misses, as readable sentences (empty: it passes)."""
    out = []
    if report["spearman"]["mean"] < options.min_spearman:
        out.append(f"mean Spearman {report['spearman']['mean']} < {options.min_spearman}")
    if options.min_top10_overlap and report["top10_overlap"]["mean"] < options.min_top10_overlap:
        out.append(f"mean top-10 overlap {report['top10_overlap']['mean']} < {options.min_top10_overlap}")
    nd = report.get("ndcg@10")
    if nd is not None and nd["drop"] > options.max_ndcg_drop:
        out.append(f"nDCG@10 drop {nd['drop']} > {options.max_ndcg_drop}")
    export_diff = report.get("export_check", {}).get("max_abs_diff")
    if export_diff is not None and export_diff > options.max_export_diff:
        out.append(f"fp32 ONNX differs from torch by {export_diff} > {options.max_export_diff}")
    return out
