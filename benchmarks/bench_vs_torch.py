"""INT8 package through the SDK vs the same checkpoint the way most users run a cross-encoder.

One thread each, one query against 100 real trec-rag24 passages:

- **ranker**: ``Ranker.load(PKG, threads=1).score(query, docs)`` (onnxruntime, INT8, pairs
  sorted by length, each batch padded to its own longest row);
- **torch**: transformers + torch fp32 (``torch.set_num_threads(1)``, default attention), the
  tokenizer called on batches of 32 pairs in input order, padded to the batch's longest row and
  truncated to the package's ``max_length``, under ``torch.inference_mode()``.

Each side runs in its own subprocess, so its peak RSS (``ru_maxrss``: imports, model and
scoring together) is its own. Throughput is the median of ``--repeats`` timed runs after one
warm-up run. The first dev query has only 20 candidates; the remaining 80 are the next dev
queries' candidates, in order (the realistic passage lengths are what matters here).

Usage::

    python benchmarks/bench_vs_torch.py --package PKG --model HF_DIR \\
        --data ../shared/data/trec-rag24 [--repeats 5] [--ranker-batch-size N] \\
        [--json benchmarks/results/bench_vs_torch.json]

Peak RSS of the ranker is dominated by activations of one batch (batch x 256 tokens: attention
scores alone are batch x heads x 256 x 256 floats), so ``--ranker-batch-size`` is reported too.

Target: ranker >= 2.5x the docs/s of torch with at most half its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

N_DOCS = 100


def _workload(data: str, split: str) -> tuple[str, list[dict]]:
    from ranker_sdk.beir import load_groups

    groups = load_groups(data, split, max_queries=10)
    docs = [d for g in groups for d in g.docs][:N_DOCS]
    if len(docs) < N_DOCS:
        sys.exit(f"error: {data} {split} has fewer than {N_DOCS} candidates in its first 10 queries")
    return groups[0].query, docs


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up: first-call allocations, lazy init
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _worker_ranker(args) -> dict:
    from ranker_sdk import Ranker

    query, docs = _workload(args.data, args.split)
    t = time.perf_counter()
    kwargs = {"batch_size": args.ranker_batch_size} if args.ranker_batch_size else {}
    ranker = Ranker.load(args.package, threads=1, **kwargs)
    load_s = time.perf_counter() - t
    times = _time(lambda: ranker.score(query, docs), args.repeats)
    return {"load_s": load_s, "times_s": times}


def _worker_torch(args) -> dict:
    import torch
    from ranker_sdk.package import read_package
    from ranker_sdk.tokenize import doc_text
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(1)
    max_length = read_package(args.package).config.max_length  # same truncation as the package
    query, docs = _workload(args.data, args.split)
    texts = [doc_text(d, " | ") for d in docs]
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
    load_s = time.perf_counter() - t

    def score():
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                batch = texts[i : i + 32]
                enc = tok([query] * len(batch), batch, padding=True, truncation="only_second",
                          max_length=max_length, return_tensors="pt")
                out.append(model(**enc).logits[:, 0])
        return torch.cat(out)

    times = _time(score, args.repeats)
    return {"load_s": load_s, "times_s": times}


def _run_worker(kind: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--package", str(args.package), "--model", str(args.model),
           "--data", str(args.data), "--split", args.split, "--repeats", str(args.repeats),
           "--ranker-batch-size", str(args.ranker_batch_size or 0)]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"error: the {kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--package", required=True, help="INT8 package directory or .tar.gz")
    p.add_argument("--model", required=True, help="the checkpoint the package was built from")
    p.add_argument("--data", default="../shared/data/trec-rag24", help="BEIR folder (default: ../shared/data/trec-rag24)")
    p.add_argument("--split", default="dev")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ranker-batch-size", type=int, default=0,
                   help="Ranker batch_size (default 0: the SDK's default); the torch side always uses 32")
    p.add_argument("--json", default=None, help="also write the results here (e.g. benchmarks/results/...json)")
    p.add_argument("--worker", choices=("ranker", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        res = (_worker_ranker if args.worker == "ranker" else _worker_torch)(args)
        res["peak_rss_mib"] = _peak_rss_mib()
        res["docs_per_s"] = N_DOCS / statistics.median(res["times_s"])
        print(json.dumps(res))
        return 0

    results = {kind: _run_worker(kind, args) for kind in ("ranker", "torch")}
    r, t = results["ranker"], results["torch"]
    speedup = r["docs_per_s"] / t["docs_per_s"]
    rss_ratio = r["peak_rss_mib"] / t["peak_rss_mib"]
    bs = args.ranker_batch_size or "SDK default"
    print(f"1 query x {N_DOCS} {Path(args.data).name} {args.split} candidates, 1 thread, median of {args.repeats}, "
          f"Ranker batch_size {bs}")
    print(f"{'':<28}{'docs/s':>10}{'peak RSS MiB':>14}{'load s':>9}")
    print(f"{'ranker (INT8 onnxruntime)':<28}{r['docs_per_s']:>10.1f}{r['peak_rss_mib']:>14.0f}{r['load_s']:>9.2f}")
    print(f"{'torch fp32 (transformers)':<28}{t['docs_per_s']:>10.1f}{t['peak_rss_mib']:>14.0f}{t['load_s']:>9.2f}")
    print(f"speedup {speedup:.2f}x (target >= 2.5x), RSS ratio {rss_ratio:.2f} (target <= 0.5)")
    if args.json:
        summary = {"n_docs": N_DOCS, "data": f"{Path(args.data).name}/{args.split}", "threads": 1,
                   "repeats": args.repeats, "ranker_batch_size": args.ranker_batch_size or None, "results": results, "speedup": speedup, "rss_ratio": rss_ratio,
                   "package": str(args.package), "model": str(args.model)}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
