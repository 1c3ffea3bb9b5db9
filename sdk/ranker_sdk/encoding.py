"""The pair encoding: how a (query, doc) pair becomes text for the tokenizer, in one place.

Training (distillation, CPT, the teacher's prompt, the evaluation's baselines), the packager and
the runtime all import these settings and helpers from here, so the student sees at serving time
exactly what it saw in training. Standard library only: the runtime and every training module can
import it without pulling in anything heavier.

The settings, as ``ranker.json`` carries them (:data:`ENCODING_KEYS`):

- ``max_length``: tokens per pair, special tokens included (student default :data:`MAX_LENGTH`);
- ``query_max_tokens``: the query's budget (default :data:`QUERY_MAX_TOKENS`), so a long query
  never squeezes the doc out;
- ``doc_max_chars``: raw doc text is cut to this many characters before tokenizing (the student's
  default :data:`DOC_MAX_CHARS`; a checkpoint that records none gets :func:`char_budget` of its
  ``max_length`` from the packager);
- ``title_separator``: a titled doc reads ``title + TITLE_SEPARATOR + text`` (:func:`doc_text`);
- ``pad_token_id``: the id that pads ``input_ids`` (:func:`pad_token_id`).

Distillation records these in ``ranker_student.json`` beside the student's weights; the packager
copies exactly that record into ``ranker.json`` and falls back to the defaults here only for a
checkpoint that has none (a plain Hugging Face cross-encoder).

>>> doc_text({"title": "Okapi BM25", "text": "a ranking function"}, TITLE_SEPARATOR)
'Okapi BM25 | a ranking function'
>>> char_budget(256), pad_token_id(None, 1), pad_token_id(0, 1)
(3072, 1, 0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from .errors import InputError

__all__ = [
    "FORMAT_VERSION",
    "TITLE_SEPARATOR",
    "CHARS_PER_TOKEN",
    "MAX_LENGTH",
    "QUERY_MAX_TOKENS",
    "DOC_MAX_CHARS",
    "ENCODING_KEYS",
    "Doc",
    "doc_text",
    "char_budget",
    "pad_token_id",
    "model_limit",
    "resolve",
]

# The package format this code writes and reads (ranker.json and manifest.json say which they are).
FORMAT_VERSION = 1
TITLE_SEPARATOR = " | "
# Characters kept per token of budget when text is cut before tokenizing: a token of English is
# ~4-5 characters, so 12 leaves margin and never starves the budget, while a 10 MB text is never
# tokenized in full only to keep a few hundred tokens.
CHARS_PER_TOKEN = 12
# The student's defaults (DistillConfig): cross-encoders for reranking rarely gain past 256 tokens,
# and attention cost grows with the square of the length.
MAX_LENGTH = 256
QUERY_MAX_TOKENS = 64
DOC_MAX_CHARS = 4096
# The settings a student records in ranker_student.json and the packager writes into ranker.json.
ENCODING_KEYS = ("max_length", "query_max_tokens", "doc_max_chars", "title_separator", "pad_token_id")

Doc = Union[str, Mapping[str, Any]]


def doc_text(doc: Doc, title_separator: str, *, index: int | None = None) -> str:
    """The text the model reads for ``doc``: ``text``, or ``title + title_separator + text``.

    Raises :class:`InputError` for anything that is neither a ``str`` nor a mapping with a
    ``str`` ``text`` (and, if present and not None, a ``str`` ``title``).
    """
    where = f"docs[{index}]" if index is not None else "doc"
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Mapping):
        text = doc.get("text")
        title = doc.get("title")
        if not isinstance(text, str):
            raise InputError(
                f"{where} must have a str 'text', got {type(text).__name__}; pass "
                "{'text': ..., 'title': ...} or a plain str"
            )
        if title is None or title == "":
            return text
        if not isinstance(title, str):
            raise InputError(f"{where}['title'] must be a str or absent, got {type(title).__name__}")
        return title + title_separator + text if text else title
    raise InputError(f"{where} must be a str or a mapping with 'text' (and optional 'title'), got {type(doc).__name__}")


def char_budget(tokens: int) -> int:
    """Characters of raw text kept for a budget of ``tokens`` tokens (``tokens * CHARS_PER_TOKEN``)."""
    return tokens * CHARS_PER_TOKEN


def pad_token_id(tokenizer_pad: int | None, fallback: int | None = None) -> int:
    """The id that pads ``input_ids``: the tokenizer's own pad token, else ``fallback``, else 0.

    ``tokenizer_pad`` is the checkpoint tokenizer's ``pad_token_id`` (None when it declares no
    pad token, as many causal LMs do). ``fallback`` is the model config's ``pad_token_id`` for a
    cross-encoder, or the end token for a causal LM teacher, whose padding sits after that
    token and is never read. Padded positions have ``attention_mask`` 0, so the id does not move
    a score, but it must be a real row of the embedding table, and RoBERTa-family models number
    their positions from it; the package records it so the runtime never guesses.
    """
    for candidate in (tokenizer_pad, fallback):
        if candidate is not None:
            return int(candidate)
    return 0


def model_limit(
    max_position_embeddings: int | None, model_type: str | None, pad_id: int | None, tokenizer_max: object = None
) -> int:
    """The longest input (tokens) a checkpoint allows: its position table, and its tokenizer's limit.

    RoBERTa-family models number positions from ``pad_token_id + 1``, so that many rows are never
    used. A tokenizer limit of 100,000 or more (transformers' "no limit" placeholder) is ignored.

    >>> model_limit(512, "bert", 0), model_limit(514, "roberta", 1), model_limit(512, "bert", 0, 128)
    (512, 512, 128)
    """
    limit = int(max_position_embeddings or 512)
    if model_type in ("roberta", "xlm-roberta", "camembert"):
        limit -= int(pad_id or 0) + 1
    if isinstance(tokenizer_max, int) and 0 < tokenizer_max < 100_000:
        limit = min(limit, tokenizer_max)
    return limit


def resolve(
    recorded: Mapping[str, Any],
    limit: int,
    *,
    max_length: int | None = None,
    query_max_tokens: int | None = None,
    doc_max_chars: int | None = None,
) -> dict[str, Any]:
    """The pair-encoding settings of a checkpoint: an explicit value, else its record, else the default.

    ``recorded`` is what distillation wrote in ``ranker_student.json`` (empty for a plain Hugging
    Face cross-encoder); ``limit`` is :func:`model_limit` of the checkpoint. The defaults of a
    checkpoint without a record: ``min(MAX_LENGTH, limit)`` tokens, a quarter of them for the
    query, :func:`char_budget` characters of doc. The packager and ``ranker eval`` both use this,
    so a checkpoint is evaluated on exactly the text its package will read. Values are not checked
    against ``limit`` here (the packager refuses a too-long ``max_length`` with its own message).

    >>> resolve({}, 128)
    {'max_length': 128, 'query_max_tokens': 32, 'doc_max_chars': 1536, 'title_separator': ' | '}
    >>> resolve({"max_length": 160, "query_max_tokens": 32, "doc_max_chars": 4096}, 512)["doc_max_chars"]
    4096
    """
    ml = next((v for v in (max_length, recorded.get("max_length")) if v is not None), min(MAX_LENGTH, limit))
    qm = next((v for v in (query_max_tokens, recorded.get("query_max_tokens")) if v is not None), max(1, ml // 4))
    dc = doc_max_chars or recorded.get("doc_max_chars") or char_budget(ml)
    return {
        "max_length": int(ml),
        "query_max_tokens": int(qm),
        "doc_max_chars": int(dc),
        "title_separator": recorded.get("title_separator", TITLE_SEPARATOR),
    }
