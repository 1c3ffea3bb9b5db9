"""Tiny random cross-encoders of several families, built once per session.

The BERT one is the shared ``tiny_bert_dir``; DistilBERT, RoBERTa, XLM-R and ELECTRA are built
here the same way: a real (random) transformers model with one output, saved as a local
checkpoint beside the shared WordPiece tokenizer wrapped in ``PreTrainedTokenizerFast``.
``initializer_range=0.3`` makes a random model's scores spread out enough to rank.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FAMILIES = ("bert", "distilbert", "roberta", "xlm-roberta", "electra")
TRAINING_DATA = "../shared/data/trec-rag24"


def _fast_tokenizer(tok, *, roberta: bool):
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(tok.to_str())  # a copy: the session tokenizer is shared
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if roberta:
        # RoBERTa pairs are "<s> A </s></s> B </s>" with type id 0 throughout.
        tok.post_processor = processors.RobertaProcessing(sep=("[SEP]", sep_id), cls=("[CLS]", cls_id))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        model_max_length=128,
    )


def build_family_checkpoint(family: str, tok, out: Path, *, num_labels: int = 1) -> Path:
    """Save a random 2-layer ``family`` cross-encoder with ``num_labels`` outputs and a tokenizer to ``out``."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    vocab = tok.get_vocab_size()
    common = dict(num_labels=num_labels, initializer_range=0.3)
    bert_like = dict(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **common
    )
    if family == "bert":
        model = tf.BertForSequenceClassification(tf.BertConfig(max_position_embeddings=128, **bert_like))
    elif family == "distilbert":
        cfg = tf.DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128, **common
        )
        model = tf.DistilBertForSequenceClassification(cfg)
    elif family in ("roberta", "xlm-roberta"):
        cls = tf.RobertaConfig if family == "roberta" else tf.XLMRobertaConfig
        # Positions start at pad_token_id + 1, so the table needs max_length + 2 rows.
        cfg = cls(
            max_position_embeddings=130,
            type_vocab_size=1,
            pad_token_id=0,
            bos_token_id=tok.token_to_id("[CLS]"),
            eos_token_id=tok.token_to_id("[SEP]"),
            **bert_like,
        )
        model = (
            tf.RobertaForSequenceClassification if family == "roberta" else tf.XLMRobertaForSequenceClassification
        )(cfg)
    elif family == "electra":
        cfg = tf.ElectraConfig(embedding_size=32, max_position_embeddings=128, **bert_like)
        model = tf.ElectraForSequenceClassification(cfg)
    else:
        raise ValueError(family)
    model.eval().save_pretrained(out, safe_serialization=True)
    _fast_tokenizer(tok, roberta=family in ("roberta", "xlm-roberta")).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory, tiny_tokenizer, tiny_bert_dir) -> dict[str, Path]:
    """``family -> checkpoint dir`` for every family in :data:`FAMILIES`."""
    out = {"bert": tiny_bert_dir}
    for family in FAMILIES[1:]:
        out[family] = build_family_checkpoint(family, tiny_tokenizer, tmp_path_factory.mktemp(f"tiny_{family}"))
    return out


@pytest.fixture(scope="session")
def int8_package(tmp_path_factory, tiny_bert_dir, data_dir) -> Path:
    """An INT8 package of the tiny BERT, verified on 4 real trec-rag24 dev queries (read-only)."""
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    # A random model's nDCG is noise: only the ranking agreement is held to the real threshold.
    options = PackageOptions(
        training_data="tests",
        tar=True,
        verify=VerifyOptions(calibration=str(data_dir / "trec-rag24"), max_queries=4, max_ndcg_drop=1.0),
    )
    return build_package(tiny_bert_dir, tmp_path_factory.mktemp("int8") / "tiny-int8", options).path


@pytest.fixture(scope="session", params=FAMILIES)
def family(request, family_dirs, tmp_path_factory):
    """(name, checkpoint dir, fp32 package, int8 package) of one family (generated-text verification)."""
    from ranker_quantize import PackageOptions, VerifyOptions, build_package

    name = request.param
    out = tmp_path_factory.mktemp(f"pkg_{name}")
    quick = VerifyOptions(max_queries=4)
    fp32 = build_package(family_dirs[name], out / "fp32", PackageOptions(precision="fp32", verify=quick)).path
    int8 = build_package(family_dirs[name], out / "int8", PackageOptions(force=True, verify=quick)).path
    return name, family_dirs[name], fp32, int8


@pytest.fixture(scope="session")
def make_checkpoint(tiny_tokenizer):
    """``make(family, out_dir, num_labels=1)``: build one more tiny checkpoint (for error cases)."""

    def make(family: str, out: Path, *, num_labels: int = 1) -> Path:
        return build_family_checkpoint(family, tiny_tokenizer, out, num_labels=num_labels)

    return make
