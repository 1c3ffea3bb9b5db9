"""Render ``bench_lengths.py``'s JSON into docs/speed-by-length.md, and the README's speed sentence.

    python -m lab.benchmarks.render_speed_by_length [--json lab/results/speed_by_length.json] \\
        [--doc docs/speed-by-length.md] [--length 256] [--threads 1] [--model cross-encoder]

Replaces what lies between the page's ``<!-- speed-by-length:begin -->`` and
``<!-- speed-by-length:end -->`` lines with the table, the command and the machine's load, and
prints the one README sentence for the named length: every figure has one source, the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lab.benchmarks.bench_lengths import render_table

__all__ = ["BEGIN", "END", "section", "readme_sentence", "with_section", "main"]

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- speed-by-length:begin -->", "<!-- speed-by-length:end -->"


def section(result: dict[str, Any]) -> str:
    """The generated part of the page: table, command, conditions."""
    rows = result["rows"]
    return "\n".join(
        [
            BEGIN,
            render_table(result),
            "",
            f"Made by `{result['command']}` ({result['workload']}; median of {rows[0]['rounds']} interleaved rounds). "
            f"Machine: {result['cpus']} cores, load average (1/5/15 min) {result['load_average_before']} before "
            f"and {result['load_average_after']} after; {result['seconds']:.0f} s. "
            f"Peak RSS, ranker vs torch: "
            + "; ".join(
                f"{m} {t} thread{'s' * (t > 1)} {r['ranker_peak_rss_mib']:.0f} vs {r['torch_peak_rss_mib']:.0f} MiB"
                for (m, t), r in {(r["model"], r["threads"]): r for r in rows}.items()
            )
            + ".",
            END,
        ]
    )


def readme_sentence(result: dict[str, Any], *, model: str, length: int, threads: int) -> str:
    """The README's speed claim, stated at the length (and threads) it was measured at."""
    [row] = [r for r in result["rows"] if (r["model"], r["length"], r["threads"]) == (model, length, threads)]
    others = sorted(
        (r for r in result["rows"] if r["model"] == model and r["threads"] == threads), key=lambda r: r["length"]
    )
    curve = ", ".join(f"{r['speed_x']:.1f}x at {r['length']}" for r in others)
    return (
        f"At {length} tokens per (query, passage) pair, a `ranker package` INT8 package of a MiniLM-L6 "
        f"{model} scores {row['speed_x']:.1f}x the docs/s of the same weights in transformers + torch fp32 "
        f"on {threads} thread{'s' * (threads > 1)}, measured in one command on {result['cpus']} shared cores at a "
        f"load average of {result['load_average_before'][0]:g} (Spearman {row['spearman']:.3f} against torch; "
        f"{curve}: see docs/speed-by-length.md)."
    )


def with_section(text: str, result: dict[str, Any]) -> str:
    """``text`` (the page) with its generated block replaced by :func:`section`."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN} ... {END} block to fill")
    head, rest = text.split(BEGIN, 1)
    return head + section(result) + rest.split(END, 1)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(ROOT / "lab" / "results" / "speed_by_length.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "speed-by-length.md"))
    ap.add_argument("--model", default="cross-encoder")
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    result = json.loads(Path(args.json).read_text(encoding="utf-8"))
    doc = Path(args.doc)
    try:
        doc.write_text(with_section(doc.read_text(encoding="utf-8"), result), encoding="utf-8")
    except ValueError as exc:
        sys.exit(f"error: {doc}: {exc}")
    print(readme_sentence(result, model=args.model, length=args.length, threads=args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
