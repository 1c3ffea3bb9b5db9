"""The results table: every model and baseline on every dev set, as markdown, JSON and a plot.

Input is what ``ranker eval --json`` prints (or a recipe's ``eval/<name>.json``): one result per
model, each with a ``sources`` list. A row per model; a column per headline measure:

- trec-dl dev (DL21): nDCG@10 as trec_eval computes it (gain = grade, unjudged = not relevant),
  the figure TREC DL papers report;
- trec-rag24 dev: nDCG@10 (gain ``2**grade - 1`` over the judged candidates) and PNR;
- wikiqa dev: MAP and MRR over the questions that have a correct sentence;
- docs/s where a speed figure is given.

A cell is ``-`` where the model was not evaluated on that set, or covers none of its queries
(the teacher's own scores exist only where an external ranker scored the queries).

Example:
    >>> r = {"sources": [{"data": "d/wikiqa", "split": "dev", "map": 0.5, "mrr": 0.6, "queries": 2}]}
    >>> rows({"m": r})[0]["wikiqa_map"]
    0.5
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["COLUMNS", "HEADLINES", "headlines", "rows", "markdown", "plot", "write"]

# (row key, data set folder, measure in the result, column title)
COLUMNS = (
    ("dl_ndcg10_trec", "trec-dl", "ndcg@10_trec", "trec-dl DL21 nDCG@10 (trec_eval)"),
    ("rag_ndcg10", "trec-rag24", "ndcg@10", "trec-rag24 nDCG@10"),
    ("rag_pnr", "trec-rag24", "pnr", "trec-rag24 PNR"),
    ("wikiqa_map", "wikiqa", "map", "wikiqa MAP"),
    ("wikiqa_mrr", "wikiqa", "mrr", "wikiqa MRR"),
    ("squad_mrr10", "squad", "mrr@10_trec", "squad MRR@10 (trec_eval)"),
)


# The one figure per dev set that picks and compares models: (data set folder, measure).
HEADLINES = (("trec-dl", "ndcg@10_trec"), ("trec-rag24", "ndcg@10"), ("wikiqa", "map"), ("squad", "mrr@10_trec"))


def _source(result: dict, name: str) -> dict:
    s = next((s for s in result.get("sources", ()) if Path(s["data"]).name == name), {})
    return s if s.get("queries") else {}


def headlines(result: dict) -> dict[tuple[str, str], float]:
    """``(data set, measure) -> value`` of the :data:`HEADLINES` in one result; a set that was not
    evaluated, or covers no query, is left out.

    >>> headlines({"sources": [{"data": "d/wikiqa", "split": "dev", "map": 0.5, "queries": 2}]})
    {('wikiqa', 'map'): 0.5}
    """
    out = {}
    for data, measure in HEADLINES:
        s = _source(result, data)
        if s:
            out[(data, measure)] = s[measure]
    return out


def rows(
    results: dict[str, dict], speed: dict[str, float] | None = None, labels: dict[str, str] | None = None
) -> list[dict]:
    """One row per model of ``results`` (name -> ``ranker eval`` result), in the given order."""
    speed, labels = speed or {}, labels or {}
    out = []
    for name, res in results.items():
        row: dict = {"model": name, "label": labels.get(name, name)}
        for key, data, measure, _ in COLUMNS:
            row[key] = _source(res, data).get(measure)
        row["queries"] = {d: _source(res, d).get("queries") for d in ("trec-dl", "trec-rag24", "wikiqa", "squad")}
        row["docs_per_s"] = speed.get(name)
        out.append(row)
    return out


def markdown(table: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """The rows as a markdown table (3 decimals; PNR 2), of ``columns`` (row keys; default: all)."""
    cols = [c for c in COLUMNS if columns is None or c[0] in columns]
    lines = [_row(["model", *(t for *_, t in cols), "docs/s (1 thread)"]), "|---" * (len(cols) + 2) + "|"]
    for r in table:
        cells = []
        for key, _, measure, _ in cols:
            v = r.get(key)
            cells.append("-" if v is None else f"{v:.2f}" if measure == "pnr" else f"{v:.3f}")
        sp = "-" if r["docs_per_s"] is None else f"{r['docs_per_s']:.1f}"
        lines.append(_row([r["label"], *cells, sp]))
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    """One markdown table row: ``| a | b |``."""
    return "".join(f"| {c} " for c in cells) + "|"


def plot(table: list[dict], path: str | Path) -> None:
    """Bars per model: trec-dl nDCG@10 (trec_eval), trec-rag24 nDCG@10, wikiqa MAP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = (
        ("dl_ndcg10_trec", "trec-dl DL21 nDCG@10"),
        ("rag_ndcg10", "trec-rag24 nDCG@10"),
        ("wikiqa_map", "wikiqa MAP"),
    )
    x = np.arange(len(table))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, (key, label) in enumerate(keys):
        ax.bar(x + (i - 1) * 0.27, [r[key] or 0 for r in table], width=0.27, label=label)
    ax.set_xticks(x, [r["model"] for r in table], rotation=25, ha="right")
    ax.set_ylim(0.0, 1.0)
    ax.legend(loc="upper left", ncols=3)
    ax.set_title("Dev-split quality by model (0 = not measured)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(table: list[dict], prefix: str | Path) -> str:
    """Write ``prefix.json`` (the result of record, rendered by ``python -m lab.render``) and
    ``prefix.png``; returns the markdown."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    md = markdown(table)
    Path(prefix + ".json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    plot(table, prefix + ".png")
    return md


LABELS = {
    "random": "random order",
    "bm25": "BM25 over the candidates",
    "first-stage": "first-stage order (candidates.run)",
    "teacher": "teacher target (fitted signal weights, no labels)",
    "e5_teacher": "teacher target with E5 (weights fitted on train labels; E5 orders trec-dl's unretrieved candidates;"
    " squad with its bi-encoder's dev run, as trained), no labels",
    "hybrid_labels": "student: hybrid + labels (fp32)",
    "hybrid_labels_wise05": "that student, WiSE-FT: 0.5 x its weights + 0.5 x the bi-encoder as it ships (fp32)",
    "hybrid_labels_wise07": "that student, WiSE-FT: 0.7 x its weights + 0.3 x the bi-encoder as it ships (fp32)",
    "hybrid_labels_freeze3": "student: hybrid + labels, embeddings and layers 1-3 frozen (fp32)",
    "hybrid_labels_freeze5": "student: hybrid + labels, embeddings and layers 1-5 frozen (fp32)",
    "hybrid_labels_e5": "student: hybrid + labels, teacher with E5 (fp32)",
    "hybrid_labels_e5_floor": "student: hybrid + labels, teacher with E5 and E5 ordering trec-dl's floor (fp32)",
    "e5_zero": "multilingual-e5-small (English-Portuguese vocabulary) as a segmented student, untrained (fp32)",
    "e5_dist": "student started from E5: hybrid + labels, the E5 teacher with its floor order, 300 steps (fp32)",
    "e5_wise": "that student, WiSE-FT: 0.5 x its weights + 0.5 x E5 as it ships (fp32)",
    "e5_wise_int8": "that merge as a static INT8 package (ranker package's defaults; fails the gate on wikiqa and squad)",
    "e5_wise_int8_ffn": "that merge as INT8 with its FFN output MatMuls fp32 (passes the gate: the shipped default)",
    "previous_default": "the previous default (MiniLM student, INT8), measured again with these sets",
    "e5_lr5e6": "student started from E5 as e5_dist, at a quarter of its step size (lr 5e-6; fp32)",
    "e5_sq_teacher": "teacher target, squad's by E5 alone (the fit on squad's judged pairs), no labels",
    "e5_wise_sq": "e5_wise's recipe, squad's target E5 alone with the grade mixed in (fp32)",
    "e5_sq2_teacher": "teacher target, squad's by BM25's order, the bi-encoder and E5 at equal weights, no labels",
    "e5_wise_sq2": "e5_wise's recipe, squad's target BM25 + bi-encoder + E5, its grades not mixed in (fp32)",
    "x_dist": "student started from E5 as e5_dist, with two interaction blocks (cross-attention) over it (fp32)",
    "x_wise": "that student, WiSE-FT: 0.5 x its weights + 0.5 x E5 as it ships, gates halved (fp32)",
    "trec_dl_only": "student on trec-dl alone: hybrid + labels, 300 steps (fp32)",
    "trec_dl_only_margin": "student on trec-dl alone: margin-MSE on per-query z-scores, 300 steps (fp32)",
}


def main(argv: list[str] | None = None) -> None:
    """``python -m lab.report --run RUN --out FILE [--keep]``: the rows of every ``RUN/eval/*.json`` as JSON."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--run", required=True, help="a recipe's output folder (its eval/ holds ranker eval JSON)")
    ap.add_argument("--out", required=True, help="the rows, as JSON")
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the rows already in --out that RUN does not measure (runs measured elsewhere); RUN's replace theirs",
    )
    args = ap.parse_args(argv)
    found = {p.stem: p for p in sorted((Path(args.run) / "eval").glob("*.json")) if not p.stem.startswith("teacher_")}
    results = {n: json.loads(p.read_text(encoding="utf-8")) for n, p in found.items()}
    labels = LABELS | {n: f"student {n} (fp32)" for n in found if n not in LABELS}
    new = {r["model"]: r for r in rows(results, labels=labels)}
    old = json.loads(Path(args.out).read_text(encoding="utf-8")) if args.keep and Path(args.out).is_file() else []
    table = {r["model"]: r for r in old} | new
    order = [n for n in LABELS if n in table] + [n for n in table if n not in LABELS]
    Path(args.out).write_text(json.dumps([table[n] for n in order], indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
