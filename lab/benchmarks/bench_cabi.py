"""What the C ABI costs over the Python SDK: start-up, rk_open and rk_score of 100 real passages.

Builds libranker.so (or uses --lib-dir), compiles ``bench_cabi.c`` against it and runs it with
an empty environment; then runs the same calls with the Python SDK in a fresh interpreter. Both
use one onnxruntime thread, the same package, query and passages (100 trec-rag24 passages:
the dev candidates of the first queries, in run order, scored for the first query).

    python -m lab.benchmarks.bench_cabi --package PKG [--repeats 30] [--json lab/results/cabi.json]

Reported (milliseconds, median and p90 over --repeats calls after one warm-up call):
- start: C, the first call (interpreter start + imports, measured as rk_open of a missing
  package); Python, ``import ranker_sdk`` in a fresh interpreter (its own start not counted).
- open: ``rk_open`` / ``Ranker.load``.
- score: ``rk_score`` / ``Ranker.score`` of the 100 passages; the difference is the ABI's
  per-call overhead (UTF-8 decoding, the GIL hand-over, copying scores out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("RANKER_DATA", HERE.parents[2] / "shared" / "data"))

_PY_SIDE = textwrap.dedent(
    """
    import json, sys, time
    pkg, query, docs_file, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    docs = open(docs_file, encoding="utf-8").read().split("\\n")[:-1]
    t = time.perf_counter(); import ranker_sdk; start = time.perf_counter() - t
    t = time.perf_counter(); r = ranker_sdk.Ranker.load(pkg, threads=1); open_ = time.perf_counter() - t
    t = time.perf_counter(); r.score(query, docs); first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); s = r.score(query, docs); times.append(time.perf_counter() - t)
    print(json.dumps({"start_ms": start * 1e3, "open_ms": open_ * 1e3, "first_score_ms": first * 1e3,
                      "score_ms": [x * 1e3 for x in times], "scores": s.tolist()}))
    """
)


def passages(n: int) -> tuple[str, list[str]]:
    from ranker_eval.beir import load_groups

    groups = load_groups(DATA / "trec-rag24", "dev")
    docs = [" ".join(d["text"].split()) for g in groups for d in g.docs][:n]
    if len(docs) < n:
        sys.exit(f"only {len(docs)} passages in {DATA / 'trec-rag24'}")
    return groups[0].query, docs


def parse_c(stdout: str) -> dict:
    out: dict = {}
    for line in stdout.splitlines():
        key, *vals = line.split()
        out[key] = [float(v) for v in vals] if key in ("score_ms", "scores") else float(vals[0])
    return out


def summary(ms: list[float]) -> str:
    return f"{np.median(ms):8.2f} (p90 {np.percentile(ms, 90):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", default=None, help="package dir or .tar.gz (default: the bundled package)")
    ap.add_argument("--lib-dir", default=None, help="a folder from `ranker bindings build` (default: build one)")
    ap.add_argument("--n-docs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    if args.package is None:
        from ranker_sdk.ranker import default_package_path

        if default_package_path() is None:
            sys.exit("no default package is bundled: pass --package PKG")
        args.package = str(default_package_path())

    query, docs = passages(args.n_docs)
    with tempfile.TemporaryDirectory(prefix="bench-cabi-") as tmp:
        tmp = Path(tmp)
        lib_dir = Path(args.lib_dir) if args.lib_dir else tmp / "lib"
        if not args.lib_dir:
            from ranker_bindings import build_library

            build_library(lib_dir)
        exe = tmp / "bench_cabi"
        subprocess.run(
            [
                "gcc",
                "-O2",
                str(HERE / "bench_cabi.c"),
                f"-I{lib_dir}",
                f"-L{lib_dir}",
                "-lranker",
                f"-Wl,-rpath,{lib_dir.resolve()}",
                "-o",
                str(exe),
            ],
            check=True,
        )
        docs_file = tmp / "docs.txt"
        docs_file.write_text("".join(d + "\n" for d in docs), encoding="utf-8")
        argv = [args.package, query, str(docs_file), str(args.repeats)]
        c = subprocess.run([str(exe), *argv], capture_output=True, text=True, env={})
        if c.returncode != 0:
            sys.exit(f"bench_cabi failed:\n{c.stderr}")
        c_res = parse_c(c.stdout)
        py = subprocess.run([sys.executable, "-c", _PY_SIDE, *argv], capture_output=True, text=True, check=True)
        py_res = json.loads(py.stdout)

    diff = float(np.max(np.abs(np.array(c_res["scores"]) - np.array(py_res["scores"]))))
    rows = [
        ("start (first call / import ranker_sdk)", [c_res["start_ms"]], [py_res["start_ms"]]),
        ("open (rk_open / Ranker.load)", [c_res["open_ms"]], [py_res["open_ms"]]),
        (f"first score, {len(docs)} docs", [c_res["first_score_ms"]], [py_res["first_score_ms"]]),
        (f"score, {len(docs)} docs", c_res["score_ms"], py_res["score_ms"]),
    ]
    print(f"package {args.package}; {len(docs)} trec-rag24 passages; 1 onnxruntime thread; {args.repeats} repeats")
    print(f"{'ms':40} {'C ABI':>24} {'Python SDK':>24}")
    for name, cm, pm in rows:
        print(f"{name:40} {summary(cm):>24} {summary(pm):>24}")
    overhead = float(np.median(c_res["score_ms"]) - np.median(py_res["score_ms"]))
    print(f"per-call overhead of the C ABI (median): {overhead:+.2f} ms; max |score difference| {diff:.2e}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "package": args.package,
                    "n_docs": len(docs),
                    "repeats": args.repeats,
                    "c_abi": c_res,
                    "python_sdk": py_res,
                    "score_max_abs_diff": diff,
                },
                indent=1,
            )
            + "\n"
        )
    return 0 if diff <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
