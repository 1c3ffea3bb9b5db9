"""Refit the bundled default's first-stage fusion rule max-min on the dev sets, and install it.

    python -m lab.default_fusion [--threads 2]

A user compares a reranker with the order they already have, so the bundled rule is judged on its
worst dev set: the fused order must be at or above the first-stage order on every one. The weight
is the one whose smallest gain over a set's own first stage is largest (``ranker fusion
--objective maxmin --unjudged irrelevant``); where no weight keeps every set at or above its
first stage, ``ranker.json`` says so (``fusion.never_below_first_stage``) and so does the card.

1. Fits the rule on the dev sets whose candidate order is a first stage a user would have
   (trec-rag24 dev, trec-dl DL21) and wikiqa dev (its order is the paragraph's: fusion must not
   hurt there either), through :func:`ranker_quantize.refit_package`, the front door of
   ``ranker fusion``.
2. Evaluates the refitted package fused with the first stage on every dev set, squad included
   (``ranker eval --first-stage``'s :func:`ranker_training.evaluate.evaluate_model`), and records
   the fused row in ``lab/results/default.json`` and the fused figures in ``lab/default_record.json``.
3. Writes the package to ``--out`` with its model card rendered again from that record, so the
   card, ``ranker info`` and the README (``python -m lab.render``) state one value per figure.

The model and its weights are untouched: ``model.onnx`` and ``tokenizer.json`` are copied as
verified, and only the ``fusion`` object of ``ranker.json`` changes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from lab import report
from lab.build_default import DEFAULT, FUSION_DATA, RECORD, ROOT, card_notes, dev_sources, headlines
from lab.render import default_speed

__all__ = ["RECORD", "fused_card", "install", "main"]

RESULTS = ROOT / "lab" / "results" / "default.json"
# The columns the card's table shows: those the shipped default was evaluated on alone.
CARD_COLUMNS = ("dl_ndcg10_trec", "rag_ndcg10", "rag_pnr", "wikiqa_map", "wikiqa_mrr")


def fused_card(package: dict, record: dict, table: list[dict]) -> str:
    """The bundled default's model card from its record, its ``ranker.json`` and the results table."""
    from ranker_quantize.card import CardData, render_model_card

    return render_model_card(
        CardData(
            train_config=record["train_config"],
            layers=record["layers"],
            package=package,
            teacher=record["teacher"],
            figures=record["figures"],
            speed=record["speed"],
            notes=card_notes(),
            how=record["how"],
            results_table=report.markdown(table, columns=CARD_COLUMNS),
            merge=record.get("merge"),
        )
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=str(DEFAULT), help="the package to refit (default: the bundled one)")
    ap.add_argument("--out", default=str(DEFAULT), help="where the refitted package goes (default: in place)")
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: one per core)")
    ap.add_argument(
        "--card-only",
        action="store_true",
        help="no refit: render the package's card again from the record and the results table (after editing them)",
    )
    args = ap.parse_args(argv)
    if args.card_only:
        install(args.package, args.out)
        return

    from ranker_quantize.fusion import FitOptions, refit_package
    from ranker_training.evaluate import evaluate_model
    from tqdm import tqdm

    with tempfile.TemporaryDirectory() as tmp:
        bar = tqdm(desc="fit", unit="query")
        refit, fusion = refit_package(
            args.package,
            Path(tmp) / "refit",
            FUSION_DATA,
            FitOptions(objective="maxmin", unjudged="irrelevant"),
            threads=args.threads,
            progress=lambda done, total: (setattr(bar, "total", total), bar.update(done - bar.n)),
        )
        bar.close()
        print(f"fusion: weight {fusion['weight']:g}, never below the first stage: {fusion['never_below_first_stage']}")
        fused = evaluate_model(str(refit), dev_sources(), k=10, first_stage=True)
        record = json.loads(RECORD.read_text(encoding="utf-8"))
        record["figures"]["fused"] = {k: v for k, v in headlines(fused).items() if k in record["figures"]["int8"]}
        table = [r for r in json.loads(RESULTS.read_text(encoding="utf-8")) if r["model"] != "shipped_int8_fused"]
        label = {"shipped_int8_fused": "**shipped, fused with the first stage**"}
        table += report.rows({"shipped_int8_fused": fused}, labels=label)
        install(refit, args.out, record, table)
    for (data, measure), v in report.headlines(fused).items():
        print(f"  {data} {measure}: fused {v:.4f}")
    print(f"wrote {args.out}, {RECORD.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}; now run python -m lab.render")


def install(package: str | Path, out: str | Path, record: dict | None = None, table: list | None = None) -> None:
    """Write ``package`` to ``out`` with its card rendered from the record and the results table
    (``record`` / ``table``: their new contents; None reads them as they are), and write both back."""
    from ranker_quantize.package import write_package
    from ranker_sdk.package import read_package

    loaded = read_package(package)
    record = record if record is not None else json.loads(RECORD.read_text(encoding="utf-8"))
    table = table if table is not None else json.loads(RESULTS.read_text(encoding="utf-8"))
    # The speed of record is the Pareto measurement's (the README's too), so one figure has one value.
    speed = default_speed()
    record["speed"] = {
        "docs_per_s": speed["docs_per_s"],
        "peak_rss_mib": speed["peak_rss_mib"],
        "command": "`python -m lab.benchmarks.pareto`, 1 query x 100 trec-rag24 passages, 1 thread",
    }
    RECORD.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for row in table:
        if row["model"] == "shipped_int8":
            row["docs_per_s"] = speed["docs_per_s"]
    RESULTS.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    card = fused_card(loaded.config.to_dict(), record, table)
    files = {k: v for k, v in loaded.files.items() if k in ("model.onnx", "tokenizer.json")}
    files["MODEL_CARD.md"] = card.encode("utf-8")
    with tempfile.TemporaryDirectory(dir=Path(out).resolve().parent) as tmp:
        staged = write_package(Path(tmp) / "pkg", files, loaded.config)  # whole before the old one goes
        if Path(out).exists():
            shutil.rmtree(out)
        shutil.move(str(staged), str(out))


if __name__ == "__main__":
    main()
