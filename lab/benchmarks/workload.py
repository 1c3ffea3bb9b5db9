"""The one workload every ranking benchmark here measures, and how it is measured.

**Workload**: 1 query x 100 real trec-rag24 dev passages (mean 192 words, so most pairs fill the
package's ``max_length``): the first dev query, against its 20 candidates and those of the next
dev queries, in file order. :func:`load_workload` returns it; every script uses it, so their
figures are comparable.

**Measurement** (:func:`measure_ranker`, :func:`measure_torch`): each configuration runs in a
process of its own (:func:`run_worker`), so its peak RSS (``ru_maxrss``: imports, model and
scoring together) is its own. One warm-up call, then ``repeats`` timed calls of the whole
100-passage request: p50 and p99 latency of that call, and docs/s = 100 / p50.

**Baseline**: the same weights in transformers + torch fp32, the way a sentence-transformers
``CrossEncoder`` scores: the tokenizer called on batches of 32 (query, passage) pairs in input
order, padded to the batch's longest row and truncated to the package's ``max_length``, under
``torch.inference_mode()`` with ``torch.set_num_threads(threads)``. Every figure a script prints
is also given as a ratio against this baseline at the same thread count, measured in the same
command.

Only public APIs are used: ``ranker_sdk.Ranker``, ``ranker_eval.beir.load_groups``,
``ranker_sdk.tokenize.doc_text`` and transformers/torch.

Run as a worker (what :func:`run_worker` does)::

    python -m lab.benchmarks.workload --worker ranker --package PKG --threads 1 --repeats 10 [--load-kwargs JSON]
    python -m lab.benchmarks.workload --worker torch --model HF_DIR --max-length 256 --threads 1 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "trec-rag24"
N_DOCS = 100
TORCH_BATCH = 32


@dataclass(frozen=True)
class Workload:
    """One query and its passages (``docs`` as the SDK takes them, ``texts`` as torch reads them)."""

    query: str
    docs: list[dict]
    texts: list[str]


def load_workload(
    data: str | Path = DATA, split: str = "dev", n: int = N_DOCS, title_separator: str | None = None
) -> Workload:
    """The first ``split`` query of ``data`` against the first ``n`` candidates of its queries, in order.

    ``texts`` join a title to its text with ``title_separator`` (None: the package default).
    """
    from ranker_eval.beir import load_groups
    from ranker_sdk.encoding import TITLE_SEPARATOR, doc_text

    if title_separator is None:
        title_separator = TITLE_SEPARATOR

    groups = load_groups(Path(data), split)
    docs = [dict(d) for g in groups for d in g.docs][:n]
    if len(docs) < n:
        raise SystemExit(f"error: {data} {split} has fewer than {n} candidates")
    return Workload(groups[0].query, docs, [doc_text(d, title_separator) for d in docs])


def peak_rss_mib() -> float:
    """This process's peak resident set size, MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summarize(times: list[float], n_docs: int = N_DOCS, cpu: list[float] | None = None) -> dict[str, Any]:
    """p50/p99 latency (ms) of the timed calls, docs/s at the median, and how many calls.

    ``cpu`` (the process CPU seconds of each call) adds ``cpu_ms`` and ``cpu_docs_per_s``: at one
    thread on an idle machine they equal the wall-clock figures; on a loaded machine they still
    measure the work a call costs, where wall time measures the scheduler.
    """
    import numpy as np

    t = np.asarray(times)
    p50 = float(np.percentile(t, 50))
    out = {
        "p50_ms": p50 * 1e3,
        "p99_ms": float(np.percentile(t, 99)) * 1e3,
        "docs_per_s": n_docs / p50,
        "repeats": len(times),
    }
    if cpu:
        c = float(np.median(cpu))
        out |= {"cpu_ms": c * 1e3, "cpu_docs_per_s": n_docs / c}
    return out


