"""Turning (query, doc) pairs into model inputs, the way the package says.

The rules, all read from ``ranker.json`` (:class:`~ranker_sdk.package.PackageConfig`):

- A doc is a ``str`` or a mapping with ``text`` and an optional ``title``; a titled doc becomes
  ``title + title_separator + text`` (:func:`~ranker_sdk.encoding.doc_text`, re-exported here).
  Training uses the same function, so the student sees at serving time exactly what it saw in training.
- Raw doc text is cut to ``doc_max_chars`` characters *before* tokenizing: the tokenizer would
  otherwise encode a 10 MB document in full only to throw almost all of it away.
- The query keeps at most ``query_max_tokens`` tokens, so a long query never squeezes the doc out;
  the doc then fills what is left of ``max_length`` (truncation ``only_second``). Like a doc, the
  raw query is first cut by characters, to ``query_max_tokens * QUERY_CHARS_PER_TOKEN``: a token
  of real text is far shorter than that, so the cut changes nothing for a real query, and a
  10 MB query is never tokenized in full only to be cut afterwards.
- Lone surrogates (which UTF-8 cannot encode) are replaced by U+FFFD instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from .encoding import Doc, doc_text
from .errors import PackageError, wrap_backend_errors
from .package import PackageConfig

__all__ = ["Doc", "doc_text", "clean_text", "PairEncoder", "EncodedPairs", "QUERY_CHARS_PER_TOKEN"]

# WordPiece gives up on words longer than 100 characters ([UNK]); no real token is longer.
QUERY_CHARS_PER_TOKEN = 100
# The load-time probe's texts (any real text will do: they only need to be valid token ids).
_PROBE_QUERY = "what does a ranker probe check"
_PROBE_DOC = "The probe runs the model once at its full length before the first real query. " * 64
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(s: str) -> str:
    """Return ``s`` with lone surrogates replaced by U+FFFD (UTF-8 cannot carry them)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", s)
    return s


class EncodedPairs:
    """Token ids of a list of pairs, one ragged row per pair (before padding)."""

    __slots__ = ("ids", "type_ids")

    def __init__(self, ids: list[list[int]], type_ids: list[list[int]]) -> None:
        self.ids = ids
        self.type_ids = type_ids

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.ids), dtype=np.int64, count=len(self.ids))

    def batch(self, rows: Sequence[int], pad_token_id: int) -> dict[str, np.ndarray]:
        """Pad ``rows`` to their own longest row (right padding; BERT-style models attend by mask)."""
        width = max(len(self.ids[r]) for r in rows)
        ids = np.full((len(rows), width), pad_token_id, dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n = len(self.ids[r])
            ids[i, :n] = self.ids[r]
            types[i, :n] = self.type_ids[r]
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


class PairEncoder:
    """Encodes (query, doc) pairs with a package's tokenizer and length rules.

    Immutable after construction: truncation is configured once here, and encoding only reads
    the tokenizer, so one encoder can be shared by many threads.
    """

    def __init__(
        self,
        tokenizer_json: bytes,
        config: PackageConfig,
        *,
        parallel: bool = True,
        query_chars_per_token: int = QUERY_CHARS_PER_TOKEN,
    ) -> None:
        self.config = config
        self._query_chars = config.query_max_tokens * query_chars_per_token
        # encode_batch fans out over a thread pool of its own (one thread per core); a host that
        # asked for one thread gets the pairs encoded one by one on the calling thread instead.
        self._parallel = parallel
        try:
            tok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        except Exception as exc:  # tokenizers raises bare Exception for parse errors
            raise PackageError(f"tokenizer.json cannot be loaded by tokenizers: {exc}") from exc
        tok.no_padding()
        tok.enable_truncation(config.max_length, strategy="only_second")
        # The query-only tokenizer has no special tokens and no truncation: used to find where
        # the query's token budget ends, in characters.
        qtok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        qtok.no_padding()
        qtok.no_truncation()
        self._tok = tok
        self._qtok = qtok

    def clip_query(self, query: str) -> str:
        """The query cut after its ``query_max_tokens``-th token (at a character boundary).

        The raw text is cut to ``query_max_tokens * query_chars_per_token`` characters first
        (:data:`QUERY_CHARS_PER_TOKEN` unless the encoder was built with another bound), so the
        work done here is bounded whatever the caller passes.
        """
        query = query[: self._query_chars]
        with wrap_backend_errors("tokenizing the query"):
            enc = self._qtok.encode(query, add_special_tokens=False)
        budget = self.config.query_max_tokens
        if len(enc.ids) <= budget:
            return query
        end = enc.offsets[budget - 1][1]
        return query[:end]

    def encode(self, query: str, texts: Sequence[str]) -> EncodedPairs:
        """Encode ``query`` against each text; texts must already be ``str`` (see :func:`doc_text`)."""
        q = self.clip_query(clean_text(query))
        cut = self.config.doc_max_chars
        pairs = [(q, clean_text(t[:cut])) for t in texts]
        with wrap_backend_errors("tokenizing the documents"):
            if self._parallel:
                encs = self._tok.encode_batch(pairs)
            else:
                encs = [self._tok.encode(q, t) for q, t in pairs]
        return EncodedPairs([e.ids for e in encs], [e.type_ids for e in encs])

    def probe_batch(self) -> dict[str, np.ndarray]:
        """A padded batch of two rows for the load-time check of the model (see ``session.py``).

        Row 0 is a real (query, doc) pair stretched to exactly ``max_length`` tokens (its ids
        repeated if the doc is short), so every position the package promises is exercised;
        row 1 is a short pair padded to that width, so padding and the mask are exercised too.
        A package whose graph has no padding mask (``batching="exact"``) never gets a padded
        row, so its probe is row 0 alone.
        """
        with wrap_backend_errors("tokenizing the probe"):
            enc = self.encode(_PROBE_QUERY, [_PROBE_DOC, "short"])
        width = self.config.max_length
        reps = -(-width // len(enc.ids[0]))  # ceil
        ids = np.full((2, width), self.config.pad_token_id, dtype=np.int64)
        types = np.zeros((2, width), dtype=np.int64)
        mask = np.zeros((2, width), dtype=np.int64)
        ids[0] = (enc.ids[0] * reps)[:width]
        types[0] = (enc.type_ids[0] * reps)[:width]
        mask[0] = 1
        n = len(enc.ids[1])
        ids[1, :n], types[1, :n], mask[1, :n] = enc.ids[1], enc.type_ids[1], 1
        rows = 1 if self.config.batching == "exact" else 2
        return {"input_ids": ids[:rows], "attention_mask": mask[:rows], "token_type_ids": types[:rows]}
