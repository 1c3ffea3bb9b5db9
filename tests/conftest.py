"""Shared fixtures: one tiny real model, built once per test session and reused.

Nothing here is mocked: a WordPiece tokenizer is trained on real passages, a random BERT
cross-encoder (2 layers, 32 wide) is built with transformers, saved as a local checkpoint,
exported to ONNX with torch and sealed into a real package with the real package writer.

Two layers. The data and the tokenizer need only the runtime (numpy, onnxruntime, tokenizers).
The model fixtures (:data:`BUILD_FIXTURES`) need torch and transformers (the ``train`` /
``quantize`` extras): every test that uses one, directly or through another fixture, is marked
``needs_torch`` at collection and skipped where torch is not installed, so ``tests/sdk`` runs in
a runtime-only install (``pip install ranker-sdk``) with those tests reported as skipped.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path

import pytest

# $RANKER_DATA names the data folder; unset, CI and sessions keep it beside the clone: ../shared/data
DATA = Path(os.environ.get("RANKER_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data").resolve()


# The fixtures below that build a model with torch + transformers; whatever uses them needs both.
BUILD_FIXTURES = frozenset({"tiny_bert_dir", "tiny_onnx", "tiny_package", "tiny_ranker"})


def pytest_collection_modifyitems(config, items):
    """Mark ``needs_torch`` every test whose fixtures (transitively) build the tiny model; skip them without torch."""
    have = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
    skip = pytest.mark.skip(
        reason="builds its model with torch + transformers (the train/quantize extras), not installed"
    )
    for item in items:
        if BUILD_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_torch)
            if not have:
                item.add_marker(skip)


def trec_passages(n: int = 300) -> list[str]:
    out = []
    with open(DATA / "trec-rag24" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA / "trec-rag24" / "corpus.jsonl").is_file(), (
        f"shared data not found at {DATA}; set $RANKER_DATA to the folder that holds trec-rag24/ (the BEIR data)"
    )
    return DATA


def build_tokenizer(texts: list[str], vocab_size: int = 1200):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tok.train_from_iterator(texts, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tok


@pytest.fixture(scope="session")
def tiny_tokenizer(data_dir):
    return build_tokenizer(trec_passages())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A local HF checkpoint: random 2-layer BERT cross-encoder with one output + its tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=tiny_tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        initializer_range=0.3,  # wide init so a random model gives spread-out, rankable scores
    )
    model = BertForSequenceClassification(cfg).eval()
    out = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(out, safe_serialization=True)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tiny_tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(out)
    return out


def export_onnx_bytes(model_dir: Path) -> bytes:
    """Plain torch ONNX export of a BERT cross-encoder (the SDK tests' model; no optimisation)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()

    class Scores(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    ids = torch.ones(2, 8, dtype=torch.long)
    buf = io.BytesIO()
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        Scores(model),
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        buf,
        dynamo=False,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["scores"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "scores": {0: "batch"}},
        opset_version=17,
    )
    return buf.getvalue()


def tiny_config(**overrides):
    from ranker_sdk.encoding import FORMAT_VERSION, TITLE_SEPARATOR
    from ranker_sdk.package import PackageConfig

    base = dict(
        format_version=FORMAT_VERSION,
        max_length=64,
        query_max_tokens=16,
        doc_max_chars=640,
        inputs=("input_ids", "attention_mask", "token_type_ids"),
        title_separator=TITLE_SEPARATOR,
        pad_token_id=0,
        provenance={"base_model": "random tiny BERT (tests)"},
        quantization={"precision": "fp32"},
    )
    base.update(overrides)
    return PackageConfig(**base)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_bert_dir) -> bytes:
    return export_onnx_bytes(tiny_bert_dir)


@pytest.fixture(scope="session")
def tiny_package(tmp_path_factory, tiny_onnx, tiny_bert_dir) -> Path:
    """A real, verified fp32 package of the tiny model (read-only: copy it before tampering)."""
    from ranker_quantize.package import write_package

    out = tmp_path_factory.mktemp("pkg") / "tiny"
    files = {"model.onnx": tiny_onnx, "tokenizer.json": (tiny_bert_dir / "tokenizer.json").read_bytes()}
    return write_package(out, files, tiny_config())


@pytest.fixture(scope="session")
def tiny_ranker(tiny_package):
    from ranker_sdk import Ranker

    return Ranker.load(tiny_package, threads=1)


@pytest.fixture(scope="session")
def trec_query_docs(data_dir) -> tuple[str, list[str]]:
    """One real trec-rag24 dev query and its 20 candidate passages."""
    queries = {}
    with open(data_dir / "trec-rag24" / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    cands: dict[str, list[str]] = {}
    with open(data_dir / "trec-rag24" / "candidates.run", encoding="utf-8") as fh:
        for line in fh:
            qid, _, did, *_ = line.split()
            cands.setdefault(qid, []).append(did)
    qid = sorted(cands)[0]
    wanted = set(cands[qid])
    corpus = {}
    with open(data_dir / "trec-rag24" / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if d["_id"] in wanted:
                corpus[d["_id"]] = d["text"]
    return queries[qid], [corpus[d] for d in cands[qid]]
