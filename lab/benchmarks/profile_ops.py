"""Where a package's time goes: onnxruntime's per-operator kernel time on the shared workload.

    python -m lab.benchmarks.profile_ops --package PKG [--rows 3] [--runs 20] [--top 14]
    python -m lab.benchmarks.profile_ops --package PKG --lengths 160 256 [--rows 2] [--runs 20]

One model call of ``--rows`` pairs from the workload (lab/benchmarks/workload.py: the first trec-rag24
dev query and its passages, encoded as the SDK encodes them), run ``--runs`` times on one thread
with onnxruntime's profiler on; prints each operator type's share of the summed kernel time. A
diagnosis, not a speed figure: shares, no timings.

``--lengths``: the rows are instead made exactly L tokens long (``bench_lengths.length_workload``:
dev passages continued and cut), one profiled session per length, their runs interleaved, and
each operator type's kernel time per row-token (us) is printed beside its share at each length:
what grows faster than the tokens when rows get longer. Absolute microseconds on a shared machine
are inflated by the other jobs; compare the columns with each other.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

from lab.benchmarks.workload import load_workload


def _session(package: str, prefix: str):
    import onnxruntime as ort
    from ranker_sdk.session import session_options

    so = session_options(threads=1)  # the runtime's own settings, as Ranker.load sets them
    so.enable_profiling = True
    so.profile_file_prefix = prefix
    return ort.InferenceSession(str(Path(package) / "model.onnx"), so, providers=["CPUExecutionProvider"])


def _kernel_us(session) -> collections.Counter:
    """Summed kernel microseconds per operator type of everything ``session`` ran (profiling ends)."""
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"]
    return total


def _feed(package: str, query: str, texts: list[str]) -> dict:
    from ranker_sdk import Ranker
    from ranker_sdk.tokenize import PairEncoder

    cfg = Ranker.load(package, threads=1).config
    encoder = PairEncoder((Path(package) / "tokenizer.json").read_bytes(), cfg)
    return encoder.encode(query, texts).batch(list(range(len(texts))), cfg.pad_token_id)


def op_shares(package: str, rows: int, runs: int) -> dict[str, float]:
    from ranker_sdk import Ranker
    from ranker_sdk.tokenize import doc_text

    cfg = Ranker.load(package, threads=1).config
    w = load_workload(title_separator=cfg.title_separator)
    feed = _feed(package, w.query, [doc_text(d, cfg.title_separator) for d in w.docs[:rows]])
    with tempfile.TemporaryDirectory() as tmp:
        session = _session(package, str(Path(tmp) / "prof"))
        names = [i.name for i in session.get_inputs()]
        for _ in range(runs):
            session.run(None, {k: feed[k] for k in names})
        total = _kernel_us(session)
    s = sum(total.values())
    return {op: v / s for op, v in total.most_common()}


def op_times_by_length(package: str, lengths: list[int], rows: int, runs: int) -> dict[int, dict[str, float]]:
    """Kernel microseconds per row-token of each operator type, for ``rows`` pairs of exactly L tokens."""
    from bench_lengths import length_workload

    feeds, sessions = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            w = length_workload(package, n, rows)
            feeds[n] = _feed(package, w["query"], w["texts"])
            sessions[n] = _session(package, str(Path(tmp) / f"prof{n}"))
        names = [i.name for i in sessions[lengths[0]].get_inputs()]
        for n in lengths:  # warm-up, not profiled apart: the same for every length
            sessions[n].run(None, {k: feeds[n][k] for k in names})
        for _ in range(runs):
            for n in lengths:
                sessions[n].run(None, {k: feeds[n][k] for k in names})
        return {n: {op: us / ((runs + 1) * rows * n) for op, us in _kernel_us(sessions[n]).items()} for n in lengths}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True)
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--lengths", type=int, nargs="+", default=None, help="rows of exactly these token lengths")
    args = ap.parse_args()
    if not args.lengths:
        for op, share in list(op_shares(args.package, args.rows, args.runs).items())[: args.top]:
            print(f"{op:28s} {100 * share:5.1f}%")
        return
    times = op_times_by_length(args.package, args.lengths, args.rows, args.runs)
    last = times[args.lengths[-1]]
    ops = sorted(last, key=last.get, reverse=True)[: args.top]
    print(f"{'us per row-token (share)':28s}" + "".join(f"{f'L={n}':>18s}" for n in args.lengths))
    for op in ops + ["total"]:
        cells = []
        for n in args.lengths:
            total = sum(times[n].values())
            us = total if op == "total" else times[n].get(op, 0.0)
            cells.append(f"{us:9.2f} ({100 * us / total:4.1f}%)")
        print(f"{op:28s}" + "".join(f"{c:>18s}" for c in cells))


if __name__ == "__main__":
    main()
