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
import importlib.util
import io
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import InputError, RankerError
from .jsonl import finite_float, iter_jsonl
from .ranker import CHUNK_DOCS, Ranker

__all__ = ["main", "read_docs", "read_scored_docs", "decode_text", "build_parser"]

COMMANDS_GROUP = "ranker.commands"


def _lines(stream: TextIO) -> list[str]:
    return [ln.rstrip("\r\n") for ln in stream]


def read_docs(stream: TextIO, fmt: str = "auto", *, name: str = "<stdin>") -> list[Any]:
    """Read documents: JSONL (one ``{"text": .., "title": ..}`` object per line) or text (one doc a line).

    ``fmt="auto"`` picks JSONL when the first non-empty line starts with ``{``. Empty lines are
    skipped in both formats. A JSONL doc comes back as given, with every field it has (``id``,
    ``url``, ...), so ``ranker rank --json`` hands it back unchanged.

    Raises:
        InputError: a JSONL line that is not an object with a str ``text`` (and a str ``title``
            or none); the message names ``FILE:LINE``.
    """
    lines = _lines(stream)
    if fmt == "auto":
        first = next((ln for ln in lines if ln.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "text"
    if fmt == "text":
        return [ln for ln in lines if ln.strip()]
    return [obj for _, obj in _jsonl_docs(lines, name)]


def _jsonl_docs(lines: list[str], name: str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of each JSONL doc line, checked for a str ``text`` and ``title``."""
    out = []
    for i, obj in iter_jsonl(lines, name, expect='one {"text": ..., "title": ...} object a line'):
        title = obj.get("title")
        if not isinstance(obj.get("text"), str) or not (title is None or isinstance(title, str)):
            raise InputError(f"{name}:{i}: a doc must be an object with a str 'text' (and optional str 'title')")
        out.append((i, obj))
    return out


def read_scored_docs(stream: TextIO, fmt: str = "auto", *, name: str = "<stdin>") -> tuple[list[Any], list[float]]:
    """JSONL docs and their first-stage scores: ``{"text": .., "title": .., "score": 12.3}`` a line.

    ``score`` is the retriever's score, higher is better (write ``-rank`` when only the order is
    known); ``ranker rank --first-stage`` fuses it with the model's (:mod:`ranker_sdk.fusion`).

    Raises:
        InputError: text input, or a line whose ``score`` is missing, not a number, or not finite
            (the message names ``FILE:LINE``).
    """
    lines = _lines(stream)
    first = next((ln for ln in lines if ln.strip()), "")
    if fmt == "text" or (fmt == "auto" and first and not first.lstrip().startswith("{")):
        raise InputError(f'{name}: --first-stage needs JSONL docs, one {{"text": ..., "score": ...}} object a line')
    docs, scores = [], []
    for i, obj in _jsonl_docs(lines, name):
        if "score" not in obj:
            raise InputError(f"{name}:{i}: needs a numeric 'score' (the first-stage score) for --first-stage")
        if isinstance(obj["score"], str):  # JSON has numbers; a quoted one is a mistake upstream
            raise InputError(f"{name}:{i}: 'score' must be a number, got {obj['score'][:40]!r}")
        scores.append(finite_float(obj["score"], f"{name}:{i}", "'score'"))
        docs.append(obj)
    return docs, scores


def _read_rank_input(
    stream: TextIO, args: argparse.Namespace, fmt: str, name: str
) -> tuple[list[Any], list[float] | None]:
    if args.first_stage:
        docs, first = read_scored_docs(stream, fmt, name=name)
    else:
        docs, first = read_docs(stream, fmt, name=name), None
    if not docs:
        raise InputError(f"{name}: no docs (empty, or only blank lines); pass one doc a line, or JSONL")
    return docs, first


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


def _read_docs_arg(args: argparse.Namespace) -> tuple[list[Any], list[float] | None]:
    """The docs (and first-stage scores) of ``--docs``: a file, or stdin."""
    if args.docs == "-":
        text = decode_text(sys.stdin.buffer.read(), "<stdin>")
        return _read_rank_input(io.StringIO(text), args, args.format, "<stdin>")
    path = Path(args.docs)
    fmt = args.format
    if fmt == "auto" and path.suffix in (".jsonl", ".json"):
        fmt = "jsonl"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read --docs {path}: {exc.strerror}") from exc
    return _read_rank_input(io.StringIO(decode_text(data, str(path))), args, fmt, str(path))


def _read_query(args: argparse.Namespace) -> str:
    """``--query TEXT``, ``--query -`` (stdin) or ``--query-file PATH``: a query too long for argv fits a file."""
    if args.query is not None and args.query != "-":
        return args.query
    if args.query == "-":
        if args.docs == "-":
            raise InputError("--query - and --docs - both read stdin; pass the docs with --docs FILE")
        return decode_text(sys.stdin.buffer.read(), "<stdin>").strip()
    try:
        data = Path(args.query_file).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read --query-file {args.query_file}: {exc.strerror}") from exc
    return decode_text(data, args.query_file).strip()


class _ProgressBar:
    """``ranking  1024/2000 docs [12s]`` on stderr, redrawn in place; the SDK calls it per chunk."""

    def __init__(self, total: int) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self._total = total
        self(0, total)

    def __call__(self, done: int, total: int) -> None:
        width = 30
        fill = width * done // max(total, 1)
        elapsed = self._clock() - self._start
        sys.stderr.write(f"\rranking  [{'#' * fill}{'.' * (width - fill)}] {done}/{total} docs [{elapsed:.0f}s]")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _want_progress(n_docs: int) -> bool:
    """A bar for more than one chunk of docs, when stderr is a terminal (``RANKER_PROGRESS=1``/``0`` forces it)."""
    forced = os.environ.get("RANKER_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1" and n_docs > CHUNK_DOCS
    return n_docs > CHUNK_DOCS and sys.stderr.isatty()


def _cmd_rank(args: argparse.Namespace) -> int:
    if args.docs == "-" and sys.stdin.isatty() and args.query != "-":
        # nobody is piping docs in: say so instead of waiting silently
        print(
            "error: no docs: pass --docs FILE, or pipe them in: cat docs.txt | ranker rank --query ...\n"
            "       (ranker rank --help shows the formats)",
            file=sys.stderr,
        )
        return 2
    query = _read_query(args)
    docs, first_stage = _read_docs_arg(args)
    ranker = Ranker.load(package_arg(args.package), threads=args.threads or None)
    if first_stage is not None and ranker.config.fusion is None:
        print(
            f"note: {ranker.source} has no fusion rule (ranker package --fit-fusion): the first-stage "
            "scores are ignored and the docs are ranked by the model alone",
            file=sys.stderr,
        )
    bar = _ProgressBar(len(docs)) if _want_progress(len(docs)) else None
    try:
        hits = ranker.rank(query, docs, top_k=args.top_k, first_stage=first_stage, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    _print_hits(hits, first_stage, args.json)
    return 0


def _print_hits(hits: list[Any], first_stage: list[float] | None, as_json: bool) -> None:
    out = sys.stdout
    if as_json:
        for h in hits:
            row = {"index": h.index, "score": h.score, "doc": h.doc}
            if first_stage is not None:
                row["first_stage"] = first_stage[h.index]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    for rank, h in enumerate(hits, 1):
        d = h.doc
        text = d if isinstance(d, str) else (f"[{d['title']}] " if d.get("title") else "") + d["text"]
        text = " ".join(text.split())
        snippet = text if len(text) <= 100 else text[:97] + "..."
        out.write(f"{rank:>3}  {h.score:+.4f}  #{h.index:<4} {snippet}\n")


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


DEFAULT_PACKAGE = "default"


def package_arg(value: str | None) -> str | None:
    """A ``--package`` value as :meth:`Ranker.load` takes it: ``default`` (or nothing) is the bundled package.

    A folder that happens to be called ``default`` is named ``./default``.
    """
    return None if value in (None, DEFAULT_PACKAGE) else value


def add_package_option(p: argparse.ArgumentParser, *, positional: bool = False, what: str = "package") -> None:
    """``--package PKG`` (and, for verify/info, the same as an optional positional), one spelling everywhere."""
    help_ = f"{what} dir or .tar.gz; 'default' (the default) is the package bundled with ranker-sdk"
    p.add_argument("--package", default=None, metavar="PKG", help=help_)
    if positional:
        p.add_argument("package_pos", nargs="?", default=None, metavar="PKG", help="the same as --package PKG")


def _package_of(args: argparse.Namespace) -> str | None:
    pos = getattr(args, "package_pos", None)
    if pos is not None and args.package is not None and pos != args.package:
        raise InputError(f"two packages given: {pos!r} and --package {args.package!r}; pass one")
    return package_arg(args.package if args.package is not None else pos)


def _cmd_info(args: argparse.Namespace) -> int:
    ranker = Ranker.load(_package_of(args), threads=1)
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
    ranker = Ranker.load(_package_of(args), threads=1)
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


# The extra each heavy command needs, and a module that only that extra installs (looked up with
# find_spec, which imports nothing, so `ranker --help` stays fast).
_COMMAND_EXTRA = {"train": "train", "eval": "eval", "package": "quantize", "fusion": "eval", "bindings": "bindings"}
_EXTRA_PROBE = {
    "train": ("torch", "transformers", "rank_bm25"),
    "quantize": ("torch", "transformers", "onnx", "optimum"),
    "eval": ("ir_measures", "scipy", "tqdm"),
    "bindings": ("cffi",),
}
# A missing third-party module -> the smallest extra that installs it (torch, transformers: the
# command's own extra).
_MODULE_EXTRA = {
    "rank_bm25": "train",
    "peft": "train",
    "accelerate": "train",
    "gguf": "train",
    "yaml": "train",
    "matplotlib": "train",
    "onnx": "quantize",
    "optimum": "quantize",
    "ir_measures": "eval",
    "scipy": "eval",
    "tqdm": "eval",
    "cffi": "bindings",
}


_FALLBACK_HELP = {
    "train": "train: cpt, teacher, label, distill, or the full recipe",
    "eval": "nDCG@k, MAP, MRR, PNR of a model or baseline on candidate groups",
    "package": "export, optimize, INT8-quantize, verify and package a cross-encoder checkpoint",
    "fusion": "refit a package's first-stage fusion weight on your labelled candidates",
    "bindings": "the C ABI: build libranker.so and ranker.h",
}


def _extra_installed(extra: str) -> bool:
    """Whether ``extra``'s modules are importable (an extra of another distribution's stage cannot be
    probed; its stage's own import failure says what is missing)."""
    return all(importlib.util.find_spec(m) is not None for m in _EXTRA_PROBE.get(extra, ()))


def _missing_extra(extra: str, module: str, err: Exception) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise _extra_error(args.command, extra, getattr(err, "name", None) or module)

    return run


def _extra_error(command: str, extra: str, module: str) -> InputError:
    return InputError(
        f"'ranker {command}' needs the {extra} extra ({module} is not installed): pip install 'ranker-sdk[{extra}]'"
    )


def _check_extra(args: argparse.Namespace) -> None:
    """Before a command that cannot run at all without its extra does anything: say which extra to install.

    ``eval`` and ``fusion`` need the eval extra for any model; what else a model needs (``eval
    --model bm25``: train's rank_bm25) shows when it is imported (:func:`_missing_module_error`).
    """
    extra = getattr(args, "extra", None)
    if extra is not None and not _extra_installed(extra):
        missing = next(m for m in _EXTRA_PROBE[extra] if importlib.util.find_spec(m) is None)
        raise _extra_error(args.command_name, extra, missing)


def _missing_module_error(args: argparse.Namespace, exc: ModuleNotFoundError) -> InputError | None:
    """The one-line error for a third-party module a command imported and did not find; None for our own."""
    top = (exc.name or "").split(".")[0]
    if not top or top.startswith("ranker_") or not hasattr(args, "extra"):
        return None
    # eval of a package needs only the eval extra; of a checkpoint (torch, transformers), train's
    fallback = "train" if args.extra == "eval" else args.extra
    return _extra_error(args.command_name, _MODULE_EXTRA.get(top, fallback), top)


def _add_rank_parser(sub: Any) -> None:
    p = sub.add_parser(
        "rank",
        help="rank documents for a query with a package",
        description=_RANK_DESCRIPTION,
        epilog=_RANK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_package_option(p)
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--query", help="the query text, or - to read it from stdin (then pass --docs FILE)")
    q.add_argument("--query-file", metavar="PATH", help="read the query from this UTF-8 file (a query of any length)")
    p.add_argument("--docs", default="-", help="UTF-8 file of docs, or - to read them from stdin (default: -)")
    p.add_argument(
        "--format",
        choices=("auto", "jsonl", "text"),
        default="auto",
        help='jsonl: one {"text": ..., "title": ...} object a line; text: one doc a line; '
        "auto (default): jsonl for a .jsonl/.json file or when the first line starts with {",
    )
    p.add_argument("--top-k", type=int, default=None, help="print only the best K (default: all)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime intra-op threads (default: 1, the fastest on a busy host; 0: one per core)",
    )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ranker", description="Train, package and run distilled cross-encoder rankers."
    )
    parser.add_argument("--version", action="version", version=f"ranker-sdk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_rank_parser(sub)

    p = sub.add_parser("verify", help="check a package's manifest, load it and score a smoke query")
    add_package_option(p, positional=True)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("info", help="show a package's settings and its model card")
    add_package_option(p, positional=True)
    p.set_defaults(func=_cmd_info)

    stages: dict[str, list] = {}  # one register call per stage, however many commands it declares
    for ep in entry_points(group=COMMANDS_GROUP):
        stages.setdefault(ep.value, []).append(ep)
    for eps in stages.values():
        names = [ep.name for ep in eps]
        extra = eps[0].extras[0] if eps[0].extras else "all"
        try:
            eps[0].load()(sub)
        except ImportError as exc:
            for name in names:
                q = sub.add_parser(name, help=_FALLBACK_HELP.get(name, f"(needs ranker-sdk[{extra}])"), add_help=False)
                q.add_argument("rest", nargs=argparse.REMAINDER)
                q.set_defaults(func=_missing_extra(extra, eps[0].module, exc))
        for name in names:
            sub.choices[name].set_defaults(extra=_COMMAND_EXTRA.get(name, extra), command_name=name)
    _mark_missing_extras(sub)
    return parser


def _mark_missing_extras(sub: Any) -> None:
    """Append "needs the X extra" to the help line of each command whose extra is not installed here."""
    for action in sub._choices_actions:  # argparse keeps the help lines of subcommands here
        extra = _COMMAND_EXTRA.get(action.dest)
        if extra and not _extra_installed(extra):
            action.help = (action.help or "") + f" [needs the {extra} extra: pip install 'ranker-sdk[{extra}]']"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ranker`` command; returns the exit status.

    A user's mistake ends as one line, ``error: <message>``, and status 1 (argparse's own usage
    errors: status 2): a :class:`RankerError` from any stage, or an ``OSError`` (a path the
    command cannot read or write: a file where a folder goes, no permission, a full disk),
    whose message names the path. Anything else is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        _check_extra(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `ranker info | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RankerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        err = _missing_module_error(args, exc)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
