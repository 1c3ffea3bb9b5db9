"""Reading ranking data in the BEIR layout into per-query candidate groups.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``), ``qrels/<split>.tsv`` (header ``query-id corpus-id score``) and, for
reranking, ``candidates.run`` (TREC run format ``qid Q0 docid rank score tag``). A
:class:`Group` is one query with its candidates in run order and their graded labels
(``None`` where a candidate is unjudged). Pure Python + json: usable from the base install.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ranker_sdk.errors import InputError

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
    """``(line number, object)`` of each non-blank line of a JSONL file.

    A line that is not a JSON object raises ``error`` naming ``path:line`` and ``expect``; a file
    that cannot be opened raises ``error`` too (``kind`` says what the file should have been).
    The one JSONL reader of the project (BEIR files here, click logs in
    :func:`ranker_training.data.load_clicklog`).
    """
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {kind} {path}: {exc.strerror}") from exc
    with fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise error(f"{path}:{n}: not valid JSON ({exc}); expected {expect}") from exc
                if not isinstance(obj, dict):
                    raise error(f"{path}:{n}: expected {expect}, got {type(obj).__name__}")
                yield n, obj


def _jsonl(path: Path, fields: tuple[str, ...] = ("_id",)) -> Iterator[dict]:
    """The objects of a BEIR JSONL file, each checked for str ``fields`` (errors name ``path:line``)."""
    if not Path(path).is_file():
        raise InputError(f"{path} not found: expected a BEIR folder")
    for n, obj in read_jsonl(path):
        if not all(isinstance(obj.get(f), str) for f in fields):
            raise InputError(f"{path}:{n}: expected an object with str {' and '.join(map(repr, fields))}")
        yield obj


def read_corpus(root: Path, wanted: set[str] | None = None) -> dict[str, dict]:
    """``_id -> {"title", "text"}`` (only ``wanted`` ids when given)."""
    out = {}
    for d in _jsonl(Path(root) / "corpus.jsonl"):
        if wanted is None or d["_id"] in wanted:
            out[d["_id"]] = {"title": d.get("title") or "", "text": d.get("text") or ""}
    return out


def read_queries(root: Path) -> dict[str, str]:
    return {q["_id"]: q["text"] for q in _jsonl(Path(root) / "queries.jsonl", ("_id", "text"))}


def read_qrels(root: Path, split: str) -> dict[str, dict[str, int]]:
    """``qid -> {docid: grade}`` of ``qrels/<split>.tsv``."""
    path = Path(root) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise InputError(f"{path} not found: split {split!r} does not exist in {root}")
    out: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            parts = line.rstrip("\n").split("\t")
            if n == 0 and parts[0] == "query-id":
                continue
            if len(parts) >= 3:
                try:
                    grade = int(float(parts[2]))
                except (ValueError, OverflowError) as exc:  # not a number, nan or inf
                    raise InputError(f"{path}:{n + 1}: grade {parts[2]!r} is not a finite number") from exc
                out.setdefault(parts[0], {})[parts[1]] = grade
    return out


def read_run(root: Path) -> dict[str, list[str]]:
    """``qid -> [docid, ...]`` from ``candidates.run``, by rank."""
    rows: dict[str, list[tuple[int, str]]] = {}
    path = Path(root) / "candidates.run"
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if len(parts) >= 4:
                try:
                    rank = int(parts[3])
                except ValueError as exc:
                    raise InputError(
                        f"{path}:{n}: rank {parts[3]!r} is not an integer (qid Q0 docid rank score tag)"
                    ) from exc
                rows.setdefault(parts[0], []).append((rank, parts[2]))
    return {q: [d for _, d in sorted(v)] for q, v in rows.items()}


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
