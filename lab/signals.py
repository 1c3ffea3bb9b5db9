"""Every teacher signal alone on every dev set, beside the random, BM25 and first-stage orders.

    python -m lab.signals --signals runs/signals --out lab/results/signals.json [--compute SPLADE ...] [--keep-recorded]

A signal is a TREC run: the ones a collection ships (``<data>/runs/*.run``: trec-dl's RepLLaMA-7B,
SPLADE++, TAS-B, ada-002, BM25) and the ones :mod:`ranker_training.signals` writes
(``<signals>/<data>/<NAME>.run``: E5, SPLADE-tiny, the bi-encoder). ``--compute`` scores the dev
sets with those signals first (resumable, cached). A signal that scored none of a set's queries
has no figure there (``-``). The figures are ``ranker eval``'s (``ranker_training.evaluate``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ranker_training.config import DataSource
from ranker_training.evaluate import evaluate_model
from ranker_training.signals import write_signal_runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV = (
    ("trec-dl", "train:dl21-", {}),
    ("trec-rag24", "dev", {}),
    ("wikiqa", "dev", {}),
    ("squad", "dev", {"with_positive": True, "max_queries": 300}),
)
BASELINES = ("random", "bm25", "first-stage")


def dev_sources(data: Path = DATA) -> list[DataSource]:
    return [DataSource(str(data / name), split, **extra) for name, split, extra in DEV]


def runs_of(src: DataSource, signals: Path) -> dict[str, Path]:
    """Signal name -> run file, for every run of ``src`` (shipped first, then computed here)."""
    root = Path(src.path)
    found = {p.stem: p for p in sorted((root / "runs").glob("*.run"))}
    found |= {p.stem: p for p in sorted((signals / root.name).glob("*.run"))}
    return found


def measure(signals: Path) -> dict:
    """``{model: {data set: ranker eval result}}`` for the baselines and every run found.

    The baselines are evaluated on all dev sets in one call, as ``ranker eval`` and the recipe do
    (the random order is seeded by the qid as that call spells it), each run on its own set.
    """
    sources = dev_sources()
    out: dict = {}
    for model in BASELINES:
        for res in evaluate_model(model, sources)["sources"]:
            out.setdefault(model, {})[Path(res["data"]).name] = res
    for src in sources:
        name = Path(src.path).name
        for model, path in runs_of(src, signals).items():
            res = evaluate_model(str(path), [src])["sources"][0]
            out.setdefault(model, {})[name] = res
            print(f"{model:28s} {name:10s} queries {res['queries']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signals", default="runs/signals", help="folder of computed signal runs")
    ap.add_argument("--compute", nargs="*", default=[], help="signals to compute on the dev sets first")
    ap.add_argument("--out", default="lab/results/signals.json")
    ap.add_argument(
        "--keep-recorded",
        action="store_true",
        help="a signal of --out whose runs are not in --signals (computed on another machine) keeps its recorded "
        "figures on the sets it has no run for; without it, the file holds only what is measured now",
    )
    args = ap.parse_args(argv)
    for name in args.compute:
        write_signal_runs(name, dev_sources(), args.signals, threads=2, chunk=256)
    results = measure(Path(args.signals))
    if args.keep_recorded and Path(args.out).is_file():
        recorded = json.loads(Path(args.out).read_text(encoding="utf-8"))
        for model, sets in recorded.items():
            results[model] = sets | results.get(model, {})
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
