"""What one model call costs per row-token, by rows per call and tokens per row (batching rules).

    python -m lab.benchmarks.shape_costs --package PKG --lengths 160 256 512 --rows 1 2 4 [--rounds 4]

Feeds ``rows x L`` calls of random ids from the package's vocabulary (no padding: every row is L tokens, as the
SDK's exact-length batches are) straight to an onnxruntime session with the runtime's own
options at 1 thread; every shape is run once to warm up, then twice per round, rounds
interleaved across shapes. Prints the median process-CPU microseconds per row-token, and each
shape against one row a call of the same length: whether more rows a call would pay at that
length (``Ranker.load(max_batch_tokens=...)``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def shape_costs(package: str, lengths: list[int], rows: list[int], rounds: int) -> dict[tuple[int, int], float]:
    """Median CPU microseconds per row-token of a ``(rows, length)`` call, for each pair."""
    import onnxruntime as ort
    from ranker_sdk.session import session_options
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(Path(package) / "tokenizer.json")).get_vocab_size()

    session = ort.InferenceSession(
        str(Path(package) / "model.onnx"), session_options(1), providers=["CPUExecutionProvider"]
    )
    names = {i.name for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    feeds = {}
    for n in lengths:
        for b in rows:
            ids = rng.integers(vocab // 4, vocab, size=(b, n), dtype=np.int64)  # past the special tokens
            types = np.zeros((b, n), dtype=np.int64)
            types[:, n // 8 :] = 1  # a short query segment, then the doc
            feed = {"input_ids": ids, "attention_mask": np.ones((b, n), np.int64), "token_type_ids": types}
            feeds[(b, n)] = {k: v for k, v in feed.items() if k in names}
            session.run(None, feeds[(b, n)])
    costs: dict[tuple[int, int], list[float]] = {k: [] for k in feeds}
    for _ in range(rounds):
        for (b, n), feed in feeds.items():
            c = time.process_time()
            for _ in range(2):
                session.run(None, feed)
            costs[(b, n)].append((time.process_time() - c) / 2 / (b * n) * 1e6)
    return {k: float(np.median(v)) for k, v in costs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", required=True)
    ap.add_argument("--lengths", type=int, nargs="+", default=[160, 256, 512])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    costs = shape_costs(args.package, args.lengths, args.rows, args.rounds)
    print(f"{'rows x tokens':>14}{'CPU us/token':>14}{'vs 1 row':>10}")
    for (b, n), us in costs.items():
        one = costs.get((1, n))
        print(f"{f'{b} x {n}':>14}{us:>14.1f}{(f'{us / one:.2f}x' if one else '-'):>10}")


if __name__ == "__main__":
    main()
