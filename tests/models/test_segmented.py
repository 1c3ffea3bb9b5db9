"""The segmented student: a bi-encoder inside the cross-encoder contract (ranker_models.segmented)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from ranker_models.segmented import HEAD_FILE, SegmentedBiEncoder, is_segmented, load_segmented, save_segmented
from ranker_sdk.encoding import TITLE_SEPARATOR
from ranker_training.config import ConfigError
from ranker_training.distill import load_student

QUERY = "who wrote the declaration of independence"
DOCS = [
    "Thomas Jefferson drafted the Declaration of Independence in 1776.",
    {"title": "Congress", "text": "The Continental Congress met in Philadelphia."},
    "short",
    "a much longer passage about something else entirely, with many words",
]


def _encoder(model_dir, max_length=64):
    from ranker_training.distill import StudentEncoder

    return StudentEncoder(model_dir, max_length=max_length, query_max_tokens=16, doc_max_chars=640)


def _separate_cosines(bert, tok, query, docs):
    """What a sentence-transformers bi-encoder computes: each text encoded alone, mean-pooled, cosine."""
    import torch
    from ranker_sdk.tokenize import doc_text

    def embed(text):
        enc = tok.encode(text)
        ids = torch.tensor([enc.ids])
        with torch.no_grad():
            h = bert(
                input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)
            ).last_hidden_state
        v = h.mean(1)[0]
        return v / v.norm()

    q = embed(query)
    return np.array([float(q @ embed(doc_text(d, TITLE_SEPARATOR))) for d in docs])


def test_packed_pair_scores_equal_the_separately_encoded_bi_encoder(tiny_bert_dir, tiny_tokenizer):
    """[CLS] q [SEP] d [SEP] in one padded batch == cosine of q and d encoded alone (x weight + bias)."""
    import torch
    from tokenizers import Tokenizer

    model = load_segmented(tiny_bert_dir).eval()
    with torch.no_grad():
        model.weight.fill_(2.5)
        model.bias.fill_(-0.5)
    arrays = _encoder(tiny_bert_dir).batch(QUERY, DOCS)
    assert (arrays["attention_mask"] == 0).any()  # padding is exercised
    with torch.no_grad():
        got = model(**{k: torch.from_numpy(v) for k, v in arrays.items()}).logits.squeeze(-1).numpy()
    tok = Tokenizer.from_str(tiny_tokenizer.to_str())
    tok.no_truncation()
    want = _separate_cosines(model.bert, tok, QUERY, DOCS)
    np.testing.assert_allclose(got, 2.5 * want - 0.5, atol=1e-5)


def test_save_load_round_trip_and_detection(tiny_bert_dir, tmp_path):
    import torch

    model = load_segmented(tiny_bert_dir)
    assert not is_segmented(tiny_bert_dir)
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.bias.fill_(1.0)
    save_segmented(model, tmp_path)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny_bert_dir / f, tmp_path / f)
    assert is_segmented(tmp_path) and (tmp_path / HEAD_FILE).is_file()
    back = load_student(str(tmp_path))  # detected from the head file
    assert isinstance(back, SegmentedBiEncoder)
    assert float(back.weight.detach()) == 3.0 and float(back.bias.detach()) == 1.0
    for a, b in zip(model.bert.state_dict().values(), back.bert.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match="architecture"):
        load_student(str(tmp_path), architecture="bi")
