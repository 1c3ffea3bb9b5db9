"""Static INT8 in onnxruntime vs OpenVINO: the same model file, the same batches, one process each.

Both runtimes read the *same* ``model.onnx`` of a package (QDQ static INT8: OpenVINO turns each
QuantizeLinear/DequantizeLinear pair into its own INT8 execution) and run the *same* padded
batches of the workload (:mod:`workload`: 1 query x 100 trec-rag24 dev passages, encoded by the
SDK's own ``PairEncoder``, sorted by length, at most 32 rows and 512 padded tokens a batch: the
SDK's defaults). Reported per runtime and thread count: p50/p99 of the 100-passage request,
docs/s, peak RSS (each in its own process), the speed ratio against onnxruntime, and the
largest score difference and Spearman against onnxruntime's scores (the same INT8 model, so any
difference is the runtime's).

Usage (``pip install openvino`` first; it is not a dependency of ranker-sdk)::

    python -m lab.benchmarks.bench_openvino --package PKG [--threads 1 2] [--repeats 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lab.benchmarks.workload import ROOT, load_workload, peak_rss_mib, summarize


def batches(package: str) -> tuple[list[dict], list[list[int]]]:
    """The workload's feeds as the SDK's defaults would batch them, and each batch's row indices."""
    import numpy as np
    from ranker_sdk.package import read_package
    from ranker_sdk.tokenize import PairEncoder

    pkg = read_package(package)
    cfg = pkg.config
    w = load_workload(title_separator=cfg.title_separator)
    enc = PairEncoder(pkg.files["tokenizer.json"], cfg, parallel=False).encode(w.query, w.texts)
    lengths = enc.lengths()
    order = np.argsort(lengths, kind="stable")
    out, rows, start = [], [], 0
    while start < len(order):  # <= 32 rows and <= 512 padded tokens, as Ranker.load's defaults
        end = start + 1
        while end < len(order) and end - start < 32 and lengths[order[end]] * (end - start + 1) <= 512:
            end += 1
        idx = order[start:end].tolist()
        feed = enc.batch(idx, cfg.pad_token_id)
        out.append({k: feed[k] for k in cfg.inputs})
        rows.append(idx)
        start = end
    return out, rows


def worker(runtime: str, package: str, threads: int, repeats: int) -> dict:
    import numpy as np
    from ranker_sdk.package import read_package

    feeds, rows = batches(package)
    model = read_package(package).files["model.onnx"]
    if runtime == "onnxruntime":
        import onnxruntime as ort
        from ranker_sdk.session import session_options

        opts = session_options(threads)  # exactly what ranker_sdk's session sets
        sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        name = sess.get_outputs()[0].name
        run = lambda f: sess.run([name], f)[0]  # noqa: E731
    else:
        import openvino as ov

        core = ov.Core()
        compiled = core.compile_model(
            core.read_model(model=model),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            },
        )
        req = compiled.create_infer_request()
        out = compiled.output(0)
        run = lambda f: req.infer(f)[out]  # noqa: E731

    def score():
        s = np.empty(100, dtype=np.float32)
        for f, idx in zip(feeds, rows):
            s[idx] = np.asarray(run(f)).reshape(-1)
        return s

    scores = score()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        score()
        times.append(time.perf_counter() - t)
    return summarize(times) | {"scores": scores.tolist(), "peak_rss_mib": peak_rss_mib()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", choices=("onnxruntime", "openvino"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.package, args.threads[0], args.repeats)))
        return 0
    import numpy as np
    from ranker_eval.metrics import spearman

    rows = []
    for threads in args.threads:
        res = {}
        for runtime in ("onnxruntime", "openvino"):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "lab.benchmarks.bench_openvino",
                    "--worker",
                    runtime,
                    "--package",
                    args.package,
                    "--threads",
                    str(threads),
                    "--repeats",
                    str(args.repeats),
                ],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
            )
            if proc.returncode != 0:
                res[runtime] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
                print(f"{runtime} ({threads} thr): failed: {res[runtime]['error']}")
                continue
            res[runtime] = json.loads(proc.stdout.strip().splitlines()[-1])
        base = res.get("onnxruntime", {})
        ref = np.asarray(base.get("scores", []))  # read before the loop pops each row's scores
        for runtime, r in res.items():
            if "error" in r or "error" in base:
                rows.append({"runtime": runtime, "threads": threads, **r})
                continue
            a, b = np.asarray(r.pop("scores")), ref
            rows.append(
                r
                | {
                    "runtime": runtime,
                    "threads": threads,
                    "speed_x": r["docs_per_s"] / base["docs_per_s"],
                    "max_abs_diff_vs_ort": float(np.abs(a - b).max()),
                    "spearman_vs_ort": spearman(a, b),
                }
            )
        base.pop("scores", None)
    print(f"{args.package}: 1 query x 100 trec-rag24 dev passages, same batches, median of {args.repeats}")
    print(
        f"{'runtime':<12}{'thr':>4}{'docs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'RSS MiB':>9}{'vs ORT':>8}{'max diff':>10}{'Spearman':>10}"
    )
    for r in rows:
        if "error" in r:
            continue
        print(
            f"{r['runtime']:<12}{r['threads']:>4}{r['docs_per_s']:>9.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}"
            f"{r['peak_rss_mib']:>9.0f}{r['speed_x']:>7.2f}x{r['max_abs_diff_vs_ort']:>10.2g}{r['spearman_vs_ort']:>10.4f}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"package": args.package, "repeats": args.repeats, "rows": rows}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
