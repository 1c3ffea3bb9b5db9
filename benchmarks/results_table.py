"""Turn recipe evaluation files into the results table (markdown + JSON).

    python benchmarks/results_table.py [runs/default/eval.json] [--extra NAME=ranker-eval.json ...]
        [--speed NAME=bench_rank.json ...] [--out benchmarks/results/recipe_cpu]

Each input is the JSON that `ranker train recipe` writes (``eval.json``: name -> result) or that
`ranker eval --json` prints (one result, named with ``name=path``). Rows: trec-rag24 dev nDCG@10
and PNR, wikiqa dev MAP and MRR, with the number of queries each was measured on, and docs/s
where a ``--speed`` file (``benchmarks/bench_rank.py --json``: the SDK's default path) is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = ["first-stage", "bm25", "teacher", "labels_only", "pointwise_only", "margin_only", "hybrid", "hybrid_labels"]


def _source(result: dict, name: str) -> dict:
    return next((s for s in result["sources"] if Path(s["data"]).name == name), {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("eval_json", nargs="?", default=None, help="a recipe's eval.json (optional)")
    ap.add_argument("--extra", action="append", default=[], help="NAME=PATH of a `ranker eval --json` output")
    ap.add_argument("--speed", action="append", default=[], help="NAME=PATH of a bench_rank.py --json output")
    ap.add_argument("--out", default=None, help="write OUT.md, OUT.json and OUT.png")
    args = ap.parse_args()
    results = json.loads(Path(args.eval_json).read_text()) if args.eval_json else {}
    for item in args.extra:
        name, _, path = item.partition("=")
        results[name] = json.loads(Path(path).read_text())
    speed = {}
    for item in args.speed:
        name, _, path = item.partition("=")
        rows_ = json.loads(Path(path).read_text())["rows"]
        speed[name] = next(r["docs_per_s"] for r in rows_ if r["path"] == "sorted")
    names = [n for n in ORDER if n in results] + [n for n in results if n not in ORDER]
    rows = []
    for n in names:
        t, w = _source(results[n], "trec-rag24"), _source(results[n], "wikiqa")
        rows.append({"model": n, "trec_ndcg10": t.get("ndcg@10"), "trec_pnr": t.get("pnr"), "trec_queries": t.get("queries"),
                     "wikiqa_map": w.get("map"), "wikiqa_mrr": w.get("mrr"), "wikiqa_queries": w.get("queries"),
                     "docs_per_s": speed.get(n)})
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| model | trec-rag24 nDCG@10 | trec-rag24 PNR | wikiqa MAP | wikiqa MRR | docs/s (1 thread) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        sp = "-" if r["docs_per_s"] is None else f"{r['docs_per_s']:.1f}"
        lines.append(f"| {r['model']} | {f(r['trec_ndcg10'])} | {f(r['trec_pnr'])} | {f(r['wikiqa_map'])} "
                     f"| {f(r['wikiqa_mrr'])} | {sp} |")
    q = rows[0]
    lines.append(f"\nQueries: trec-rag24 dev {q['trec_queries']}, wikiqa dev {q['wikiqa_queries']} (those with a correct answer).")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out + ".md").write_text(table + "\n")
        Path(args.out + ".json").write_text(json.dumps(rows, indent=2) + "\n")
        plot(rows, args.out + ".png")


def plot(rows: list[dict], path: str) -> None:
    """Two bar groups per model: trec-rag24 nDCG@10 and wikiqa MAP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    for off, key, label in ((-0.2, "trec_ndcg10", "trec-rag24 dev nDCG@10"), (0.2, "wikiqa_map", "wikiqa dev MAP")):
        ax.bar(x + off, [r[key] or 0 for r in rows], width=0.4, label=label)
    ax.set_xticks(x, [r["model"] for r in rows], rotation=25, ha="right")
    ax.set_ylim(0.4, 0.9)
    ax.legend(loc="upper right")
    ax.set_title("Dev-split quality by model")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
