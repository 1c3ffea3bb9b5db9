"""Turn evaluation files into the results table (markdown + JSON + plot).

    python -m lab.benchmarks.results_table NAME=EVAL.json [NAME=EVAL.json ...] [--speed NAME=DOCS_PER_S]
        [--out lab/results/recipe_cpu]

Each EVAL.json is what `ranker eval --json` prints (or a recipe's ``eval/<name>.json``). The
table itself is :mod:`lab.report`; ``lab/build_default.py`` calls it directly.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab.report import markdown, rows, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", metavar="NAME=EVAL.json", help="a model's `ranker eval --json` output")
    ap.add_argument("--speed", action="append", default=[], metavar="NAME=DOCS_PER_S", help="docs/s of a model")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.png")
    args = ap.parse_args()
    results = {}
    for item in args.results:
        name, sep, path = item.partition("=")
        if not sep:
            ap.error(f"expected NAME=EVAL.json, got {item!r}")
        results[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    speed = {}
    for item in args.speed:
        name, _, value = item.partition("=")
        speed[name] = float(value)
    table = rows(results, speed)
    print(write(table, args.out) if args.out else markdown(table))


if __name__ == "__main__":
    main()
