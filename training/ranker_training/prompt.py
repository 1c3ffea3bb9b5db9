"""How a causal LM reads a (query, doc) pair: a prompt template, token budgets and the end token.

A template such as ``"Query: {query}\\nDocument: {doc}\\nRelevant:"`` is cut into literal pieces
and fields. Each literal is tokenized once; each field is tokenized on its own and truncated to
its budget (the query to ``query_max_tokens``, the doc to whatever is left of ``max_length``),
so a long doc never pushes out the end of the template or the end token. Every sequence then
ends with the explicitly chosen end token, because the teacher reads its score off the hidden
state of that final token: tokenizers disagree on what "eos" is (SmolLM2's GGUF tokenizer says
``<|im_start|>``), so it is never taken from ``tokenizer.eos_token`` implicitly.

A literal's trailing space is moved to the front of the field that follows it
(``"Query: " + "what"`` is tokenized as ``"Query:"`` and ``" what"``), which is how a BPE
tokenizer splits the joined string.

No BOS token is added: the template is the whole input (put a BOS in the template if the
model wants one, e.g. ``"<|im_start|>user\\n{query}..."``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ranker_sdk.encoding import TITLE_SEPARATOR, char_budget, doc_text

from .config import ConfigError

__all__ = ["PromptEncoder", "resolve_end_token"]

_FIELD = re.compile(r"(\{query\}|\{doc\})")


def resolve_end_token(tokenizer, end_token: str) -> int:
    """The id of ``end_token``; raises ValueError when the tokenizer does not have it as one token."""
    ids = tokenizer.convert_tokens_to_ids([end_token])
    unk = tokenizer.unk_token_id
    if not ids or ids[0] is None or (unk is not None and ids[0] == unk and end_token != tokenizer.unk_token):
        raise ConfigError(
            f"end_token {end_token!r} is not a single token of this tokenizer; set end_token to one of "
            f"its special tokens (e.g. {tokenizer.all_special_tokens[:6]})"
        )
    return int(ids[0])


@dataclass(frozen=True)
class _Piece:
    literal: tuple[int, ...] | None  # token ids of a literal, or None for a field
    field: str | None
    lead_space: bool  # the field's text gets a leading space (moved from the literal before it)


class PromptEncoder:
    """Token ids of ``template`` filled with a query and a doc, ending with ``end_token``.

    Example:
        >>> enc = PromptEncoder(tok, "Query: {query}\\nDocument: {doc}\\nRelevant:", "<|im_end|>", 256, 64)  # doctest: +SKIP
        >>> ids = enc.encode("what is bm25", {"title": "Okapi BM25", "text": "BM25 is ..."})  # doctest: +SKIP
        >>> ids[-1] == enc.end_id                                                              # doctest: +SKIP
        True
    """

    def __init__(
        self,
        tokenizer,
        template: str,
        end_token: str,
        max_length: int,
        query_max_tokens: int,
        *,
        append_end: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.end_id = resolve_end_token(tokenizer, end_token)
        self.max_length = max_length
        self.query_max_tokens = query_max_tokens
        self.append_end = append_end
        pieces: list[_Piece] = []
        lead = False
        for part in _FIELD.split(template):
            if not part:
                continue
            if part in ("{query}", "{doc}"):
                pieces.append(_Piece(None, part[1:-1], lead))
                lead = False
            else:
                lead = part.endswith(" ")
                text = part[:-1] if lead else part
                if text:
                    pieces.append(_Piece(tuple(self._ids(text)), None, False))
        self.pieces = tuple(pieces)
        fixed = sum(len(p.literal) for p in pieces if p.literal is not None) + (1 if append_end else 0)
        if fixed + query_max_tokens + 8 > max_length:
            raise ConfigError(
                f"max_length {max_length} leaves no room for the doc: the template takes {fixed} "
                f"tokens and the query up to {query_max_tokens}"
            )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, query: str, doc: object = None) -> list[int]:
        """Ids of the filled template (+ end token); ``doc`` is a str or ``{"title", "text"}``."""
        fixed = sum(len(p.literal) for p in self.pieces if p.literal is not None) + (1 if self.append_end else 0)
        fields: dict[str, list[int]] = {}
        for p in self.pieces:
            if p.field == "query":
                text = (" " if p.lead_space else "") + query
                fields["query"] = self._ids(text)[: self.query_max_tokens]
        budget = self.max_length - fixed - len(fields.get("query", []))
        for p in self.pieces:
            if p.field == "doc":
                text = doc_text(doc if doc is not None else "", TITLE_SEPARATOR)
                # Cut characters first: a 1 MB doc is never tokenized in full to keep 200 tokens.
                text = (" " if p.lead_space else "") + text[: char_budget(budget)]
                fields["doc"] = self._ids(text)[: max(budget, 0)]
        ids: list[int] = []
        for p in self.pieces:
            ids.extend(p.literal if p.literal is not None else fields[p.field])
        if self.append_end:
            ids.append(self.end_id)
        return ids
