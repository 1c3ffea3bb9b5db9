"""Where a package's time goes: onnxruntime's per-operator kernel time on the shared workload.

    python -m lab.benchmarks.profile_ops --package PKG [--rows 3] [--runs 20] [--top 14]

One model call of ``--rows`` pairs from the workload (lab/benchmarks/workload.py: the first trec-rag24
dev query and its passages, encoded as the SDK encodes them), run ``--runs`` times on one thread
with onnxruntime's profiler on; prints each operator type's share of the summed kernel time. A
diagnosis, not a speed figure: shares, no timings.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

from lab.benchmarks.workload import load_workload


def op_shares(package: str, rows: int, runs: int) -> dict[str, float]:
    import onnxruntime as ort
    from ranker_sdk import Ranker
    from ranker_sdk.session import session_options
    from ranker_sdk.tokenize import PairEncoder, doc_text

    ranker = Ranker.load(package, threads=1)
    cfg = ranker.config
    w = load_workload(title_separator=cfg.title_separator)
    encoder = PairEncoder((Path(package) / "tokenizer.json").read_bytes(), cfg)
    feed = encoder.encode(w.query, [doc_text(d, cfg.title_separator) for d in w.docs[:rows]]).batch(
        list(range(rows)), cfg.pad_token_id
    )
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(threads=1)  # the runtime's own settings, as Ranker.load sets them
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "prof")
        session = ort.InferenceSession(str(Path(package) / "model.onnx"), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        for _ in range(runs):
            session.run(None, {k: feed[k] for k in names})
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"]
    s = sum(total.values())
    return {op: v / s for op, v in total.most_common()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True)
    ap.add_argument("--rows", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=14)
    args = ap.parse_args()
    for op, share in list(op_shares(args.package, args.rows, args.runs).items())[: args.top]:
        print(f"{op:28s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
