"""Training data: per-query candidate groups from BEIR folders and click logs, and group sampling.

Two readers, one result type (:class:`ranker_eval.beir.Group`: a query, its candidates in
first-stage order, a graded label or None per candidate):

- a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``, optional
  ``candidates.run``) via :func:`ranker_eval.beir.load_groups`;
- a click log, a ``.jsonl`` file with one shown result a line::

      {"query": "what is bm25", "title": "Okapi BM25", "summary": "BM25 is a ranking ...", "clicks": 3}

  ``label`` (a grade) or ``clicks`` (a count; label = 1 if clicks > 0 else 0) gives the label.
  Lines with the same ``query`` form one group, in file order. Optional ``qid``/``docid``
  fields are kept; otherwise ids are derived from the text (stable across runs).

Sampling is a pure function of ``(seed, step, ...)`` so that a resumed run sees exactly the
batches it would have seen, without pickling a data loader's state.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from ranker_eval.beir import Group, load_groups, read_jsonl

from .config import DataSource
from .errors import ConfigError, DataError

__all__ = [
    "Group",
    "load_clicklog",
    "load_sources",
    "load_sourced",
    "weighted_items",
    "sample_group",
    "sample_scored",
    "schedule",
    "judged",
    "trainable",
]

log = logging.getLogger(__name__)


def _hid(prefix: str, text: str) -> str:
    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_clicklog(path: str | Path, *, max_queries: int | None = None) -> list[Group]:
    """Read a click-log JSONL (``query``, ``title``, ``summary``, ``label`` or ``clicks``) into groups.

    Raises:
        DataError: the file cannot be read, or a line is not such an object (``path:line`` in
            the message).
    """
    path = Path(path)
    rows: dict[str, list[dict]] = {}
    for n, r in read_jsonl(path, error=DataError, kind="click log", expect="one click-log object a line"):
        if not isinstance(r.get("query"), str):
            raise DataError(f"{path}:{n}: expected an object with a str 'query'")
        label = _click_label(r, f"{path}:{n}")
        doc = {"title": r.get("title") or "", "text": r.get("summary") or r.get("text") or ""}
        docid = str(r.get("docid") or _hid("d", doc["title"] + "\x00" + doc["text"]))
        rows.setdefault(r["query"], []).append({"docid": docid, "doc": doc, "label": label, "qid": r.get("qid")})
    groups = []
    for query, items in rows.items():
        qid = str(items[0]["qid"] or _hid("q", query))
        groups.append(
            Group(
                qid=qid,
                query=query,
                doc_ids=tuple(i["docid"] for i in items),
                docs=tuple(i["doc"] for i in items),
                labels=tuple(i["label"] for i in items),
            )
        )
    groups.sort(key=lambda g: g.qid)
    return groups[:max_queries] if max_queries is not None else groups


def _click_label(r: dict, where: str) -> int | None:
    """The graded label of a click-log row: ``label`` (a grade, or null: unjudged), else ``clicks > 0``."""
    key = "label" if "label" in r else "clicks" if "clicks" in r else None
    if key is None:
        raise DataError(f"{where}: expected 'label' (a grade) or 'clicks' (a count)")
    if key == "label" and r[key] is None:
        return None
    try:
        value = int(r[key])
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{where}: {key!r} must be an integer, got {r[key]!r}") from exc
    return value if key == "label" else int(value > 0)


def load_sources(sources: Sequence[DataSource], *, max_queries: int | None = None) -> list[Group]:
    """All groups of several sources, concatenated (``max_queries`` applies to each source).

    A source with ``with_positive`` keeps only the queries that have a candidate with label > 0
    (``max_queries`` then counts those); one with ``unjudged_queries`` also keeps the queries
    that have no label at all (for the teacher to label).

    With more than one source, qids are prefixed with the source's folder/file name
    (``wikiqa/TQ12``) so that ids from different collections cannot collide; the labeller and
    the distiller read the same sources, so their qids agree.
    """
    return [g for g, _, _ in load_sourced(sources, max_queries=max_queries)]


def load_sourced(
    sources: Sequence[DataSource], *, max_queries: int | None = None
) -> list[tuple[Group, DataSource, str]]:
    """Like :func:`load_sources`, with each group's source and its qid as the source spells it."""
    if not sources:
        raise ConfigError("no data: give at least one source (data: [{path: DIR, split: train}])")
    out: list[tuple[Group, DataSource, str]] = []
    for src in sources:
        p = Path(src.path)
        n = min((m for m in (max_queries, src.max_queries) if m is not None), default=None)
        cap = None if src.with_positive else n  # filter first, then take n
        if p.is_file() and p.suffix == ".jsonl":
            groups = load_clicklog(p, max_queries=cap)
        elif p.is_dir():
            groups = load_groups(p, src.split, max_queries=cap, unjudged_queries=src.unjudged_queries)
        else:
            raise ConfigError(f"data source {src.path!r} is neither a BEIR folder nor a click-log .jsonl file")
        if src.with_positive:
            groups = [g for g in groups if any(y is not None and y > 0 for y in g.labels)][:n]
        raw = [g.qid for g in groups]
        if len(sources) > 1:
            name = p.stem if p.is_file() else p.name
            groups = [Group(f"{name}/{g.qid}", g.query, g.doc_ids, g.docs, g.labels) for g in groups]
        log.info("read %d queries, %d candidates from %s", len(groups), sum(len(g.doc_ids) for g in groups), src.path)
        out.extend((g, src, q) for g, q in zip(groups, raw))
    return out


