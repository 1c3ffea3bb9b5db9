"""The ``ranker`` command line: thin drivers over functions a caller can import.

The runtime's own commands (``rank``, ``verify``, ``info``) live here. The other stages register
theirs from their own packages: each declares its commands as entry points of the group
``ranker.commands`` (``name = "module:register [extra]"``, in pyproject.toml), and ``register``
adds them to the parser; a stage's ``cli`` module imports nothing heavy at import time (torch is
imported when a command runs). A stage whose extra is not installed still shows its commands,
which then say which extra to install.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import InputError, RankerError
from .ranker import Ranker

__all__ = ["main", "read_docs", "read_scored_docs", "decode_text", "build_parser"]

COMMANDS_GROUP = "ranker.commands"


def read_docs(stream: TextIO, fmt: str = "auto", *, name: str = "<stdin>") -> list[Any]:
    """Read documents: JSONL (one ``{"text": .., "title": ..}`` object per line) or text (one doc a line).

    ``fmt="auto"`` picks JSONL when the first non-empty line starts with ``{``. Empty lines are
    skipped in both formats.
    """
    lines = [ln.rstrip("\r\n") for ln in stream]
    lines = [ln for ln in lines if ln.strip()]
    if fmt == "auto":
        fmt = "jsonl" if lines and lines[0].lstrip().startswith("{") else "text"
    if fmt == "text":
        return lines
    return [{"text": obj["text"], "title": obj.get("title") or ""} for _, obj in _jsonl_objects(lines, name)]


def _jsonl_objects(lines: list[str], name: str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of each JSONL doc line, checked for a str ``text``."""
    out = []
    for i, ln in enumerate(lines, 1):
        try:
            obj = json.loads(ln)
        except ValueError as exc:
            raise InputError(f"{name}: line {i} is not valid JSON ({exc}); expected one object a line") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise InputError(f"{name}: line {i} must be an object with a str 'text' (and optional 'title')")
        out.append((i, obj))
    return out


def read_scored_docs(stream: TextIO, fmt: str = "auto", *, name: str = "<stdin>") -> tuple[list[Any], list[float]]:
    """JSONL docs and their first-stage scores: ``{"text": .., "title": .., "score": 12.3}`` a line.

    ``score`` is the retriever's score, higher is better (write ``-rank`` when only the order is
    known); ``ranker rank --first-stage`` fuses it with the model's (:mod:`ranker_sdk.fusion`).

    Raises:
        InputError: text input, or a line whose ``score`` is missing, not a number, or not finite
            (the message names the line).
    """
    lines = [ln for ln in (ln.rstrip("\r\n") for ln in stream) if ln.strip()]
    if fmt == "text" or (fmt == "auto" and lines and not lines[0].lstrip().startswith("{")):
        raise InputError(f'{name}: --first-stage needs JSONL docs, one {{"text": ..., "score": ...}} object a line')
    docs, scores = [], []
    for i, obj in _jsonl_objects(lines, name):
        score = obj.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise InputError(
                f"{name}: line {i} needs a finite numeric 'score' (the first-stage score) for --first-stage, "
                f"got {score!r}"
            )
        docs.append({"text": obj["text"], "title": obj.get("title") or ""})
        scores.append(float(score))
    return docs, scores


def _read_rank_input(
    stream: TextIO, args: argparse.Namespace, fmt: str, name: str
) -> tuple[list[Any], list[float] | None]:
    if args.first_stage:
        return read_scored_docs(stream, fmt, name=name)
    return read_docs(stream, fmt, name=name), None


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text, or an :class:`InputError` naming ``name`` and the first bad byte.

    Strict on purpose: decoding binary input leniently would rank U+FFFD garbage and exit 0.
    A leading byte-order mark is dropped; gzip data and NUL bytes are refused as not text.
    """
    if data[:2] == b"\x1f\x8b":
        raise InputError(f"{name}: gzip-compressed, not text; decompress it first (zcat {name} | ranker rank ...)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}: not UTF-8 text (byte {exc.start}); convert it (iconv -t UTF-8) or pass a text file"
        ) from exc
    nul = text.find("\0")
    if nul >= 0:
        raise InputError(f"{name}: not UTF-8 text (byte {len(text[:nul].encode())} is NUL: a binary file?)")
    return text.removeprefix("\ufeff")


def _cmd_rank(args: argparse.Namespace) -> int:
    if args.docs == "-":
        if sys.stdin.isatty():  # nobody is piping docs in: say so instead of waiting silently
            print(
                "error: no docs: pass --docs FILE, or pipe them in: cat docs.txt | ranker rank --query ...\n"
                "       (ranker rank --help shows the formats)",
                file=sys.stderr,
            )
            return 2
        text = decode_text(sys.stdin.buffer.read(), "<stdin>")
        docs, first_stage = _read_rank_input(io.StringIO(text), args, args.format, "<stdin>")
    else:
        path = Path(args.docs)
        fmt = args.format
        if fmt == "auto" and path.suffix in (".jsonl", ".json"):
            fmt = "jsonl"
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read --docs {path}: {exc.strerror}") from exc
        docs, first_stage = _read_rank_input(io.StringIO(decode_text(data, str(path))), args, fmt, str(path))
    ranker = Ranker.load(args.package, threads=args.threads)
    if first_stage is not None and ranker.config.fusion is None:
        print(
            f"note: {ranker.source} has no fusion rule (ranker package --fit-fusion): the first-stage "
            "scores are ignored and the docs are ranked by the model alone",
            file=sys.stderr,
        )
    hits = ranker.rank(args.query, docs, top_k=args.top_k, first_stage=first_stage)
    out = sys.stdout
    if args.json:
        for h in hits:
            row = {"index": h.index, "score": h.score, "doc": h.doc}
            if first_stage is not None:
                row["first_stage"] = first_stage[h.index]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        for rank, h in enumerate(hits, 1):
            d = h.doc
            text = d if isinstance(d, str) else (f"[{d['title']}] " if d.get("title") else "") + d["text"]
            text = " ".join(text.split())
            snippet = text if len(text) <= 100 else text[:97] + "..."
            out.write(f"{rank:>3}  {h.score:+.4f}  #{h.index:<4} {snippet}\n")
    return 0


_RANK_DESCRIPTION = """\
Score every document against the query with the package's cross-encoder and print them best
first. Higher scores are better. A score is the model's raw output (a logit) unless the package's
ranker.json says it is a calibrated probability (score.kind sigmoid): compare scores within one
query, not across queries.

Output columns: rank, score, #index of the doc in the input (0-based, blank lines not counted),
the doc's start ([title] text)."""

_RANK_EXAMPLES = """\
examples:
  ranker rank --query "is pew research trustworthy" --docs docs.jsonl --top-k 5
  printf 'Pew is a fact tank.\\nBananas are yellow.\\n' | ranker rank --query "pew research"
  ranker rank --query "..." --docs docs.jsonl --json --package path/to/package.tar.gz"""


def _print_fusion(fusion: Any) -> None:
    """The fusion rule and the figures the packager recorded with it, one line per data set.

    ``fusion.info`` is the packager's free-form record: what is there is printed, whatever its
    shape. Its measure is the fit's own (nDCG with gain ``2**grade - 1`` over the judged
    candidates), named on the line, since ``ranker eval`` reports trec-dl with trec_eval's gain.
    """
    info = fusion.info
    fitted = info.get("fitted_on")
    where = ", ".join(map(str, fitted)) if isinstance(fitted, list) else str(fitted or "?")
    print(f"    fusion: {fusion.kind}, first-stage weight {fusion.weight:g}, fitted on {where}")
    measure = f"{info.get('metric', 'ndcg@10')}, gain 2^grade - 1 over judged candidates"
    raw = info.get("sources")
    sources = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    if not sources and isinstance(info.get("dev"), dict):  # a record with pooled figures only
        sources = [{"data": "all fitted data"} | info["dev"]]
    for src in sources:
        print(
            f"        {src.get('data')} ({src.get('queries')} queries, {measure}): model {src.get('model')}, "
            f"first stage {src.get('first_stage')}, fused {src.get('fused')}"
        )


def _cmd_info(args: argparse.Namespace) -> int:
    ranker = Ranker.load(args.package, threads=1)
    cfg = ranker.config
    print(f"package {ranker.source}")
    print(
        f"    precision {cfg.quantization.get('precision', 'unknown')}, max_length {cfg.max_length}, "
        f"query_max_tokens {cfg.query_max_tokens}, inputs {list(cfg.inputs)}, batching {cfg.batching}"
    )
    prov = cfg.provenance or {}
    for key in ("base_model", "training_data", "distillation", "code_commit"):
        if prov.get(key):
            print(f"    {key} {prov[key]}")
    if cfg.fusion is None:
        print("    fusion: none (first_stage scores are ignored)")
    else:
        _print_fusion(cfg.fusion)
    if ranker.model_card is None:
        print("    (no model card in this package)")
    else:
        print()
        print(ranker.model_card.rstrip())
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    ranker = Ranker.load(args.package, threads=1)
    scores = ranker.score(
        "what is the capital of france",
        ["Paris is the capital and largest city of France.", "Bananas are rich in potassium."],
    )
    import numpy as np

    if not np.all(np.isfinite(scores)):
        print(f"error: {ranker.source}: smoke query gave non-finite scores {scores.tolist()}", file=sys.stderr)
        return 1
    cfg = ranker.config
    print(f"ok: {ranker.source}: manifest verified, model loads, smoke scores {[round(float(s), 4) for s in scores]}")
    quant = cfg.quantization.get("precision", "unknown")
    print(f"    precision {quant}, max_length {cfg.max_length}, inputs {list(cfg.inputs)}")
    return 0


def _missing_extra(extra: str, module: str, err: Exception) -> Any:
    def run(args: argparse.Namespace) -> int:
        print(
            f"error: this command needs the '{extra}' extra ({module} failed to import: {err}); "
            f"install it with: pip install 'ranker-sdk[{extra}]'",
            file=sys.stderr,
        )
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ranker", description="Train, package and run distilled cross-encoder rankers."
    )
    parser.add_argument("--version", action="version", version=f"ranker-sdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "rank",
        help="rank documents for a query with a package",
        description=_RANK_DESCRIPTION,
        epilog=_RANK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--package", default=None, help="package dir or .tar.gz (default: the package bundled with ranker-sdk)"
    )
    p.add_argument("--query", required=True, help="the query text (required)")
    p.add_argument("--docs", default="-", help="UTF-8 file of docs, or - to read them from stdin (default: -)")
    p.add_argument(
        "--format",
        choices=("auto", "jsonl", "text"),
        default="auto",
        help='jsonl: one {"text": ..., "title": ...} object a line; text: one doc a line; '
        "auto (default): jsonl for a .jsonl/.json file or when the first line starts with {",
    )
    p.add_argument("--top-k", type=int, default=None, help="print only the best K (default: all)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: one per core)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object a hit: index, score, doc (default: a table)"
    )
    p.add_argument(
        "--first-stage",
        action="store_true",
        help="fuse each JSONL doc's 'score' field (the retriever's score, higher is better) with "
        "the model's score, by the package's fusion rule",
    )
    p.set_defaults(func=_cmd_rank)

    p = sub.add_parser("verify", help="check a package's manifest, load it and score a smoke query")
    p.add_argument("package", nargs="?", default=None, help="package dir or .tar.gz (default: the bundled package)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("info", help="show a package's settings and its model card")
    p.add_argument("package", nargs="?", default=None, help="package dir or .tar.gz (default: the bundled package)")
    p.set_defaults(func=_cmd_info)

    stages: dict[str, list] = {}  # one register call per stage, however many commands it declares
    for ep in entry_points(group=COMMANDS_GROUP):
        stages.setdefault(ep.value, []).append(ep)
    for eps in stages.values():
        try:
            eps[0].load()(sub)
        except ImportError as exc:
            extra = eps[0].extras[0] if eps[0].extras else "all"
            for ep in eps:
                q = sub.add_parser(ep.name, help=f"(needs ranker-sdk[{extra}])", add_help=False)
                q.add_argument("rest", nargs=argparse.REMAINDER)
                q.set_defaults(func=_missing_extra(extra, ep.module, exc))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ranker`` command; returns the exit status.

    A user's mistake ends as one line, ``error: <message>``, and status 1 (argparse's own usage
    errors: status 2): a :class:`RankerError` from any stage, or an ``OSError`` (a path the
    command cannot read or write: a file where a folder goes, no permission, a full disk),
    whose message names the path. Anything else is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (RankerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
