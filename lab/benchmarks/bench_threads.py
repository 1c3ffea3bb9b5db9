"""``Ranker.load(threads=None)`` (onnxruntime's one thread per core) against ``threads=1``, idle and busy.

The default thread count is chosen from this: a ranker usually runs inside a search service whose
other requests keep every core busy. Each measurement runs :mod:`workload`'s request (1 query x
100 trec-rag24 dev passages) in a fresh process; "busy" starts one spinning process per core
beside it for the duration, like a loaded host. Each row is the median of ``--repeats`` calls,
with its ratio against ``threads=1`` under the same load, measured in the same command.

Usage::

    python -m lab.benchmarks.bench_threads [--package PKG] [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lab.benchmarks.workload import ROOT, load_workload


def _spin() -> None:
    while True:
        pass


def _worker(package: str | None, threads: int | None, repeats: int) -> float:
    """In this process: p50 seconds of the request after one warm-up call."""
    from ranker_sdk import Ranker

    ranker = Ranker.load(package, threads=threads)
    w = load_workload(title_separator=ranker.config.title_separator)
    ranker.score(w.query, w.docs)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        ranker.score(w.query, w.docs)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _measure(package: str | None, threads: int | None, repeats: int) -> float:
    """p50 seconds of the whole request with ``threads`` (None: the SDK default), in a fresh process."""
    cmd = [
        sys.executable,
        "-m",
        "lab.benchmarks.bench_threads",
        "--worker",
        str(threads or 0),
        "--repeats",
        str(repeats),
    ]
    cmd += ["--package", package] if package else []
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return float(proc.stdout.split()[-1])


def measure(package: str | None = None, repeats: int = 5) -> dict:
    cores = os.cpu_count() or 1
    rows = []
    for load in ("idle", "busy"):
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(cores if load == "busy" else 0)]
        for p in spinners:
            p.start()
        try:
            one = _measure(package, 1, repeats)
            default = _measure(package, None, repeats)
        finally:
            for p in spinners:
                p.terminate()
                p.join()
        rows.append({"load": load, "threads_1_s": one, "default_s": default, "default_over_1": default / one})
    return {"cores": cores, "repeats": repeats, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", default=None, help="package dir or .tar.gz (default: the bundled package)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # threads, 0: default
    args = ap.parse_args()
    if args.worker is not None:
        print(_worker(args.package, args.worker or None, args.repeats))
        return
    res = measure(args.package, args.repeats)
    print(f"{res['cores']} cores, p50 of {res['repeats']} calls (1 query x 100 passages)")
    for r in res["rows"]:
        print(
            f"  {r['load']:<5} threads=1 {r['threads_1_s']:.3f}s  default (one per core) {r['default_s']:.3f}s  "
            f"default/1 = {r['default_over_1']:.2f}x"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
