"""Packages side by side on the shared workload (lab/benchmarks/workload.py), as ratios to the first.

    python -m lab.benchmarks.bench_packages --package BASELINE_PKG --package PKG [...] [--threads 1] [--repeats 10] [--rounds 2]

Each package is measured in a process of its own (so its peak RSS is its own), the packages
taking turns for ``--rounds`` rounds so that load on a shared machine falls on all of them alike;
each figure is the best round's (highest docs/s). The first package is the baseline of the
ratios. Prints one line each and, with ``--json``, writes the rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.benchmarks.workload import print_rows, run_worker, with_ratios


def measure_packages(packages: list[str], threads: int = 1, repeats: int = 10, rounds: int = 2) -> list[dict]:
    """Each package's best round on the workload (fresh process each), with ratios to the first."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for pkg in packages:
            row = run_worker("ranker", threads, repeats, package=pkg)
            if pkg not in best or row["docs_per_s"] > best[pkg]["docs_per_s"]:
                best[pkg] = row
    base = best[packages[0]]
    rows = [with_ratios(best[p] | {"name": Path(p).name, "package": p, "threads": threads}, base) for p in packages]
    for r in rows:
        r.pop("scores", None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", action="append", required=True, help="package dir (repeat; the first is the baseline)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = measure_packages(args.package, args.threads, args.repeats, args.rounds)
    print_rows(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
