"""Ranking speed of a package through ``Ranker``, path by path, against torch fp32.

The workload and the measurement are :mod:`workload`'s (1 query x 100 trec-rag24 dev passages,
each configuration in its own process, p50/p99 of the whole call, peak RSS). Three SDK paths:

- ``sorted``: the SDK default (pairs sorted by length; a call holds at most 32 rows and 512
  padded tokens, padded to its own longest row);
- ``unsorted``: the naive path: calls of 32 pairs in input order, padded to the longest;
- ``unbatched``: one pair per model call.

With ``--model HF_DIR`` (the checkpoint the package was built from), the transformers + torch
fp32 baseline runs too, and every row gets its ratios against it at the same thread count.
Usage::

    python -m lab.benchmarks.bench_rank [--package PKG] [--model HF_DIR] [--threads 1 2] [--repeats 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from lab.benchmarks.workload import print_rows, run_worker, with_ratios

# path -> Ranker.load keyword arguments
PATHS = {
    "sorted": {},
    "unsorted": {"batch_size": 32, "max_batch_tokens": 10**9, "sort_by_length": False},
    "unbatched": {"batch_size": 1},
}


def measure(
    package: str | None = None,
    model: str | None = None,
    threads: Sequence[int] = (1, 2),
    repeats: int = 10,
    paths: Sequence[str] = tuple(PATHS),
) -> dict:
    """Measure ``package`` on the shared workload; the dict ``--json`` writes.

    Each configuration runs in its own fresh process (:func:`workload.run_worker`), so the caller's
    own imports (torch, in a build script) never count in the peak RSS. ``rows`` has one row per
    (thread count, path), then the torch fp32 baseline when ``model`` is given, each with its ratios
    against that baseline at the same thread count.
    """
    unknown = [p for p in paths if p not in PATHS]
    if unknown:
        raise ValueError(f"unknown path(s) {unknown}; expected some of {list(PATHS)}")
    rows = []
    for n in threads:
        for path in paths:
            r = run_worker("ranker", n, repeats, package=package, load_kwargs=PATHS[path])
            rows.append(r | {"name": f"sdk {path}", "path": path, "threads": n})
        if model:
            max_length = rows[-1]["max_length"]
            base = run_worker("torch", n, repeats, model=model, max_length=max_length)
            base |= {"name": "torch fp32 (batches of 32)", "path": "torch", "threads": n}
            for i, r in enumerate(rows):
                if r["threads"] == n:
                    rows[i] = with_ratios(r, base)
            rows.append(with_ratios(base, base))
    for r in rows:
        r.pop("scores", None)
        r["peak_rss_mb"] = r["peak_rss_mib"]  # the name older readers of --json use
    return {"threads": list(threads), "repeats": repeats, "package": package, "model": model, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="package dir or .tar.gz (default: the bundled one)")
    ap.add_argument("--model", default=None, help="the package's checkpoint: adds the torch fp32 baseline and ratios")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    result = measure(args.package, args.model, args.threads, args.repeats, args.paths)
    print(
        f"package: {args.package or '(bundled default)'}, 1 query x 100 trec-rag24 dev passages, "
        f"median of {args.repeats} calls; ratios against torch fp32 at the same thread count"
        if args.model
        else f"package: {args.package or '(bundled default)'}, 1 query x 100 trec-rag24 dev passages, "
        f"median of {args.repeats} calls (no --model: no torch baseline)"
    )
    print_rows(result["rows"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
