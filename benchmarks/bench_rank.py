"""Ranking speed of a package: 1 query x 100 real trec-rag24 candidates, through `Ranker`.

Three paths, each in its own subprocess (so peak RSS is its own) and all in one command:

- ``sorted``: the SDK default (pairs sorted by length; a batch holds at most 32 rows and 512
  padded tokens and is padded to its own longest row);
- ``unsorted``: the naive path: batches of 32 in input order, each padded to its longest row;
- ``unbatched``: one pair per model call.

Prints docs/s, p50/p95 latency of the whole 100-candidate call and peak RSS per path, and the
ratios against the sorted default. Usage:

    python benchmarks/bench_rank.py [--package PKG] [--threads 1] [--repeats 20] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trec-rag24"
# path -> (batch_size, max_batch_tokens, sort_by_length)
PATHS = {"sorted": (32, 512, True), "unsorted": (32, 10**9, False), "unbatched": (1, 10**9, True)}


def candidates(n: int = 100) -> tuple[str, list[dict]]:
    """The first dev query and 100 real passages: its 20 candidates plus those of the next queries."""
    from ranker_sdk.beir import load_groups

    groups = load_groups(DATA, "dev")
    docs = [d for g in groups for d in g.docs][:n]
    return groups[0].query, docs


def run_one(package: str | None, path: str, threads: int, repeats: int) -> dict:
    import numpy as np

    from ranker_sdk import Ranker

    batch_size, max_tokens, sort = PATHS[path]
    query, docs = candidates()
    ranker = Ranker.load(package, threads=threads, batch_size=batch_size, max_batch_tokens=max_tokens,
                         sort_by_length=sort)
    ranker.score(query, docs)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ranker.score(query, docs)
        times.append(time.perf_counter() - t)
    t = np.array(times)
    return {
        "path": path,
        "docs": len(docs),
        "docs_per_s": len(docs) / float(np.median(t)),
        "p50_ms": float(np.percentile(t, 50) * 1e3),
        "p95_ms": float(np.percentile(t, 95) * 1e3),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="package dir or .tar.gz (default: the bundled one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print(json.dumps(run_one(args.package, args._child, args.threads, args.repeats)))
        return
    rows = []
    for path in PATHS:
        cmd = [sys.executable, __file__, "--_child", path, "--threads", str(args.threads), "--repeats", str(args.repeats)]
        if args.package:
            cmd += ["--package", args.package]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]
    print(f"package: {args.package or '(bundled default)'}, threads={args.threads}, 1 query x {base['docs']} docs")
    print(f"{'path':<10} {'docs/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'peak RSS MB':>12} {'speed vs sorted':>16}")
    for r in rows:
        r["speed_ratio_vs_sorted"] = r["docs_per_s"] / base["docs_per_s"]
        print(f"{r['path']:<10} {r['docs_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['peak_rss_mb']:>12.1f} {r['speed_ratio_vs_sorted']:>15.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
