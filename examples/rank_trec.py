"""Rank a real web query's candidates with the bundled default package.

Reads one query of ../shared/data/trec-rag24 (dev split) and its 20 first-stage candidates,
ranks them with `Ranker.load()` and prints the ranking with scores, the judges' grades (0-3)
and snippets, then nDCG@10 of the first-stage order and of the reranked order.

    python examples/rank_trec.py [--qid 2024-145979] [--package PKG] [--data ../shared/data/trec-rag24]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ranker_sdk import Ranker
from ranker_sdk.beir import load_groups
from ranker_sdk.metrics import ndcg_at_k

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-rag24"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--qid", default=None, help="query id (default: the first dev query)")
    ap.add_argument("--package", default=None, help="package (default: the bundled one)")
    args = ap.parse_args()

    groups = load_groups(args.data, args.split)
    group = next((g for g in groups if g.qid == args.qid), None) if args.qid else groups[0]
    if group is None:
        raise SystemExit(f"no query {args.qid!r} in {args.data} {args.split}")
    ranker = Ranker.load(args.package, threads=1)
    hits = ranker.rank(group.query, list(group.docs))
    labels = [g if g is not None else 0 for g in group.labels]
    print(f"query {group.qid}: {group.query!r}  ({len(hits)} candidates)\n")
    print(f"{'rank':>4} {'score':>8} {'grade':>5} {'was':>4}  snippet")
    for rank, h in enumerate(hits, 1):
        text = " ".join(f"{h.doc['title']} | {h.doc['text']}".split()) if h.doc["title"] else " ".join(h.doc["text"].split())
        print(f"{rank:>4} {h.score:>8.3f} {labels[h.index]:>5} {h.index + 1:>4}  {text[:90]}")
    scores = [0.0] * len(hits)
    for h in hits:
        scores[h.index] = h.score
    first_stage = [-i for i in range(len(hits))]
    print(f"\nnDCG@10 first-stage order {ndcg_at_k(first_stage, labels):.3f}, reranked {ndcg_at_k(scores, labels):.3f}")


if __name__ == "__main__":
    main()
