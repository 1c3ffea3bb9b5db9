"""The :class:`Ranker`: scores and ranks candidate documents for a query, from a verified package."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError, InternalError, PackageError
from .fusion import check_first_stage, fuse
from .package import LoadedPackage, PackageConfig, read_package, recheck_file
from .session import ModelSession
from .tokenize import QUERY_CHARS_PER_TOKEN, Doc, PairEncoder, doc_text

__all__ = ["Ranker", "Hit", "default_package_path", "batch_rows"]

log = logging.getLogger(__name__)

# More intra-op threads than this never helps a cross-encoder call, and each one costs a thread
# start at load: a caller's typo (threads=100000) must fail fast, not exhaust memory.
MAX_THREADS = 256
# score() encodes and runs at most this many docs at a time by default, so memory does not grow
# with the number of candidates (token data is held per doc until its chunk is scored).
CHUNK_DOCS = 256
# Intra-op threads by default. A ranker usually shares its host with other requests, and with
# every core busy one thread per core runs a request slower than 1 thread does, while a quiet host
# gains less than that loses (lab/benchmarks/bench_threads.py; the figures are in docs/cli.md).
# 1 also runs tokenization on the calling thread alone.
THREADS = 1
# A batch stops growing at this many padded tokens (rows x its longest row). On a CPU a 256-token
# row is already a large enough matrix product, so big batches buy nothing: with MiniLM INT8 on
# trec-rag24 passages, 512 ran faster than 4096 at under half the peak RSS
# (lab/benchmarks/bench_rank.py). Short docs still share a call (12 rows of 40 tokens).
MAX_BATCH_TOKENS = 512


def _positive_int(name: str, value: object, *, upper: int | None = None, none_ok: bool = False) -> int | None:
    """``value`` as an int if it is a positive integer (numpy integers too, bools not), else InputError."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        kind = "a positive int or None" if none_ok else "a positive int"
        raise InputError(f"{name} must be {kind}, got {value!r}")
    if upper is not None and value > upper:
        raise InputError(f"{name} must be at most {upper}, got {value}")
    return int(value)


@dataclass(frozen=True)
class Hit:
    """One ranked document: ``index`` into the caller's ``docs``, its ``score`` and the ``doc`` itself."""

    index: int
    score: float
    doc: Doc

    def __repr__(self) -> str:
        # A doc can be pages long: the repr shows its start, the doc itself stays whole.
        doc = repr(self.doc)
        doc = doc if len(doc) <= 80 else doc[:77] + "..."
        return f"Hit(index={self.index}, score={self.score:.4f}, doc={doc})"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cap_threads(threads: int | None) -> int | None:
    """``threads`` clamped to :func:`available_cores` (with a warning): more threads than cores only contend."""
    cores = available_cores()
    if threads is not None and threads > cores:
        log.warning("threads=%d is more than the %d cores available; using %d", threads, cores, cores)
        return cores
    return threads


def default_package_path() -> Path | None:
    """Where the bundled default package lives, or None if this install bundles none."""
    root = resources.files("ranker_sdk") / "default"
    path = Path(str(root))
    return path if (path / "manifest.json").is_file() else None


def _package_path(path: object) -> str | os.PathLike[str]:
    """The package path :meth:`Ranker.load` reads: the caller's, or the bundled default for None."""
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise InputError(
            f"path must be a str, an os.PathLike or None (the bundled default), got {type(path).__name__}: {path!r}"
        )
    if isinstance(path, str) and not path.strip():
        raise InputError("path is empty; pass a package directory or .tar.gz, or None for the bundled default")
    if path is None:
        path = default_package_path()
        if path is None:
            raise PackageError(
                "no default package is bundled with this ranker-sdk install; pass the path of "
                "a package (see `ranker package --help` to build one)"
            )
    return path


def batch_rows(
    lengths: np.ndarray, *, batch_size: int, max_batch_tokens: int, sort: bool = True, exact: bool = False
) -> list[np.ndarray]:
    """Row indices of each model call: at most ``batch_size`` rows and ``max_batch_tokens`` padded tokens.

    ``sort``: rows in order of token length first (so little is padded). ``exact``: only rows of
    one length share a call (a package whose graph has no padding mask, ``batching == "exact"``:
    nothing is ever padded).
    """
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
    batches, start = [], 0
    while start < len(order):
        end, width = start, 0
        while end < len(order) and end - start < batch_size:
            w = max(width, int(lengths[order[end]]))
            if end > start and (
                w * (end - start + 1) > max_batch_tokens or (exact and int(lengths[order[end]]) != width)
            ):
                break
            width, end = w, end + 1
        batches.append(order[start:end])
        start = end
    return batches


