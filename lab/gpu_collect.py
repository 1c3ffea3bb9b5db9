"""Turn the GPU sweep's returned files into a run folder that lab/build_default.py reads.

    python -m lab.gpu_collect --call runs/gpu/call1 --call runs/gpu/call2 --base runs/dl --out runs/gpu

- ``OUT/eval/NAME.json``: each evaluated job's ``ranker eval`` result (measured on the GPU machine,
  fp32 torch), under the row names of build_default (``seg_hybrid`` is the config's own settings,
  ``seg_hybrid_lr2e5_1k``); the baseline rows (random, BM25, first stage, teacher) and the previous
  cross-encoder default (``cross_hybrid``) are copied from the CPU recipe run ``--base``.
- ``OUT/students/NAME``: the packed picks, unpacked to fp32 safetensors (lab/gpu_pack.py).
- ``OUT/scores.json``: the teacher report of ``--base`` (the targets the students learnt).
A student's fp32 row is then re-measured here on the unpacked weights (``--fp32 NAME=FILE``): the
packed copy's int8 word embeddings differ slightly from the weights the GPU evaluated.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from lab.gpu_pack import unpack

ALIASES = {"seg_hybrid_lr2e5_1k": "seg_hybrid"}
BASE_ROWS = {
    "random": "random",
    "bm25": "bm25",
    "first-stage": "first-stage",
    "teacher": "teacher",
    "hybrid": "cross_hybrid",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--call", action="append", required=True, help="a folder of one call's returned files")
    ap.add_argument("--base", required=True, help="the CPU recipe run (teacher targets, baseline rows)")
    ap.add_argument("--out", required=True)
    ap.add_argument(
        "--fp32",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="replace NAME's row by this `ranker eval --json` of the unpacked weights",
    )
    args = ap.parse_args()
    out, base = Path(args.out), Path(args.base)
    (out / "eval").mkdir(parents=True, exist_ok=True)
    for src, dst in BASE_ROWS.items():
        shutil.copy(base / "eval" / f"{src}.json", out / "eval" / f"{dst}.json")
    shutil.copy(base / "scores.json", out / "scores.json")
    for call in map(Path, args.call):
        results = json.loads((call / "results.json").read_text(encoding="utf-8"))
        for name, r in results.items():
            if "eval" in r:
                (out / "eval" / f"{ALIASES.get(name, name)}.json").write_text(json.dumps(r["eval"], indent=2) + "\n")
        meta = call / "meta"
        picks = json.loads((meta / "picks.json").read_text(encoding="utf-8"))
        for tag, name in picks.items():
            shutil.copy(meta / f"{tag}.files.tar", call / f"{tag}.files.tar")
            unpack(call, tag, out / "students" / name)
            print(f"{call}: {tag} -> {out / 'students' / name}")
    for item in args.fp32:
        name, path = item.split("=", 1)
        shutil.copy(path, out / "eval" / f"{name}.json")


if __name__ == "__main__":
    main()
