"""Speed by length: INT8 packages through ``Ranker`` vs the same weights in torch fp32, at each length.

    python -m lab.benchmarks.length_models --out M                      # M/ce and M/seg from all-MiniLM-L6-v2
    ranker package --model M/ce  --out P/ce  --calibration ../shared/data/trec-rag24 --split dev --max-length 512
    ranker package --model M/seg --out P/seg --calibration ../shared/data/trec-rag24 --split dev --max-length 512
    python -m lab.benchmarks.bench_lengths --model cross-encoder=M/ce=P/ce --model segmented=M/seg=P/seg \\
        [--lengths 64 128 256 512] [--threads 1 2] [--docs 32] [--rounds 5] \\
        [--json lab/results/speed_by_length.json]

**Workload at length L**: the first trec-rag24 dev query against ``--docs`` dev passages, each
made exactly L tokens long as the package encodes the pair: a passage shorter than that is
continued with the passages that follow it (file order) and the text is then cut at the token
where the pair reaches L. Every row of a call is L tokens, so "L tokens" means what it says
(the dev passages alone fill 256 tokens for under half the pairs and 512 for almost none).
One package per model serves every length: a package's model runs the same graph on an
L-token row whatever its ``max_length`` (which only cuts longer rows). ``--natural`` keeps the
passages as they are, cut at L tokens only: the rows a package of ``max_length`` L reads from
the shared workload (``--docs 100`` is ``lab/benchmarks/workload.py``'s), many of them shorter than L.

**Baseline**: the same weights in transformers + torch fp32 the way a sentence-transformers
``CrossEncoder`` scores (as ``lab/benchmarks/workload.py`` does): batches of 32 pairs in input order,
padded to the batch's longest, truncated to L, ``torch.set_num_threads(threads)``. The segmented
student's baseline is its torch module (:func:`ranker_models.segmented.load_segmented`).

**Measurement, built for a shared machine**: for each (model, threads) one ``Ranker`` process
and one torch process load once and stay up; the parent then asks them in turn for one timed
call of the whole ``--docs`` request (ranker then torch, torch then ranker in the next round), at
every length, for ``--rounds`` rounds. The speed ratio of a round is torch's time over the
ranker's, measured seconds apart; the table gives the median of the rounds' ratios, by wall
clock (``speed_x``) and by the process's own CPU time (``cpu_speed_x``: at 1 thread it still
measures the work when other jobs take turns on the cores). Each row also has the Spearman of
the package's scores against torch's, and each process's peak RSS (``ru_maxrss``, the largest
length's; so it is given per model and thread count, not per length).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "trec-rag24"
TORCH_BATCH = 32


def length_workload(
    package: str | Path, length: int, n_docs: int, data: str | Path = DATA, *, fill: bool = True
) -> dict[str, Any]:
    """The query and ``n_docs`` texts that the package encodes as pairs of exactly ``length`` tokens.

    ``fill=False``: the passages as they are, only cut at ``length`` tokens (what a package of
    ``max_length`` ``length`` would read: rows of many lengths, the shorter ones uncut).

    Raises SystemExit when ``length`` exceeds the package's ``max_length`` or the dev passages
    cannot fill it.
    """
    from ranker_eval.beir import load_groups
    from ranker_sdk import Ranker
    from ranker_sdk.tokenize import PairEncoder, doc_text

    cfg = Ranker.load(package, threads=1).config
    if length > cfg.max_length:
        raise SystemExit(f"error: length {length} exceeds the package's max_length {cfg.max_length}")
    groups = load_groups(Path(data), "dev")
    passages = [doc_text(d, cfg.title_separator) for g in groups for d in g.docs]
    query = groups[0].query
    encoder = PairEncoder((Path(package) / "tokenizer.json").read_bytes(), cfg, parallel=False)
    texts = []
    for i in range(n_docs):
        text, j = passages[i], i + 1
        while fill and len(encoder.encode(query, [text]).ids[0]) < cfg.max_length and j < i + len(passages):
            text, j = text + " " + passages[j % len(passages)], j + 1
        texts.append(_cut(encoder, query, text, length))
    lengths = encoder.encode(query, texts).lengths()
    if fill and lengths.min() < length:
        raise SystemExit(f"error: the dev passages fill only {int(lengths.min())} of {length} tokens")
    return {"query": query, "texts": texts, "tokens": int(lengths.mean()), "length": length}


def _cut(encoder: Any, query: str, text: str, length: int) -> str:
    """``text`` cut where the pair (query, text) reaches ``length`` tokens (the longest prefix that fits)."""
    lo, hi = 0, len(text)
    while lo < hi:  # the longest character prefix whose pair encodes to at most `length` tokens
        mid = (lo + hi + 1) // 2
        if len(encoder.encode(query, [text[:mid]]).ids[0]) <= length:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


# ---------------------------------------------------------------- workers (one process each)


def _ranker_scorer(package: str, threads: int):
    from ranker_sdk import Ranker

    ranker = Ranker.load(package, threads=threads)
    return lambda w: ranker.score(w["query"], w["texts"]).tolist()


def _torch_scorer(model: str, threads: int):
    import torch
    from ranker_models.segmented import is_segmented, load_segmented
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    if is_segmented(model):  # its torch module: the fp32 reference the package was exported from
        net = load_segmented(model).eval()
    else:
        net = AutoModelForSequenceClassification.from_pretrained(
            model, local_files_only=True, use_safetensors=True
        ).eval()

    def score(w):
        out = []
        with torch.inference_mode():
            for i in range(0, len(w["texts"]), TORCH_BATCH):
                batch = w["texts"][i : i + TORCH_BATCH]
                enc = tok(
                    [w["query"]] * len(batch),
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=w["length"],
                    return_tensors="pt",
                )
                out.append(net(**enc).logits[:, 0])
        return torch.cat(out).tolist()

    return score


def worker(kind: str, target: str, threads: int, workloads: str) -> None:
    """Serve timed calls on stdin/stdout: a line ``L`` -> one call on the length-L workload -> JSON."""
    loads = {w["length"]: w for w in json.loads(Path(workloads).read_text(encoding="utf-8"))}
    score = _ranker_scorer(target, threads) if kind == "ranker" else _torch_scorer(target, threads)
    first = {}
    for length, w in loads.items():
        first[length] = score(w)  # warm-up, and the scores compared against the other side
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        length = int(line)
        t, c = time.perf_counter(), time.process_time()
        score(loads[length])
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scores": {str(k): v for k, v in first.items()}, "peak_rss_mib": rss}), flush=True)


class _Worker:
    def __init__(self, kind: str, target: str, threads: int, workloads: Path) -> None:
        cmd = [
            sys.executable,
            "-m",
            "lab.benchmarks.bench_lengths",
            "--worker",
            kind,
            target,
            str(threads),
            str(workloads),
        ]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.kind = kind

    def ready(self) -> None:
        """Wait until the worker has loaded its model and scored every length once."""
        self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"the {self.kind} worker died (exit {self.proc.returncode}); its stderr is above")
        return json.loads(line)

    def call(self, length: int) -> dict[str, float]:
        self.proc.stdin.write(f"{length}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> dict[str, Any]:
        self.proc.stdin.close()
        out = self._read()
        self.proc.wait()
        return out


def measure(
    name: str, model: str, package: str, lengths: list[int], threads: int, rounds: int, workloads: Path
) -> list[dict[str, Any]]:
    """Rows (one per length) of ``package`` vs torch on ``model`` at ``threads``, interleaved call by call."""
    from ranker_eval.metrics import spearman

    mine, base = _Worker("ranker", package, threads, workloads), _Worker("torch", model, threads, workloads)
    mine.ready()  # both load at once, then wait for each other: only timed calls run one at a time
    base.ready()
    times: dict[int, list[tuple[dict, dict]]] = {n: [] for n in lengths}
    try:
        for r in range(rounds):
            for n in lengths:
                if r % 2 == 0:
                    a = mine.call(n)
                    b = base.call(n)
                else:
                    b = base.call(n)
                    a = mine.call(n)
                times[n].append((a, b))
    finally:
        m_end, b_end = mine.close(), base.close()
    loads = {w["length"]: w for w in json.loads(workloads.read_text(encoding="utf-8"))}
    rows = []
    for n in lengths:
        a = np.array([[x["wall"], x["cpu"]] for x, _ in times[n]])
        b = np.array([[y["wall"], y["cpu"]] for _, y in times[n]])
        rows.append(
            {
                "model": name,
                "length": n,
                "threads": threads,
                "docs": len(loads[n]["texts"]),
                "tokens_per_row": loads[n]["tokens"],  # the mean (every row's, unless --natural)
                "rounds": rounds,
                "ranker_docs_per_s": len(loads[n]["texts"]) / float(np.median(a[:, 0])),
                "torch_docs_per_s": len(loads[n]["texts"]) / float(np.median(b[:, 0])),
                "speed_x": float(np.median(b[:, 0] / a[:, 0])),
                "speed_x_min": float(np.min(b[:, 0] / a[:, 0])),
                "speed_x_max": float(np.max(b[:, 0] / a[:, 0])),
                "cpu_speed_x": float(np.median(b[:, 1] / a[:, 1])),
                "spearman": spearman(m_end["scores"][str(n)], b_end["scores"][str(n)]),
                "ranker_peak_rss_mib": m_end["peak_rss_mib"],
                "torch_peak_rss_mib": b_end["peak_rss_mib"],
            }
        )
    return rows


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _spec(text: str) -> tuple[str, str, str]:
    parts = text.split("=")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKPOINT=PACKAGE, got {text!r}")
    return parts[0], parts[1], parts[2]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker(argv[1], argv[2], int(argv[3]), argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", type=_spec, action="append", required=True, metavar="NAME=CHECKPOINT=PACKAGE",
        help="a checkpoint and the package built from it (repeat for each model)",
    )  # fmt: skip
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--docs", type=int, default=32, help="pairs per request (default 32: one torch batch)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed calls per configuration")
    ap.add_argument(
        "--natural", action="store_true",
        help="passages as they are, cut at L tokens (not continued to fill L): the shared workload's rows",
    )  # fmt: skip
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    before = _load_average()
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lengths-") as tmp:
        for name, model, package in args.model:
            workloads = Path(tmp) / f"{name}.json"
            loads = [length_workload(package, n, args.docs, fill=not args.natural) for n in args.lengths]
            workloads.write_text(json.dumps(loads), encoding="utf-8")
            for threads in args.threads:
                rows += measure(name, model, package, args.lengths, threads, args.rounds, workloads)
                print(f"  {name} {threads} thread(s) done, load average {_load_average()}", file=sys.stderr)
    result = {
        "command": "python -m lab.benchmarks.bench_lengths " + " ".join(argv),
        "workload": f"1 trec-rag24 dev query x {args.docs} dev passages, "
        + ("as they are, cut at L tokens" if args.natural else "each pair exactly L tokens"),
        "baseline": "transformers + torch fp32, batches of 32 in input order, same weights",
        "load_average_before": before,
        "load_average_after": _load_average(),
        "cpus": os.cpu_count(),
        "seconds": round(time.time() - started, 1),
        "rows": rows,
    }
    print(render_table(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def render_table(result: dict[str, Any]) -> str:
    """A Markdown table of the speed ratio (and Spearman) by model, length and threads."""
    rows = result["rows"]
    threads = sorted({r["threads"] for r in rows})
    head = "| model | tokens | " + " | ".join(f"{t} thread{'s' * (t > 1)}: speed (CPU time)" for t in threads)
    head += " | Spearman vs torch |\n|---|---|" + "---|" * len(threads) + "---|\n"
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for n in sorted({r["length"] for r in rows if r["model"] == model}):
            cells = {r["threads"]: r for r in rows if r["model"] == model and r["length"] == n}
            speeds = " | ".join(
                f"**{cells[t]['speed_x']:.2f}x** ({cells[t]['cpu_speed_x']:.2f}x)" if t in cells else "-"
                for t in threads
            )
            rho = next(iter(cells.values()))["spearman"]
            lines.append(f"| {model} | {n} | {speeds} | {rho:.3f} |")
    return head + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
