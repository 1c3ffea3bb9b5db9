"""Packages of one checkpoint vs the same weights in transformers + torch fp32, in one command.

The workload and the measurement are :mod:`workload`'s: 1 query x 100 trec-rag24 dev passages,
each configuration in its own process (so peak RSS is its own), p50/p99 latency of the whole
call, docs/s, at each ``--threads``. The baseline is torch fp32 on the checkpoint the packages
were built from, CrossEncoder-style (batches of 32 in input order, padded to the batch's longest
row, truncated to the package's ``max_length``). Every package row shows:

- its speed, p50 and peak-RSS ratios against torch at the same thread count;
- **Spearman** of its 100 scores against torch's (the fp32 reference, same inputs): what the
  speed costs in ranking.
- ``cpu_speed_x``: the same speed ratio from process CPU time per call, which still measures
  the work of a call when other jobs share the cores (at 1 thread on an idle machine it equals
  ``speed_x``).

Usage::

    ranker package --model HF_DIR --out /tmp/static --calibration ../shared/data/trec-rag24
    ranker package --model HF_DIR --out /tmp/dynamic --calibration ../shared/data/trec-rag24 --set activations=dynamic
    python -m lab.benchmarks.bench_vs_torch --model HF_DIR --package static=/tmp/static dynamic=/tmp/dynamic \\
        [--threads 1 2] [--repeats 10] [--json lab/results/bench_vs_torch.json]

Target (issue 11): ``ranker package`` defaults >= 5x torch's docs/s at Spearman >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ranker_eval.metrics import spearman

from lab.benchmarks.workload import print_rows, run_worker, with_ratios


def _packages(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        out.append((name, path) if sep else (Path(spec).name, spec))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="the checkpoint the packages were built from")
    ap.add_argument("--package", nargs="+", required=True, metavar="[NAME=]PKG", help="packages to compare")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    rows = []
    for threads in args.threads:
        mine = []
        for name, path in _packages(args.package):
            mine.append(
                run_worker("ranker", threads, args.repeats, package=path)
                | {"name": name, "package": path, "threads": threads}
            )
        lengths = {r["max_length"] for r in mine}
        if len(lengths) > 1:
            sys.exit(f"error: the packages keep different max_length {sorted(lengths)}; compare like with like")
        base = run_worker("torch", threads, args.repeats, model=args.model, max_length=lengths.pop())
        base |= {"name": "torch fp32 (batches of 32)", "threads": threads}
        for r in mine:
            rows.append(with_ratios(r, base) | {"spearman": spearman(r["scores"], base["scores"])})
        rows.append(with_ratios(base, base) | {"spearman": 1.0})
    print(
        f"1 query x 100 trec-rag24 dev passages, max_length {rows[0]['max_length']}, median of {args.repeats} "
        "calls; ratios and Spearman against torch fp32 at the same thread count"
    )
    print_rows(rows, extra=("spearman", "cpu_speed_x"))
    for r in rows:
        r.pop("scores", None)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"model": args.model, "repeats": args.repeats, "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