def _open_model(
    pkg: LoadedPackage, threads: int | None, query_chars_per_token: int
) -> tuple[PairEncoder, ModelSession]:
    """The tokenizer and the onnxruntime session of a verified package (the session runs a probe batch)."""
    encoder = PairEncoder(
        pkg.files["tokenizer.json"], pkg.config, parallel=threads != 1, query_chars_per_token=query_chars_per_token
    )
    model = pkg.model_path if pkg.model_path is not None else pkg.files["model.onnx"]
    session = ModelSession(model, pkg.config, threads=threads, probe=encoder.probe_batch())
    if pkg.model_path is not None:  # onnxruntime read the file by path: is it still the one verified?
        recheck_file(pkg, "model.onnx")
    return encoder, session


class Ranker:
    """A cross-encoder ranker loaded from a package.

    Build one with :meth:`load`; it is immutable afterwards and safe to share between threads
    (scoring reads the model and the tokenizer, never writes them, and never mutates the
    caller's documents).

    Example:
        >>> from ranker_sdk import Ranker
        >>> ranker = Ranker.load("path/to/package")                    # doctest: +SKIP
        >>> hits = ranker.rank("what is a cross-encoder",
        ...                    ["A cross-encoder reads query and document together.",
        ...                     {"title": "Bananas", "text": "A yellow fruit."}], top_k=1)  # doctest: +SKIP
        >>> hits[0].index                                              # doctest: +SKIP
        0
    """

    __slots__ = (
        "_config",
        "_encoder",
        "_session",
        "_batch_size",
        "_max_batch_tokens",
        "_sort",
        "_chunk_docs",
        "_model_card",
        "_source",
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use Ranker.load(path) to build a Ranker")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        threads: int | None = THREADS,
        batch_size: int = 32,
        max_batch_tokens: int = MAX_BATCH_TOKENS,
        sort_by_length: bool = True,
        chunk_docs: int = CHUNK_DOCS,
        query_chars_per_token: int = QUERY_CHARS_PER_TOKEN,
    ) -> "Ranker":
        """Load and verify a package.

        Args:
            path: a package directory or ``.tar.gz``; None loads the default package bundled
                with ranker-sdk.
            threads: onnxruntime intra-op threads (default 1, the fastest on a busy host: :data:`THREADS`;
                None: one per core). More than the cores available is clamped to them, with a logged warning.
            batch_size: at most this many pairs per model call. Pairs are sorted by length and
                each batch is padded only to its own longest row; scores do not depend on the
                batching beyond float rounding.
            max_batch_tokens: a batch also stops growing when rows x padded length would pass
                this. Peak memory is one batch's activations (attention grows with rows x length^2),
                so this, not ``batch_size``, bounds RSS for long documents; 512: :data:`MAX_BATCH_TOKENS`.
            sort_by_length: sort pairs by token length before batching (default). False keeps
                input order, which pads more; it exists to measure what sorting buys.
            chunk_docs: at most this many docs are encoded and scored at a time, so the memory of
                a call does not grow with its number of candidates. Raising it past a call's
                candidate count encodes them all first; it exists to measure what chunking buys.
            query_chars_per_token: the raw query is cut to ``query_max_tokens`` times this many
                characters before it is tokenized, so a huge query costs no more than a normal
                one (see :meth:`PairEncoder.clip_query`); raise it only to measure that bound.

        Raises:
            PackageError: the package is missing, corrupt, unsafe or inconsistent, or its model
                fails (or returns NaN/inf) on a probe batch of ``max_length`` tokens.
            InputError: ``path`` is not a str/PathLike/None, or ``threads`` (at most :data:`MAX_THREADS`),
                ``batch_size``, ``max_batch_tokens``, ``chunk_docs`` or ``query_chars_per_token`` is not
                a positive integer (numpy integers are accepted, bools are not).
        """
        threads = _cap_threads(_positive_int("threads", threads, upper=MAX_THREADS, none_ok=True))
        batch_size = _positive_int("batch_size", batch_size)
        max_batch_tokens = _positive_int("max_batch_tokens", max_batch_tokens)
        chunk_docs = _positive_int("chunk_docs", chunk_docs)
        query_chars_per_token = _positive_int("query_chars_per_token", query_chars_per_token)
        # A directory's model.onnx is verified without keeping its bytes, and onnxruntime reads it
        # by path: holding both copies would add the model's size to the peak RSS of every load.
        pkg = read_package(_package_path(path), keep_model=False, runtime_only=True)
        self = object.__new__(cls)
        self._config = pkg.config
        self._encoder, self._session = _open_model(pkg, threads, query_chars_per_token)
        self._batch_size = batch_size
        self._max_batch_tokens = max_batch_tokens
        self._sort = bool(sort_by_length)
        self._chunk_docs = chunk_docs
        card = pkg.files.get("MODEL_CARD.md")
        self._model_card = card.decode("utf-8", errors="replace") if card is not None else None
        self._source = pkg.source  # last: from here on the Ranker refuses any change
        log.debug("loaded ranker package %s", pkg.source)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_source"):
            raise AttributeError("a Ranker is immutable after load")
        object.__setattr__(self, name, value)

    @property
    def config(self) -> PackageConfig:
        """The package's ``ranker.json`` (frozen)."""
        return self._config

    @property
    def source(self) -> str:
        """The path the package was loaded from."""
        return self._source

    @property
    def model_card(self) -> str | None:
        """The package's ``MODEL_CARD.md`` (data, licences, recipe, metrics, limits), or None."""
        return self._model_card

    def __repr__(self) -> str:
        return f"Ranker(source={self._source!r}, max_length={self._config.max_length})"

    def _texts(self, query: object, docs: object) -> tuple[str, list[str]]:
        if not isinstance(query, str):
            raise InputError(f"query must be a str, got {type(query).__name__}")
        if not query.strip():
            raise InputError("query is empty; pass the user's query text")
        if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
            raise InputError(f"docs must be a sequence (list or tuple) of str or mappings, got {type(docs).__name__}")
        sep = self._config.title_separator
        return query, [doc_text(d, sep, index=i) for i, d in enumerate(docs)]

    def score(
        self,
        query: str,
        docs: Sequence[Doc],
        first_stage: Sequence[float] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Scores of ``docs`` for ``query`` as float32, in the order of ``docs``.

        Higher is more relevant. An empty ``docs`` gives an empty array.

        Args:
            first_stage: optional first-stage (retriever) scores of ``docs``, one number per doc,
                higher is better (pass ``-rank`` when only the order is known). When the package
                has a fusion rule (``config.fusion``), the result is the fused score
                ``z(model) + weight * z(first_stage)``, z-scored within this call's docs
                (:mod:`ranker_sdk.fusion`), so pass all of one query's candidates in one call.
                Without a rule the model's scores come back unchanged.
            progress: called as ``progress(done, total)`` after each :data:`CHUNK_DOCS` docs
                are scored (a caller's progress bar; the library itself prints nothing).

        Raises:
            InputError: ``query`` is not a non-empty str, a doc is neither a str nor a
                mapping with a str ``text``, or ``first_stage`` is not one finite number per doc.
            InternalError: a score came out NaN or infinite (never handed back).
        """
        query, texts = self._texts(query, docs)
        first = None if first_stage is None else check_first_stage(first_stage, len(texts))
        if not texts:
            return np.zeros(0, dtype=np.float32)
        scores = self._model_scores(query, texts, progress)
        sc = self._config.score
        if sc.kind == "sigmoid":
            # tanh form of the logistic: no exp to overflow for any finite input
            x = sc.scale * scores.astype(np.float64) + sc.bias
            scores = (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)
        if first is not None:
            scores = fuse(scores, first, self._config.fusion)
        bad = np.flatnonzero(~np.isfinite(scores))
        if bad.size:
            raise InternalError(
                f"scores of docs {bad.tolist()[:10]} came out non-finite ({scores[bad[0]]}) after the "
                "package's score/fusion rule; please report it with the package"
            )
        return scores

    def _model_scores(
        self, query: str, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> np.ndarray:
        """The model's raw scores of ``texts``, ``chunk_docs`` at a time (bounded memory).

        Within a chunk, pairs are sorted by length and batched (:meth:`_batches`); a score does
        not depend on its chunk or batch. A non-finite score is an :class:`InternalError`,
        never a NaN handed back to the caller.
        """
        scores = np.empty(len(texts), dtype=np.float32)
        for start in range(0, len(texts), self._chunk_docs):
            enc = self._encoder.encode(query, texts[start : start + self._chunk_docs])
            part = scores[start : start + len(enc)]
            for rows in self._batches(enc.lengths()):
                part[rows] = self._session.run(enc.batch(rows, self._config.pad_token_id))
            bad = np.flatnonzero(~np.isfinite(part))
            if bad.size:
                raise InternalError(
                    f"the model returned non-finite scores for docs {(bad + start).tolist()[:10]} "
                    f"({part[bad[0]]}); the package passed its load-time probe, so this input "
                    "triggers a numerical fault: please report it with the package and the input"
                )
            if progress is not None:
                progress(start + len(enc), len(texts))
        return scores

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Row indices of each model call (:func:`batch_rows` with this ranker's settings)."""
        return batch_rows(
            lengths,
            batch_size=self._batch_size,
            max_batch_tokens=self._max_batch_tokens,
            sort=self._sort,
            exact=self._config.batching == "exact",
        )

    def rank(
        self,
        query: str,
        docs: Sequence[Doc],
        top_k: int | None = None,
        first_stage: Sequence[float] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Hit]:
        """``docs`` ranked best-first as :class:`Hit` (index, score, doc); ties keep input order.

        Args:
            top_k: keep the best ``top_k`` (a positive int); None keeps all.
            first_stage: the docs' first-stage scores, fused as in :meth:`score`; the hits are
                ordered by, and carry, the fused score.
            progress: see :meth:`score`.
        """
        top_k = _positive_int("top_k", top_k, none_ok=True)
        scores = self.score(query, docs, first_stage=first_stage, progress=progress)
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        return [Hit(index=int(i), score=float(scores[i]), doc=docs[i]) for i in order]
