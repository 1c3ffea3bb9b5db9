"""The segmented student: a sentence-embedding bi-encoder inside the cross-encoder contract.

Why: a cross-encoder initialised from all-MiniLM-L6-v2 starts with a random score head and has to
learn relevance from the few hundred judged queries we have; it forgets what the bi-encoder
learnt from a billion sentence pairs (MS MARCO among them). Starting from the bi-encoder's own
ranking keeps that knowledge (the comparison is in docs/results.md).

What: the package keeps its contract (``[CLS] q [SEP] d [SEP]``, token types 0/1, one score a
row). Inside the graph this model rebuilds the two sequences the bi-encoder reads,
``[CLS] q [SEP]`` and ``[CLS] d [SEP]`` (a ``[CLS]`` is inserted where the doc begins), each with
positions counted from 0 and token type 0; attention stays inside a segment (a query token never
sees the doc, and the other way round); each segment is mean-pooled over its tokens, the [CLS]
and [SEP] included, and L2-normalised, as sentence-transformers does for all-MiniLM-L6-v2. The
score is ``weight * cos(q, d) + bias``. At initialisation the ranking is therefore exactly the
bi-encoder's; distillation then fine-tunes the encoder and the two head scalars.

Saved as a plain ``BertModel`` checkpoint (``save_pretrained``) plus ``score_head.safetensors``
(``weight`` and ``bias``, shape ``[1]``) and ``"architecture": "segmented"`` in
``ranker_student.json``. A checkpoint without the head file is not a segmented student.

Interaction blocks (optional, :func:`add_interaction`): the two segments never see each other, so
the score cannot weigh a doc's words by the query's. ``K`` blocks over the encoder's output let
every token attend to the *other* segment's tokens only (``h + tanh(gate) * Attention(h)``), each
block's projections copied from one of the encoder's top ``K`` self-attention layers and its gate
starting at 0: the untrained model still ranks exactly as the bi-encoder does, and training opens
the gates as far as the teacher asks. Saved in ``interaction.safetensors``; their count is in
``segmented.json``.

Example:
    >>> model = load_segmented("path/to/all-MiniLM-L6-v2")                        # doctest: +SKIP
    >>> model(**inputs).logits.shape                                            # doctest: +SKIP
    torch.Size([8, 1])
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

__all__ = [
    "SegmentedBiEncoder",
    "InteractionBlock",
    "add_interaction",
    "load_segmented",
    "save_segmented",
    "is_segmented",
    "HEAD_FILE",
    "INTERACTION_FILE",
    "ARCHITECTURE",
]

HEAD_FILE = "score_head.safetensors"
INTERACTION_FILE = "interaction.safetensors"
ARCHITECTURE = "segmented"


class InteractionBlock(nn.Module):
    """``h + tanh(gate) * O(softmax(Q h (K h)^T / sqrt(d) + bias) V h)``: attention across segments."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.heads = heads
        self.query, self.key, self.value, self.output = (nn.Linear(hidden, hidden) for _ in range(4))
        self.gate = nn.Parameter(torch.zeros(1))

    def copy_attention(self, layer: nn.Module) -> None:
        """Take the projections of a BERT layer's self-attention (``layer.attention``)."""
        src = (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value)
        with torch.no_grad():
            for dst, s in zip((self.query, self.key, self.value, self.output), (*src, layer.attention.output.dense)):
                dst.weight.copy_(s.weight)
                dst.bias.copy_(s.bias)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, hidden = h.shape
        d = hidden // self.heads

        def split(x):
            return x.view(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, n, hidden)
        return h + torch.tanh(self.gate) * self.output(ctx)


