"""What each INT8 scheme costs a trained student on dev, built by the real packager.

Each variant is a ``build_package`` of the same checkpoint (calibrated and verified on the
first 32 trec-rag24 dev queries, as ``ranker package --calibration ../shared/data/trec-rag24``
does by default), then evaluated through the SDK's ``Ranker`` (2 threads):

- ``fp32``: no quantization;
- ``dynamic/tensor``: dynamic activations, int8 word table with one scale (the first default);
- ``dynamic/fp32``: dynamic activations, fp32 word table (the previous bundled default);
- ``static/fp32``: static activations, fp32 word table;
- ``static/rows``: static activations, int8 word table with a scale per row (the default now);
- ``static/rows/8bit``: the same with 8-bit weights (``reduce_range`` off: exact only where the
  CPU has VNNI);
- ``static/rows/nosmooth``: the default without SmoothQuant.

Prints wikiqa dev MAP (the 126 answered questions), trec-rag24 dev nDCG@10, model size, and the
largest score change of a document alone vs batched (:func:`ranker_quantize.verify.batch_invariance`
over 10 dev queries)::

    python -m lab.benchmarks.int8_variants --model runs/default/students/hybrid [--json OUT]

``--calibration DIR=SPLIT`` calibrates (and verifies) on other data, e.g. ``../shared/data/wikiqa=train``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from ranker_eval.beir import load_groups, parse_source
from ranker_eval.metrics import average_precision, ndcg_at_k
from ranker_quantize import PackageOptions, QuantizeOptions, VerifyOptions, build_package
from ranker_quantize.verify import batch_invariance
from ranker_sdk import Ranker

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
VARIANTS = {
    "fp32": PackageOptions(precision="fp32"),
    "dynamic/tensor": PackageOptions(quantize=QuantizeOptions(activations="dynamic", embeddings="tensor")),
    "dynamic/fp32": PackageOptions(quantize=QuantizeOptions(activations="dynamic", embeddings="fp32")),
    "static/fp32": PackageOptions(quantize=QuantizeOptions(embeddings="fp32")),
    "static/rows": PackageOptions(),
    "static/rows/8bit": PackageOptions(quantize=QuantizeOptions(reduce_range=False)),
    "static/rows/nosmooth": PackageOptions(quantize=QuantizeOptions(smooth=None)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a student checkpoint folder")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--calibration",
        default=f"{DATA / 'trec-rag24'}=dev",
        metavar="DIR=SPLIT",
        help="the data static INT8 is calibrated and verified on (default: trec-rag24 dev)",
    )
    args = ap.parse_args()
    source = parse_source(args.calibration, "dev")
    if source is None:
        ap.error(f"--calibration {args.calibration!r}: expected DIR=SPLIT or DIR")
    cal_dir, cal_split = source
    wikiqa = [g for g in load_groups(DATA / "wikiqa", "dev") if any(g.labels)]
    trec = load_groups(DATA / "trec-rag24", "dev")
    verify = VerifyOptions(calibration=cal_dir, split=cal_split, threads=2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="int8-variants-") as tmp:
        for name in args.variants:
            options = VARIANTS[name]
            options = PackageOptions(precision=options.precision, quantize=options.quantize, verify=verify, force=True)
            result = build_package(args.model, Path(tmp) / name.replace("/", "-"), options)
            r = Ranker.load(result.path, threads=2)
            m = np.mean([average_precision(r.score(g.query, list(g.docs)), [y or 0 for y in g.labels]) for g in wikiqa])
            n = np.mean([ndcg_at_k(r.score(g.query, list(g.docs)), [y or 0 for y in g.labels], 10) for g in trec])
            inv = batch_invariance(result.path, trec[:10], threads=2)
            row = {
                "variant": name,
                "wikiqa_map": float(m),
                "trec_ndcg10": float(n),
                "model_mib": result.sizes["model_bytes"] / 2**20,
                "alone_vs_batched_max_diff": inv["max_abs_diff"],
                "top10_identical": inv["top10_identical"],
            }
            rows.append(row)
            print(
                f"{name:<16} wikiqa MAP {m:.4f}  trec nDCG@10 {n:.4f}  size {row['model_mib']:.1f} MiB  "
                f"alone vs batched max diff {inv['max_abs_diff']:.2g} (top-10 identical {inv['top10_identical']:.0%})",
                flush=True,
            )
    if args.json:
        record = {"model": args.model, "calibration": args.calibration, "rows": rows}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
