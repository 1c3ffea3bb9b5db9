"""The :class:`Ranker`: scores and ranks candidate documents for a query, from a verified package."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError, PackageError
from .package import PackageConfig, read_package
from .session import ModelSession
from .tokenize import Doc, PairEncoder, doc_text

__all__ = ["Ranker", "Hit", "default_package_path"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """One ranked document: ``index`` into the caller's ``docs``, its ``score`` and the ``doc`` itself."""

    index: int
    score: float
    doc: Doc


def default_package_path() -> Path | None:
    """Where the bundled default package lives, or None if this install bundles none."""
    root = resources.files("ranker_sdk") / "default"
    path = Path(str(root))
    return path if (path / "manifest.json").is_file() else None


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

    __slots__ = ("_config", "_encoder", "_session", "_batch_size", "_sort", "_source")

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use Ranker.load(path) to build a Ranker")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        threads: int | None = None,
        batch_size: int = 32,
        sort_by_length: bool = True,
    ) -> "Ranker":
        """Load and verify a package.

        Args:
            path: a package directory or ``.tar.gz``; None loads the default package bundled
                with ranker-sdk.
            threads: onnxruntime intra-op threads; None uses one per core. Search backends that
                run many requests in parallel usually want 1.
            batch_size: pairs per model call. Pairs are sorted by length and each batch is padded
                only to its own longest row; scores do not depend on the batching beyond float
                rounding.
            sort_by_length: sort pairs by token length before batching (default). False keeps
                input order, which pads more; it exists to measure what sorting buys.

        Raises:
            PackageError: the package is missing, corrupt, unsafe or inconsistent.
            InputError: ``threads`` or ``batch_size`` is not a positive int.
        """
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise InputError(f"threads must be a positive int or None, got {threads!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        if path is None:
            path = default_package_path()
            if path is None:
                raise PackageError(
                    "no default package is bundled with this ranker-sdk install; pass the path of "
                    "a package (see `ranker package --help` to build one)"
                )
        pkg = read_package(path)
        self = object.__new__(cls)
        self._config = pkg.config
        self._encoder = PairEncoder(pkg.files["tokenizer.json"], pkg.config)
        self._session = ModelSession(pkg.files["model.onnx"], pkg.config, threads=threads)
        self._batch_size = batch_size
        self._sort = bool(sort_by_length)
        self._source = pkg.source
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

    def __repr__(self) -> str:
        return f"Ranker(source={self._source!r}, max_length={self._config.max_length})"

    def _texts(self, query: object, docs: object) -> tuple[str, list[str]]:
        if not isinstance(query, str):
            raise InputError(f"query must be a str, got {type(query).__name__}")
        if not query.strip():
            raise InputError("query is empty; pass the user's query text")
        if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
            raise InputError(
                f"docs must be a sequence (list or tuple) of str or mappings, got {type(docs).__name__}"
            )
        sep = self._config.title_separator
        return query, [doc_text(d, sep, index=i) for i, d in enumerate(docs)]

    def score(self, query: str, docs: Sequence[Doc]) -> np.ndarray:
        """Scores of ``docs`` for ``query`` as float32, in the order of ``docs``.

        Higher is more relevant. An empty ``docs`` gives an empty array.

        Raises:
            InputError: ``query`` is not a non-empty str, or a doc is neither a str nor a
                mapping with a str ``text``.
        """
        query, texts = self._texts(query, docs)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        enc = self._encoder.encode(query, texts)
        n = len(enc)
        order = np.argsort(enc.lengths(), kind="stable") if self._sort else np.arange(n)
        scores = np.empty(n, dtype=np.float32)
        bs = self._batch_size
        for start in range(0, n, bs):
            rows = order[start : start + bs]
            scores[rows] = self._session.run(enc.batch(rows, self._config.pad_token_id))
        sc = self._config.score
        if sc.kind == "sigmoid":
            scores = (1.0 / (1.0 + np.exp(-(sc.scale * scores + sc.bias)))).astype(np.float32)
        return scores

    def rank(self, query: str, docs: Sequence[Doc], top_k: int | None = None) -> list[Hit]:
        """``docs`` ranked best-first as :class:`Hit` (index, score, doc); ties keep input order.

        Args:
            top_k: keep the best ``top_k`` (a positive int); None keeps all.
        """
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise InputError(f"top_k must be a positive int or None, got {top_k!r}")
        scores = self.score(query, docs)
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        return [Hit(index=int(i), score=float(scores[i]), doc=docs[i]) for i in order]
