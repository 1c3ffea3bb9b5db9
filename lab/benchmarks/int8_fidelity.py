"""How closely each INT8 scheme ranks like its fp32 graph, measured without labels.

The INT8 gate (docs/ship-rules.md) reads dev labels; choosing the quantization scheme on those
same labels would tune it to dev noise. This bench chooses it on **agreement with fp32 only**,
on queries of the four sources' **train** splits (trec-dl without DL21, trec-rag24, wikiqa,
squad; labels never read): per query, the Spearman correlation of the two score lists and the
overlap of their top 10 (:func:`ranker_quantize.verify.fidelity_report`), averaged per source.

Every variant is a real ``build_package`` of the same checkpoint, calibrated as
``python -m lab.build_default`` calibrates the default (the first 45 trec-rag24 dev queries,
512 pairs), then scored through the SDK's ``Ranker`` (2 threads) on ``--queries`` queries per
source, spread over the split, each cut to its first ``--candidates`` first-stage candidates.
Each variant's time to score that set is reported as a ratio to the first variant's, measured
in this same process::

    python -m lab.benchmarks.int8_fidelity --model runs/e5s/wise --json lab/results/int8_fidelity_e5.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from ranker_eval.beir import load_groups
from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions, build_package
from ranker_quantize.verify import fidelity_report, score_groups
from ranker_sdk import Ranker

from lab.build_default import CALIBRATION

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SOURCES = (("trec-dl", "train:!dl21-"), ("trec-rag24", "train"), ("wikiqa", "train"), ("squad", "train"))
VARIANTS = {
    "smooth 0.8": QuantizeOptions(),
    "smooth 0.5": QuantizeOptions(smooth=0.5),
    "no smooth": QuantizeOptions(smooth=None),
    "smooth 0.8, GELU smoothed": QuantizeOptions(ffn_output="smooth"),
    "smooth 0.5, GELU smoothed": QuantizeOptions(smooth=0.5, ffn_output="smooth"),
    "smooth 0.8, FFN output fp32": QuantizeOptions(ffn_output="fp32"),
}
VERIFY = VerifyOptions(**CALIBRATION, threads=2)


def unlabelled_groups(queries: int, candidates: int) -> dict[str, list]:
    """``{source/split: groups}``: ``queries`` groups spread over each train split, labels dropped."""
    out = {}
    for name, split in SOURCES:
        groups = [g for g in load_groups(DATA / name, split) if len(g.docs) >= 2]
        step = max(1, len(groups) // queries)
        out[f"{name}/{split}"] = [
            replace(
                g,
                doc_ids=g.doc_ids[:candidates],
                docs=g.docs[:candidates],
                labels=(None,) * min(candidates, len(g.docs)),
            )
            for g in groups[::step][:queries]
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a student checkpoint folder")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--queries", type=int, default=24, help="queries per source (default 24)")
    ap.add_argument("--candidates", type=int, default=30, help="first-stage candidates per query (default 30)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sets = unlabelled_groups(args.queries, args.candidates)
    rows, base_s = [], None
    with tempfile.TemporaryDirectory(prefix="int8-fidelity-") as tmp:
        fp32 = build_package(
            args.model, Path(tmp) / "fp32", PackageOptions(precision="fp32", verify=VERIFY, force=True)
        )
        ref_ranker = Ranker.load(fp32.path, threads=2)
        reference = {name: score_groups(ref_ranker, groups) for name, groups in sets.items()}
        del ref_ranker
        for i, name in enumerate(args.variants):
            options = PackageOptions(quantize=VARIANTS[name], verify=VERIFY, force=True)
            result = build_package(args.model, Path(tmp) / f"v{i}", options)
            ranker = Ranker.load(result.path, threads=2)
            start = time.perf_counter()
            scored = {s: score_groups(ranker, groups) for s, groups in sets.items()}
            seconds = time.perf_counter() - start
            base_s = base_s or seconds
            per_set = {s: fidelity_report(reference[s], scored[s], sets[s], data=s) for s in sets}
            row = {
                "variant": name,
                "method": VARIANTS[name].method(),
                "top10_overlap": float(np.mean([r["top10_overlap"]["mean"] for r in per_set.values()])),
                "spearman": float(np.mean([r["spearman"]["mean"] for r in per_set.values()])),
                "per_set": {
                    s: {"top10_overlap": r["top10_overlap"]["mean"], "spearman": r["spearman"]["mean"]}
                    for s, r in per_set.items()
                },
                "model_mib": result.sizes["model_bytes"] / 2**20,
                "scoring_time_ratio": seconds / base_s,
            }
            rows.append(row)
            sets_text = "  ".join(f"{s.split('/')[0]} {v['top10_overlap']:.3f}" for s, v in row["per_set"].items())
            print(
                f"{name:<28} top-10 overlap {row['top10_overlap']:.4f}  Spearman {row['spearman']:.4f}  "
                f"({sets_text})  {row['model_mib']:.1f} MiB  time x{row['scoring_time_ratio']:.2f}",
                flush=True,
            )
    if args.json:
        record = {
            "model": args.model,
            "sets": {s: len(g) for s, g in sets.items()},
            "candidates": args.candidates,
            "calibration": "trec-rag24/dev, first 45 queries, 512 pairs",
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
