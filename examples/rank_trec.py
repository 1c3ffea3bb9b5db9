"""Rank a real web query's candidates with the bundled default package, then all of dev.

Reads ../shared/data/trec-rag24 (dev split): one query and its 20 first-stage candidates, ranked
by `Ranker.load()`, with scores, the judges' grades (0-3) and snippets; then the same comparison
over every dev query, so one favourable (or unfavourable) query cannot mislead: mean nDCG@10 of
the given first-stage order and of the reranked order, and on how many queries the reranked
order is better, worse or tied. Every figure is computed now, from the package you pass.

    python examples/rank_trec.py [--qid 2024-146077] [--package PKG] [--data ../shared/data/trec-rag24]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ranker_eval.beir import Group, load_groups
from ranker_eval.metrics import ndcg_at_k
from ranker_sdk import Ranker, RankerError

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-rag24"

GRADES = "grade: the judges' relevance grade, 3 perfectly relevant, 2 highly relevant, 1 related, 0 not relevant"
WAS = "was:   the passage's position in the first-stage order (candidates.run; 1 = the retriever's top hit)"


def score_meaning(ranker: Ranker) -> str:
    """What a score of this package means, from its ranker.json (the runtime never guesses)."""
    if ranker.config.score.kind == "sigmoid":
        return "score: a calibrated probability of relevance (0-1); higher is better"
    return (
        "score: the model's raw output (a logit); higher is better; compare scores within one "
        "query only, their scale means nothing across queries"
    )


def ndcg_pair(ranker: Ranker, group: Group) -> tuple[float, float, list[float]]:
    """nDCG@10 of the given order and of the reranked order, and the scores."""
    labels = [g if g is not None else 0 for g in group.labels]
    scores = ranker.score(group.query, list(group.docs)).tolist()
    given = [-i for i in range(len(labels))]  # candidates.run's order, best first
    return ndcg_at_k(given, labels), ndcg_at_k(scores, labels), scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default=str(DEFAULT_DATA), help="a BEIR folder with candidates.run (default: %(default)s)"
    )
    ap.add_argument("--split", default="dev", help="qrels split (default: dev)")
    ap.add_argument("--qid", default=None, help="the query to show (default: the first query of the split)")
    ap.add_argument("--package", default=None, help="package (default: the bundled one)")
    args = ap.parse_args()

    data = Path(args.data)
    if not (data / "queries.jsonl").is_file():
        sys.exit(
            f"error: no ranking data at {data} (expected queries.jsonl, corpus.jsonl, candidates.run, "
            "qrels/); the demo reads ../shared/data/trec-rag24 beside the clone, or pass --data DIR"
        )
    try:
        groups = load_groups(data, args.split)
        ranker = Ranker.load(args.package, threads=1)
    except RankerError as exc:
        sys.exit(f"error: {exc}")
    if not groups:
        sys.exit(f"error: no judged queries in {data} split {args.split!r}")
    group = next((g for g in groups if g.qid == args.qid), None) if args.qid else groups[0]
    if group is None:
        sys.exit(
            f"error: no query {args.qid!r} in {data} split {args.split!r}; "
            f"its queries are {groups[0].qid} ... {groups[-1].qid}"
        )

    try:
        given, reranked, scores = ndcg_pair(ranker, group)
    except ImportError as exc:  # nDCG comes from ir-measures: the `eval` extra
        sys.exit(f"error: {exc}")
    labels = [g if g is not None else 0 for g in group.labels]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    print(f"query {group.qid}: {group.query!r}  ({len(scores)} candidates)\n")
    print(f"{'rank':>4} {'score':>8} {'grade':>5} {'was':>4}  passage")
    for rank, i in enumerate(order, 1):
        doc = group.docs[i]
        text = " ".join((f"{doc['title']} | {doc['text']}" if doc["title"] else doc["text"]).split())
        print(f"{rank:>4} {scores[i]:>8.3f} {labels[i]:>5} {i + 1:>4}  {text[:90]}")
    print(f"\n{score_meaning(ranker)}\n{GRADES}\n{WAS}")
    print(f"\nthis query: nDCG@10 first-stage order {given:.3f}, reranked {reranked:.3f}")

    print(f"scoring all {len(groups)} {args.split} queries ...", file=sys.stderr, flush=True)
    better = worse = tied = 0
    sum_given = sum_reranked = 0.0
    for g in groups:
        a, b, _ = ndcg_pair(ranker, g)
        sum_given, sum_reranked = sum_given + a, sum_reranked + b
        better, worse, tied = better + (b > a + 1e-9), worse + (b < a - 1e-9), tied + (abs(b - a) <= 1e-9)
    n = len(groups)
    print(
        f"all {n} {args.split} queries: mean nDCG@10 first-stage order {sum_given / n:.3f}, "
        f"reranked {sum_reranked / n:.3f}; reranking is better on {better}, worse on {worse}, tied on {tied}"
    )
    fused = _report_fusion(ranker, groups)
    if max(sum_reranked, fused if fused is not None else -1.0) <= sum_given:
        print(
            "\nhere reranking does not beat the first-stage order. On your own data: fit the first-stage "
            "fusion weight on your labelled queries (ranker fusion --data YOUR_DIR=SPLIT --out PKG, then "
            "rank with --first-stage), or keep your first stage's order where it wins."
        )


def _report_fusion(ranker: Ranker, groups: list) -> float | None:
    """Print the package's fused figures (first stage = -rank); the summed nDCG@10, or None without a rule."""
    n = len(groups)
    fusion = ranker.config.fusion
    if fusion is not None:  # the package's first-stage fusion rule: the first stage known here as -rank
        fused, f_better = 0.0, 0
        for g in groups:
            labels = [y if y is not None else 0 for y in g.labels]
            given_order = [-i for i in range(len(labels))]
            s = ranker.score(g.query, list(g.docs), first_stage=given_order).tolist()
            b, a = ndcg_at_k(s, labels), ndcg_at_k(given_order, labels)
            fused, f_better = fused + b, f_better + (b > a + 1e-9)
        print(
            f"fused with the first stage (first_stage=-rank, the package's rule, weight {fusion.weight:g}): "
            f"mean nDCG@10 {fused / n:.3f}; better than the first-stage order on {f_better} of {n}"
        )
        return fused
    return None


if __name__ == "__main__":
    main()
