"""Reading ranking data in the BEIR layout into per-query candidate groups.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``), ``qrels/<split>.tsv`` (header ``query-id corpus-id score``) and, for
reranking, ``candidates.run`` (TREC run format ``qid Q0 docid rank score tag``). A
:class:`Group` is one query with its candidates in run order and their graded labels
(``None`` where a candidate is unjudged). Pure Python + json: usable from the base install.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ranker_sdk.errors import InputError
from ranker_sdk.jsonl import finite_float, read_lines
from ranker_sdk.jsonl import read_jsonl as _read_jsonl

__all__ = [
    "Group",
    "load_groups",
    "parse_source",
    "parse_split",
    "read_corpus",
    "read_queries",
    "read_qrels",
    "read_run",
]


@dataclass(frozen=True)
class Group:
    """One query and its candidates, in the order of ``candidates.run``."""

    qid: str
    query: str
    doc_ids: tuple[str, ...]
    docs: tuple[dict, ...]  # {"title": str, "text": str}
    labels: tuple[int | None, ...]  # graded label per candidate, None if unjudged


def read_jsonl(
    path: Path, *, error: type[Exception] = InputError, kind: str = "file", expect: str = "one JSON object a line"
) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of each non-blank line of a JSONL file: :func:`ranker_sdk.jsonl.read_jsonl`.

    Every malformation (not UTF-8, not JSON, nested too deep, not an object) raises ``error``
    naming ``path:line``; the one JSONL reader of the project (BEIR files here, click logs in
    :func:`ranker_training.data.load_clicklog`, docs in ``ranker rank``).
    """
    return _read_jsonl(path, error=error, kind=kind, expect=expect)


# The fields of a BEIR line (required, optional); any other field is refused, naming the line.
_CORPUS_FIELDS = (("_id", "text"), ("title", "metadata"))
_QUERY_FIELDS = (("_id", "text"), ("metadata",))