def _timed(fn, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU seconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()  # warm-up: first-call allocations, lazy initialisation
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def measure_ranker(package: str | None, threads: int, repeats: int, load_kwargs: dict | None = None) -> dict[str, Any]:
    """Time ``Ranker.load(package, threads=threads, **load_kwargs).score`` on the workload (in this process)."""
    from ranker_sdk import Ranker

    ranker = Ranker.load(package, threads=threads, **(load_kwargs or {}))
    w = load_workload(title_separator=ranker.config.title_separator)
    scores = ranker.score(w.query, w.docs)
    wall, cpu = _timed(lambda: ranker.score(w.query, w.docs), repeats)
    res = summarize(wall, cpu=cpu)
    return res | {"scores": [float(s) for s in scores], "max_length": ranker.config.max_length}


def measure_torch(model: str, max_length: int, threads: int, repeats: int) -> dict[str, Any]:
    """Time the transformers + torch fp32 baseline on the workload (in this process)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    w = load_workload()
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    net = AutoModelForSequenceClassification.from_pretrained(model, local_files_only=True, use_safetensors=True).eval()

    def score():
        out = []
        with torch.inference_mode():
            for i in range(0, len(w.texts), TORCH_BATCH):
                batch = w.texts[i : i + TORCH_BATCH]
                enc = tok(
                    [w.query] * len(batch),
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                out.append(net(**enc).logits[:, 0])
        return torch.cat(out)

    scores = score()
    wall, cpu = _timed(score, repeats)
    return summarize(wall, cpu=cpu) | {"scores": scores.tolist(), "max_length": max_length}


def run_worker(kind: str, threads: int, repeats: int, **kw: Any) -> dict[str, Any]:
    """Run one measurement in a fresh process; returns its summary plus ``peak_rss_mib``."""
    cmd = [
        sys.executable,
        "-m",
        "lab.benchmarks.workload",
        "--worker",
        kind,
        "--threads",
        str(threads),
        "--repeats",
        str(repeats),
    ]
    for key, value in kw.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", json.dumps(value) if isinstance(value, dict) else str(value)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"the {kind} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def with_ratios(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``row`` plus its speed, p50, p99 and peak-RSS ratios against ``base`` (the torch row)."""
    cpu = {"cpu_speed_x": row["cpu_docs_per_s"] / base["cpu_docs_per_s"]} if "cpu_docs_per_s" in row else {}
    return (
        row
        | cpu
        | {
            "speed_x": row["docs_per_s"] / base["docs_per_s"],
            "p50_x": row["p50_ms"] / base["p50_ms"],
            "p99_x": row["p99_ms"] / base["p99_ms"],
            "rss_x": row["peak_rss_mib"] / base["peak_rss_mib"],
        }
    )


def print_rows(rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> None:
    """One line per row: name, threads, docs/s, p50, p99, peak RSS, and the ratios if present."""
    head = (
        f"{'name':<26}{'thr':>4}{'docs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'RSS MiB':>9}{'speed':>8}{'p50':>7}{'RSS':>7}"
    )
    print(head + "".join(f"{e:>10}" for e in extra))
    for r in rows:
        ratio = f"{r['speed_x']:>7.2f}x{r['p50_x']:>6.2f}x{r['rss_x']:>6.2f}x" if "speed_x" in r else " " * 22
        line = (
            f"{r['name']:<26}{r['threads']:>4}{r['docs_per_s']:>9.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}"
            f"{r['peak_rss_mib']:>9.0f}{ratio}"
        )
        print(line + "".join(f"{r.get(e, float('nan')):>10.4f}" for e in extra))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", choices=("ranker", "torch"), required=True)
    ap.add_argument("--package", default=None)
    ap.add_argument("--load-kwargs", default=None, help="JSON of extra Ranker.load keyword arguments")
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    if args.worker == "ranker":
        res = measure_ranker(args.package, args.threads, args.repeats, json.loads(args.load_kwargs or "{}"))
    else:
        res = measure_torch(args.model, args.max_length, args.threads, args.repeats)
    print(json.dumps(res | {"peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
