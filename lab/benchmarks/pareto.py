"""The Pareto front of packages: dev quality vs docs/s vs peak RSS vs size, as a table and a plot.

    python -m lab.benchmarks.pareto --entry NAME=PKG=EVAL_JSON [--entry ...] [--threads 1] [--repeats 5] \\
        [--rounds 2] [--out lab/results/pareto]

For each entry: docs/s and peak RSS of the package on the shared workload (1 query x 100
trec-rag24 dev passages; :func:`bench_packages.measure_packages`: a fresh process per package,
rounds interleaved, the best round), ratios against the first entry, ``model.onnx`` size, and
dev quality from ``EVAL_JSON``, what ``ranker eval --json`` printed for that model (the three
headlines: trec-dl DL21 nDCG@10 as trec_eval computes it, trec-rag24 nDCG@10, wikiqa MAP, and
their mean). Writes ``OUT.json`` and ``OUT.png`` (mean quality against docs/s, one
point per package, its area by peak RSS).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.benchmarks.bench_packages import measure_packages
from lab.report import HEADLINES, headlines


def quality(result: dict) -> dict[str, float | None]:
    """The headlines of one ``ranker eval --json`` result by data set (None where a set was not
    evaluated), and their mean when all are there."""
    got = {data: v for (data, _), v in headlines(result).items()}
    out: dict[str, float | None] = {data: got.get(data) for data, _ in HEADLINES}
    # the table's three collections (its packages were measured before squad joined the dev sets)
    three = [got.get(d) for d in ("trec-dl", "trec-rag24", "wikiqa")]
    out["mean"] = sum(three) / 3 if None not in three else None
    return out


def parse_entry(text: str) -> tuple[str, str, str]:
    parts = text.split("=")
    if len(parts) != 3 or not all(parts):
        raise SystemExit(f"error: --entry {text!r}: expected NAME=PACKAGE_DIR=EVAL_JSON")
    return parts[0], parts[1], parts[2]


def table(entries: list[tuple[str, str, str]], threads: int, repeats: int, rounds: int) -> list[dict]:
    speed = measure_packages([pkg for _, pkg, _ in entries], threads, repeats, rounds)
    rows = []
    for (name, pkg, ev), s in zip(entries, speed):
        q = quality(json.loads(Path(ev).read_text(encoding="utf-8")))
        rows.append(
            {
                "name": name,
                "package": pkg,
                "eval": ev,
                **{f"q_{k}": v for k, v in q.items()},
                "docs_per_s": s["docs_per_s"],
                "speed_x": s["speed_x"],
                "peak_rss_mib": s["peak_rss_mib"],
                "rss_x": s["rss_x"],
                "model_mib": (Path(pkg) / "model.onnx").stat().st_size / 2**20,
                "threads": threads,
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        "| package | trec-dl nDCG@10 (trec_eval) | trec-rag24 nDCG@10 | wikiqa MAP | mean | docs/s | speed | peak RSS MiB | RSS | model.onnx MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {f(r['q_trec-dl'])} | {f(r['q_trec-rag24'])} | {f(r['q_wikiqa'])} | {f(r['q_mean'])} "
            f"| {r['docs_per_s']:.1f} | {r['speed_x']:.2f}x | {r['peak_rss_mib']:.0f} | {r['rss_x']:.2f}x | {r['model_mib']:.1f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        if r["q_mean"] is None:
            continue
        ax.scatter(r["docs_per_s"], r["q_mean"], s=r["peak_rss_mib"] * 2, alpha=0.6)
        ax.annotate(f"{r['name']}\n{r['peak_rss_mib']:.0f} MiB", (r["docs_per_s"], r["q_mean"]), fontsize=8)
    ax.set_xlabel(f"docs/s ({rows[0]['threads']} thread(s), 100 trec-rag24 passages)")
    ax.set_ylabel("mean of the three dev headlines")
    ax.set_title("Quality vs speed (point area: peak RSS)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--entry", action="append", required=True, help="NAME=PACKAGE_DIR=EVAL_JSON (the first is the baseline)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--out",
        default=None,
        help="write OUT.json (the result of record, rendered by python -m lab.render) and OUT.png",
    )
    args = ap.parse_args()
    rows = table([parse_entry(e) for e in args.entry], args.threads, args.repeats, args.rounds)
    md = markdown(rows)
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        plot(rows, args.out + ".png")


if __name__ == "__main__":
    main()