def weighted_items(weights: Sequence[float], seed: int) -> list[int]:
    """Item indices for one pass over weighted items: ``floor(w)`` copies of each, plus one more
    with probability ``w - floor(w)`` (seeded, so a resumed run sees the same list).

    >>> weighted_items([2.0, 1.0, 0.0], 0)
    [0, 0, 1]
    """
    rng = random.Random(f"weights/{seed}")
    out = []
    for i, w in enumerate(weights):
        if w < 0:
            raise ConfigError(f"a data source weight must be >= 0, got {w}")
        n = int(w) + (1 if rng.random() < w - int(w) else 0)
        out.extend([i] * n)
    return out


def judged(group: Group) -> list[int]:
    """Indices of the candidates that have a label."""
    return [i for i, y in enumerate(group.labels) if y is not None]


def trainable(group: Group) -> bool:
    """True if the group has two judged candidates with different labels (a rank loss needs one)."""
    ys = {group.labels[i] for i in judged(group)}
    return len(ys) >= 2


def sample_group(group: Group, size: int, negatives: str, rng: random.Random) -> list[int]:
    """Candidate indices of one training group: a positive first, then lower-labelled candidates.

    The positive is drawn uniformly among the judged candidates whose label is above the
    group's lowest label; the rest (up to ``size - 1``) have a strictly lower label, taken in
    first-stage order (``"hard"``) or uniformly (``"random"``). The group must be
    :func:`trainable`.

    >>> g = Group("q", "query", ("a", "b", "c", "d"), ({},) * 4, (0, 1, None, 0))
    >>> sample_group(g, 3, "hard", random.Random(0))
    [1, 0, 3]
    """
    if negatives not in ("hard", "random"):
        raise ConfigError(f"group.negatives must be 'hard' or 'random', got {negatives!r}")
    idx = judged(group)
    low = min(group.labels[i] for i in idx)
    pos = rng.choice([i for i in idx if group.labels[i] > low])
    neg = [i for i in idx if group.labels[i] < group.labels[pos]]
    if negatives == "random":
        rng.shuffle(neg)
    return [pos] + neg[: size - 1]


def sample_scored(
    candidates: Sequence[int], size: int, rng: random.Random, targets: Sequence[float] | None = None
) -> list[int]:
    """Up to ``size`` of ``candidates`` (distillation: every scored candidate counts).

    Uniform when ``targets`` is None. With ``targets`` (the teacher's score of each candidate,
    same order), half the group is drawn from the teacher's top ``size`` and the rest uniformly
    from the others: the hard candidates a reranker must order are near the top, and a pool of
    hundreds (trec-dl) sampled uniformly would be mostly easy negatives.
    """
    cands = list(candidates)
    if len(cands) <= size:
        return cands
    if targets is None:
        return rng.sample(cands, size)
    order = sorted(range(len(cands)), key=lambda i: -targets[i])
    top, rest = order[:size], order[size:]
    k = size // 2
    chosen = rng.sample(top, k) + rng.sample(rest, min(size - k, len(rest)))
    return [cands[i] for i in chosen]


def schedule(
    n_items: int, batch_size: int, seed: int, step: int, micro: int, grad_accum: int, rank: int, world: int
) -> list[int]:
    """Item indices of one process's micro-batch: a pure function of the position in training.

    Items are visited in a fresh permutation per epoch (seeded by ``seed + epoch``); global
    micro-batch ``b = step * grad_accum + micro`` takes ``batch_size * world`` consecutive items
    of the endless sequence of epochs, and process ``rank`` takes its slice of them. A resumed
    run therefore continues with exactly the batches of an uninterrupted one.

    >>> schedule(10, 2, 0, 0, 0, 1, 0, 1) != schedule(10, 2, 0, 1, 0, 1, 0, 1)
    True
    """
    if n_items <= 0:
        raise ConfigError("no training items: the data has no usable query (check labels and splits)")
    per = batch_size * world
    start = ((step * grad_accum + micro) * per) + rank * batch_size
    out = []
    for pos in range(start, start + batch_size):
        epoch, off = divmod(pos, n_items)
        out.append(_perm(n_items, seed + epoch)[off])
    return out


_PERMS: dict[tuple[int, int], list[int]] = {}


def _perm(n: int, seed: int) -> list[int]:
    key = (n, seed)
    if key not in _PERMS:
        if len(_PERMS) > 8:
            _PERMS.clear()
        p = list(range(n))
        random.Random(seed).shuffle(p)
        _PERMS[key] = p
    return _PERMS[key]


def step_rng(seed: int, step: int, micro: int, rank: int) -> random.Random:
    """The RNG of one micro-batch (candidate sampling), reproducible on resume."""
    return random.Random(f"{seed}/{step}/{micro}/{rank}")
