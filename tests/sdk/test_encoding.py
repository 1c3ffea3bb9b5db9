"""ranker_sdk.encoding: the pair-encoding settings and helpers every layer shares."""

from __future__ import annotations

import pytest
from ranker_sdk import encoding
from ranker_sdk.encoding import TITLE_SEPARATOR, char_budget, doc_text, pad_token_id
from ranker_sdk.errors import InputError
from ranker_sdk.package import PackageConfig


def test_doc_text_joins_a_title_with_the_separator():
    assert doc_text({"title": "T", "text": "body"}, TITLE_SEPARATOR) == "T" + TITLE_SEPARATOR + "body"
    assert doc_text({"title": "", "text": "body"}, TITLE_SEPARATOR) == "body"
    assert doc_text({"title": "T", "text": ""}, TITLE_SEPARATOR) == "T"
    assert doc_text("plain", TITLE_SEPARATOR) == "plain"
    with pytest.raises(InputError, match=r"docs\[3\] must have a str 'text'"):
        doc_text({"title": "T"}, TITLE_SEPARATOR, index=3)
    with pytest.raises(InputError, match=r"doc\['title'\] must be a str"):
        doc_text({"title": 5, "text": "x"}, TITLE_SEPARATOR)


def test_pad_token_id_prefers_the_tokenizer_then_the_fallback_then_zero():
    assert pad_token_id(3, 1) == 3
    assert pad_token_id(0, 1) == 0  # 0 is a pad id, not "missing"
    assert pad_token_id(None, 1) == 1
    assert pad_token_id(None, None) == 0


def test_char_budget_and_the_defaults_agree_with_the_package_config():
    assert char_budget(256) == 256 * encoding.CHARS_PER_TOKEN
    assert PackageConfig(encoding.FORMAT_VERSION, 64, 16, 640, ("input_ids",)).title_separator == TITLE_SEPARATOR
    assert set(encoding.ENCODING_KEYS) <= set(PackageConfig.__dataclass_fields__)


def test_training_defaults_come_from_here():
    pytest.importorskip("ranker_training")
    from ranker_training.config import DistillConfig

    cfg = DistillConfig()
    assert (cfg.max_length, cfg.query_max_tokens, cfg.doc_max_chars, cfg.title_separator) == (
        encoding.MAX_LENGTH,
        encoding.QUERY_MAX_TOKENS,
        encoding.DOC_MAX_CHARS,
        TITLE_SEPARATOR,
    )


def test_model_limit_reads_positions_roberta_offset_and_tokenizer():
    assert encoding.model_limit(512, "bert", 0) == 512
    assert encoding.model_limit(514, "roberta", 1) == 512  # positions start at pad + 1
    assert encoding.model_limit(512, "bert", 0, 128) == 128
    assert encoding.model_limit(512, "bert", 0, int(1e30)) == 512  # transformers' "no limit"
    assert encoding.model_limit(None, "bert", None) == 512


def test_resolve_prefers_explicit_then_recorded_then_defaults():
    assert encoding.resolve({}, 128) == {
        "max_length": 128,
        "query_max_tokens": 32,
        "doc_max_chars": encoding.char_budget(128),
        "title_separator": encoding.TITLE_SEPARATOR,
    }
    assert encoding.resolve({}, 4096)["max_length"] == encoding.MAX_LENGTH
    rec = {"max_length": 160, "query_max_tokens": 32, "doc_max_chars": 4096, "title_separator": " - "}
    assert encoding.resolve(rec, 512) == rec
    assert encoding.resolve(rec, 512, max_length=64, query_max_tokens=8, doc_max_chars=100) == {
        "max_length": 64,
        "query_max_tokens": 8,
        "doc_max_chars": 100,
        "title_separator": " - ",
    }