class SegmentedBiEncoder(nn.Module):
    """``weight * cos(mean(q), mean(d)) + bias`` over one packed ``[CLS] q [SEP] d [SEP]`` row."""

    def __init__(self, bert: nn.Module, cls_token_id: int, weight: float = 1.0, bias: float = 0.0) -> None:
        super().__init__()
        self.bert = bert
        self.cls_token_id = int(cls_token_id)
        self.weight = nn.Parameter(torch.tensor([float(weight)]))
        self.bias = nn.Parameter(torch.tensor([float(bias)]))
        self.interaction = nn.ModuleList()

    @property
    def config(self):
        return self.bert.config

    def embed_pair(self, input_ids, attention_mask, token_type_ids):
        """The normalised query and doc embeddings, each ``[batch, hidden]``."""
        n = input_ids.shape[1]
        mask = attention_mask.to(torch.long)
        # Doc start: the number of (real) query-segment tokens, [CLS] and [SEP] included.
        start = ((token_type_ids == 0).to(torch.long) * mask).sum(dim=1, keepdim=True)  # [B, 1]
        j = torch.arange(n + 1, device=input_ids.device).unsqueeze(0)  # [1, n+1]
        src = (j - (j > start).to(torch.long)).clamp(max=n - 1)  # j<start: j; j==start: the new [CLS]; j>start: j-1
        at_cls = j == start
        ids = torch.where(at_cls, torch.full_like(src, self.cls_token_id), torch.gather(input_ids, 1, src))
        valid = torch.where(at_cls, torch.ones_like(src), torch.gather(mask, 1, src))
        is_doc = (j >= start).to(torch.long)  # [B, n+1]
        positions = torch.where(is_doc == 1, j - start, j.expand_as(is_doc))
        same = is_doc.unsqueeze(2) == is_doc.unsqueeze(1)  # [B, n+1, n+1]
        att = (same & (valid.unsqueeze(1) == 1)).to(torch.long)
        hidden = self.bert(
            input_ids=ids, attention_mask=att, token_type_ids=torch.zeros_like(ids), position_ids=positions
        ).last_hidden_state
        if len(self.interaction):
            # Every token attends to the other segment's real tokens; a segment always has its
            # [CLS], so no row is left without a key.
            other = (~same) & (valid.unsqueeze(1) == 1)
            bias = torch.where(other, 0.0, torch.finfo(hidden.dtype).min).unsqueeze(1).to(hidden.dtype)
            for block in self.interaction:
                hidden = block(hidden, bias)
        vf = valid.to(hidden.dtype)
        qm = (vf * (1 - is_doc).to(hidden.dtype)).unsqueeze(-1)
        dm = (vf * is_doc.to(hidden.dtype)).unsqueeze(-1)
        q = (hidden * qm).sum(1) / qm.sum(1).clamp(min=1.0)
        d = (hidden * dm).sum(1) / dm.sum(1).clamp(min=1.0)
        return nn.functional.normalize(q, dim=-1), nn.functional.normalize(d, dim=-1)

    def forward(self, input_ids, attention_mask, token_type_ids):
        q, d = self.embed_pair(input_ids, attention_mask, token_type_ids)
        cos = (q * d).sum(-1, keepdim=True).float()
        return SimpleNamespace(logits=cos * self.weight + self.bias)


def add_interaction(model: SegmentedBiEncoder, n: int) -> None:
    """Give ``model`` ``n`` interaction blocks (closed gates), copied from its top ``n`` layers in order.

    Raises:
        ValueError: ``model`` has blocks already, or fewer than ``n`` layers.
    """
    layers = model.bert.encoder.layer
    if len(model.interaction):
        raise ValueError(f"the student has {len(model.interaction)} interaction blocks already")
    if not 1 <= n <= len(layers):
        raise ValueError(f"interaction blocks must be between 1 and the encoder's {len(layers)} layers, got {n}")
    c = model.bert.config
    for layer in layers[len(layers) - n :]:
        block = InteractionBlock(c.hidden_size, c.num_attention_heads)
        block.copy_attention(layer)
        model.interaction.append(block)


def is_segmented(path: str | Path) -> bool:
    """True when ``path`` is a saved segmented student (it has the score head file)."""
    return (Path(path) / HEAD_FILE).is_file()


def load_segmented(path: str | Path) -> SegmentedBiEncoder:
    """A segmented student from a local BERT encoder folder: bare (head 1, 0) or saved (its head).

    ``path`` is a checkpoint directory on disk (callers resolve ``pkg:`` names first): nothing is
    fetched from a model hub, and weights are read from safetensors only, never unpickled.

    Raises:
        InputError: the tokenizer has no ``[CLS]`` or ``<s>`` token to start a sequence with.
    """
    from ranker_sdk.errors import InputError
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import BertModel

    path = Path(path)
    bert = BertModel.from_pretrained(
        path,
        add_pooling_layer=False,
        attn_implementation="eager",
        dtype=torch.float32,
        local_files_only=True,
        use_safetensors=True,
    )
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    # BERT's WordPiece vocabularies start a sequence with [CLS], SentencePiece ones (E5) with <s>
    cls = next((i for i in map(tok.token_to_id, ("[CLS]", "<s>")) if i is not None), None)
    if cls is None:
        raise InputError(f"{path}: the tokenizer has neither a [CLS] nor a <s> token to start the doc's sequence with")
    model = SegmentedBiEncoder(bert, cls)
    if is_segmented(path):
        head = load_file(str(path / HEAD_FILE))
        with torch.no_grad():
            model.weight.copy_(head["weight"])
            model.bias.copy_(head["bias"])
    if (path / INTERACTION_FILE).is_file():
        blocks = load_file(str(path / INTERACTION_FILE))
        add_interaction(model, 1 + max(int(k.split(".", 1)[0]) for k in blocks))
        model.interaction.load_state_dict(blocks)
    return model


def save_segmented(model: SegmentedBiEncoder, out: str | Path) -> None:
    """Write the encoder (``save_pretrained``) and the head file to ``out``."""
    from safetensors.torch import save_file

    out = Path(out)
    model.bert.save_pretrained(out, safe_serialization=True)
    save_file(
        {"weight": model.weight.detach().cpu().contiguous(), "bias": model.bias.detach().cpu().contiguous()},
        str(out / HEAD_FILE),
    )
    if len(model.interaction):
        state = {k: v.detach().cpu().contiguous() for k, v in model.interaction.state_dict().items()}
        save_file(state, str(out / INTERACTION_FILE))
    record = {
        "architecture": ARCHITECTURE,
        "cls_token_id": model.cls_token_id,
        "interaction_layers": len(model.interaction),
    }
    (out / "segmented.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
