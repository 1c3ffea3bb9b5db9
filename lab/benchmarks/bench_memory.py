"""Peak memory of hostile-sized calls: many candidates in one call, and a huge query.

Each case runs in its own fresh process: load the package, warm up on 50 docs, then record how
much the process's peak RSS grows during the measured call. Every case is measured twice in the
same command: with ``Ranker.load``'s defaults, and with the bound under test lifted through its
documented keyword (the baseline):

- ``docs``: N candidates in one ``score`` call. SDK: encoded and scored ``chunk_docs`` (256) at a
  time. Baseline: ``chunk_docs`` beyond N, so all N are encoded before the first model call.
- ``query``: a 10 MB query against 2 docs. SDK: cut to ``query_max_tokens x query_chars_per_token``
  characters before tokenizing. Baseline: ``query_chars_per_token`` huge, so the whole query is
  tokenized.

    python -m lab.benchmarks.bench_memory [--package PKG] [--docs 10000] [--chars 300] [--out lab/results/bench_memory.json]

Docs are trec-rag24 passages (cut to ``--chars`` characters to keep the run short on a CPU),
repeated to reach N: memory per doc is what is measured, not the text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "trec-rag24" / "corpus.jsonl"

CHILD = """
import json, resource, sys, time
from ranker_sdk import Ranker
package, n, chars, case, baseline = sys.argv[1] or None, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
lifted = {"docs": {"chunk_docs": 10**12}, "query": {"query_chars_per_token": 10**12}}[case] if baseline else {}
ranker = Ranker.load(package, threads=1, **lifted)
pool = []
with open(sys.argv[6], encoding="utf-8") as fh:
    for line in fh:
        pool.append(json.loads(line)["text"][:chars])
        if len(pool) == 500:
            break
ranker.score("warm up", pool[:50])
docs = (pool * (n // len(pool) + 1))[:n]
query = "inflation " * 1_000_000 if case == "query" else "school lunch prices"
docs = docs if case == "docs" else docs[:2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
ranker.score(query, docs)
seconds = time.perf_counter() - t0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mb": after / 1024, "growth_mb": (after - before) / 1024, "seconds": seconds}))
"""


def measure(package: str | None, n: int, chars: int, case: str, baseline: bool) -> dict:
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(CHILD),
            package or "",
            str(n),
            str(chars),
            case,
            "1" if baseline else "0",
            str(DATA),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        sys.exit(f"error: the {case} case failed:\n{r.stderr}")
    return json.loads(r.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="package (default: the bundled one)")
    ap.add_argument("--docs", type=int, default=10_000, help="candidates in the one call (default: 10000)")
    ap.add_argument("--chars", type=int, default=300, help="characters kept of each passage (default: 300)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if not DATA.is_file():
        sys.exit(f"error: no trec-rag24 corpus at {DATA}")

    results = {"package": args.package or "bundled default", "docs": args.docs, "chars": args.chars, "cases": {}}
    for case in ("docs", "query"):
        sdk = measure(args.package, args.docs, args.chars, case, baseline=False)
        base = measure(args.package, args.docs, args.chars, case, baseline=True)
        results["cases"][case] = {
            "sdk": sdk,
            "baseline": base,
            "growth_ratio": sdk["growth_mb"] / max(base["growth_mb"], 1e-9),
            "time_ratio": sdk["seconds"] / max(base["seconds"], 1e-9),
        }
        what = f"{args.docs} docs in one call" if case == "docs" else "a 10 MB query"
        print(
            f"{what}: peak RSS {sdk['peak_rss_mb']:.0f} MB (baseline {base['peak_rss_mb']:.0f} MB, "
            f"{sdk['peak_rss_mb'] / base['peak_rss_mb']:.2f}x), growth during the call "
            f"{sdk['growth_mb']:.1f} MB (baseline {base['growth_mb']:.1f} MB), {sdk['seconds']:.2f} s "
            f"(baseline {base['seconds']:.2f} s, {results['cases'][case]['time_ratio']:.2f}x)",
            flush=True,
        )
    results["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