def _jsonl(path: Path, fields: tuple[tuple[str, ...], tuple[str, ...]]) -> Iterator[tuple[int, dict]]:
    """``(line, object)`` of a BEIR JSONL file, each checked: str required fields, str-or-null
    ``title``, no unknown field (errors name ``path:line``)."""
    if not Path(path).is_file():
        raise InputError(f"{path} not found: expected a BEIR folder")
    required, optional = fields
    for n, obj in read_jsonl(path):
        if not all(isinstance(obj.get(f), str) for f in required):
            raise InputError(f"{path}:{n}: expected an object with str {' and '.join(map(repr, required))}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            raise InputError(f"{path}:{n}: unknown field(s) {unknown}; a line has {list(required + optional)}")
        if obj.get("title") is not None and not isinstance(obj["title"], str):
            raise InputError(f"{path}:{n}: 'title' must be a str, got {type(obj['title']).__name__}")
        yield n, obj


def read_corpus(root: Path, wanted: set[str] | None = None) -> dict[str, dict]:
    """``_id -> {"title", "text"}`` (only ``wanted`` ids when given)."""
    out = {}
    for _, d in _jsonl(Path(root) / "corpus.jsonl", _CORPUS_FIELDS):
        if wanted is None or d["_id"] in wanted:
            out[d["_id"]] = {"title": d.get("title") or "", "text": d["text"]}
    return out


def read_queries(root: Path) -> dict[str, str]:
    return {q["_id"]: q["text"] for _, q in _jsonl(Path(root) / "queries.jsonl", _QUERY_FIELDS)}


def read_qrels(root: Path, split: str) -> dict[str, dict[str, int]]:
    """``qid -> {docid: grade}`` of ``qrels/<split>.tsv`` (``query-id corpus-id score`` a line, tab-separated).

    A line without exactly three fields, or whose grade is not an integer, is refused (naming it).
    """
    path = Path(root) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise InputError(f"{path} not found: split {split!r} does not exist in {root}")
    out: dict[str, dict[str, int]] = {}
    for n, line in read_lines(path, kind="qrels"):
        parts = line.split("\t")
        if (n == 1 and parts[0] == "query-id") or not line.strip():
            continue
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise InputError(f"{path}:{n}: expected 'query-id<TAB>corpus-id<TAB>grade', got {line[:80]!r}")
        out.setdefault(parts[0], {})[parts[1]] = _grade(parts[2], f"{path}:{n}")
    return out


def _grade(text: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer() or abs(value) > 1000:
        raise InputError(f"{where}: grade {text[:40]!r} is not an integer grade")
    return int(value)


def _run_rows(root: Path) -> Iterator[tuple[int, str, int, str]]:
    """``(line, qid, rank, docid)`` of ``candidates.run``: six fields a line, an integer rank, a finite score."""
    path = Path(root) / "candidates.run"
    for n, line in read_lines(path, kind="run"):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{n}"
        if len(parts) != 6:
            raise InputError(
                f"{where}: expected 'qid Q0 docid rank score tag' (6 fields), got {len(parts)}: {line[:80]!r}"
            )
        try:
            rank = int(parts[3])
        except ValueError:
            raise InputError(
                f"{where}: rank {parts[3][:40]!r} is not an integer (qid Q0 docid rank score tag)"
            ) from None
        finite_float(parts[4], where, "score")
        yield n, parts[0], rank, parts[2]


def read_run(root: Path) -> dict[str, list[str]]:
    """``qid -> [docid, ...]`` from ``candidates.run``, by rank; a malformed line is refused, naming it."""
    rows: dict[str, list[tuple[int, str]]] = {}
    for _, qid, rank, docid in _run_rows(root):
        rows.setdefault(qid, []).append((rank, docid))
    return {q: [d for _, d in sorted(v)] for q, v in rows.items()}


def _check_run_docs(root: Path, wanted: set[str], corpus: dict) -> None:
    """Refuse a run that names a docid ``corpus.jsonl`` lacks (the candidate would vanish silently)."""
    missing = wanted - corpus.keys()
    if not missing:
        return
    for n, _, _, docid in _run_rows(root):
        if docid in missing:
            raise InputError(
                f"{Path(root) / 'candidates.run'}:{n}: docid {docid!r} is not in corpus.jsonl "
                f"({len(missing)} run docid(s) missing); the run and the corpus must match"
            )


def parse_split(split: str) -> tuple[str, str | None, bool]:
    """``"train"`` -> ``("train", None, False)``; ``"train:dl21-"`` keeps the qids that start with
    ``dl21-``; ``"train:!dl21-"`` drops them (a dev split held out by query from one qrels file).

    >>> parse_split("train:!dl21-")
    ('train', 'dl21-', True)
    """
    name, _, prefix = split.partition(":")
    exclude = prefix.startswith("!")
    prefix = prefix[1:] if exclude else prefix
    if not name or (":" in split and not prefix):
        raise InputError(f"split {split!r}: expected NAME, NAME:QID_PREFIX or NAME:!QID_PREFIX")
    return name, prefix or None, exclude


def parse_source(spec: str, default_split: str) -> tuple[str, str] | None:
    """A ``--data`` value, ``DIR`` or ``DIR=SPLIT``, as ``(dir, split)``; None when one side is empty.

    The last ``=`` separates, so a folder name may hold one. The caller says what was wrong, in
    its own error class.

    >>> parse_source("data/trec-dl=train:dl21-", "dev"), parse_source("data/wikiqa", "dev"), parse_source("x=", "dev")
    (('data/trec-dl', 'train:dl21-'), ('data/wikiqa', 'dev'), None)
    """
    if "=" not in spec:
        return (spec, default_split) if spec else None
    path, _, split = spec.rpartition("=")
    return (path, split) if path and split else None


def _keep(qid: str, prefix: str | None, exclude: bool) -> bool:
    return prefix is None or qid.startswith(prefix) != exclude


def load_groups(
    root: str | Path, split: str, *, max_queries: int | None = None, unjudged_queries: bool = False
) -> list[Group]:
    """The candidate groups of the queries in ``qrels/<split>.tsv``, sorted by qid.

    Candidates come from ``candidates.run`` when present (judged or not), else from the qrels.
    ``split`` may filter qids by prefix (:func:`parse_split`): ``train:dl21-`` is trec-dl's DL21
    queries only. ``unjudged_queries`` also takes the queries of ``candidates.run`` that have no
    qrels at all (every label None: pairs for a teacher to label), filtered the same way.
    """
    root = Path(root)
    name, prefix, exclude = parse_split(split)
    qrels = read_qrels(root, name)
    run = read_run(root) if (root / "candidates.run").is_file() else {q: sorted(d) for q, d in qrels.items()}
    queries = read_queries(root)
    pool = set(qrels) | (set(run) if unjudged_queries else set())
    qids = sorted(q for q in pool if q in run and q in queries and _keep(q, prefix, exclude))
    if max_queries is not None:
        qids = qids[:max_queries]
    wanted = {d for q in qids for d in run[q]}
    corpus = read_corpus(root, wanted)
    if (root / "candidates.run").is_file():
        _check_run_docs(root, wanted, corpus)
    groups = []
    for q in qids:
        ids = tuple(d for d in run[q] if d in corpus)
        judged = qrels.get(q, {})
        groups.append(
            Group(
                qid=q,
                query=queries[q],
                doc_ids=ids,
                docs=tuple(corpus[d] for d in ids),
                labels=tuple(judged.get(d) for d in ids),
            )
        )
    return groups
