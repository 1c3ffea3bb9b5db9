"""ranker_sdk.tokenize: what the model reads for a doc, and how pairs become token ids.

Run on the bundled default package's tokenizer and ``ranker.json`` (max_length, query budget and
character cut from the package), so they need no model build. The pair template's own tokens are
read off the tokenizer (BERT's ``[CLS] q [SEP] d [SEP]``, E5's ``<s> query: q </s> passage: d </s>``),
so the tests hold for whichever vocabulary the default ships.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from ranker_sdk import InputError, PackageError
from ranker_sdk.encoding import TITLE_SEPARATOR as SEP
from ranker_sdk.tokenize import QUERY_CHARS_PER_TOKEN, EncodedPairs, PairEncoder, clean_text, doc_text
from tokenizers import Tokenizer


@pytest.fixture(scope="module")
def tok_json(default_package) -> bytes:
    return default_package.files["tokenizer.json"]


@pytest.fixture(scope="module")
def config(default_package):
    return default_package.config


@pytest.fixture(scope="module")
def encoder(tok_json, config) -> PairEncoder:
    return PairEncoder(tok_json, config)


@pytest.fixture(scope="module")
def special(tok_json) -> tuple[list[int], list[int], list[int], list[int]]:
    """The template's ids before and after the query, and before and after the doc, from the
    special-tokens mask of one pair encoded by the file itself."""
    tok = Tokenizer.from_str(tok_json.decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    e = tok.encode("alpha", "beta")
    parts = []
    for segment in (0, 1):
        at = [i for i, t in enumerate(e.type_ids) if t == segment]
        text = [i for i in at if not e.special_tokens_mask[i]]
        parts += [[e.ids[i] for i in at if i < text[0]], [e.ids[i] for i in at if i > text[-1]]]
    assert parts[0] and parts[3], parts  # a row opens and closes with the template's own tokens
    return tuple(parts)


def _parts(ids: list[int], types: list[int], special) -> tuple[list[int], list[int]]:
    """(query ids, doc ids) of one row: its two segments without the template's tokens."""
    q_pre, q_post, d_pre, d_post = special
    q = [i for i, t in zip(ids, types) if t == 0]
    d = [i for i, t in zip(ids, types) if t == 1]
    assert q[: len(q_pre)] == q_pre and q[len(q) - len(q_post) :] == q_post
    assert d[: len(d_pre)] == d_pre and d[len(d) - len(d_post) :] == d_post
    return q[len(q_pre) : len(q) - len(q_post)], d[len(d_pre) : len(d) - len(d_post)]


# -- doc_text: what the model reads -----------------------------------------------------------


def test_doc_text_joins_a_title_with_the_package_separator():
    assert doc_text("plain text", SEP) == "plain text"
    assert doc_text({"title": "Paris", "text": "capital of France"}, SEP) == "Paris | capital of France"
    assert doc_text({"title": "Paris", "text": "x"}, " :: ") == "Paris :: x"
    assert doc_text({"text": "no title"}, SEP) == "no title"
    assert doc_text({"title": None, "text": "t"}, SEP) == doc_text({"title": "", "text": "t"}, SEP) == "t"
    assert doc_text({"title": "Only a title", "text": ""}, SEP) == "Only a title"


@pytest.mark.parametrize(
    "doc, match",
    [
        ({"title": "t"}, r"docs\[3\] must have a str 'text', got NoneType"),
        ({"text": 5}, r"docs\[3\] must have a str 'text', got int"),
        ({"text": "t", "title": 7}, r"docs\[3\]\['title'\] must be a str or absent, got int"),
        (b"bytes", r"docs\[3\] must be a str or a mapping with 'text'.*got bytes"),
        (None, r"docs\[3\] must be a str or a mapping.*got NoneType"),
    ],
)
def test_doc_text_refuses_what_is_not_a_doc_naming_its_index(doc, match):
    with pytest.raises(InputError, match=match):
        doc_text(doc, SEP, index=3)
    with pytest.raises(InputError, match=r"^doc[ \[]"):  # no index: "doc", not "docs[...]"
        doc_text(doc, SEP)


def test_clean_text_replaces_lone_surrogates_only():
    assert clean_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    clean_text("a\ud800b").encode("utf-8")  # now encodable


# -- PairEncoder: pairs -> ids -------------------------------------------------------------------


def test_a_pair_is_the_template_around_query_and_doc_with_segment_ids(encoder, special):
    enc = encoder.encode("what is the capital of france", ["Paris is the capital of France.", "bananas"])
    assert len(enc) == 2
    for ids, types in zip(enc.ids, enc.type_ids):
        first_doc = types.index(1)
        assert types == [0] * first_doc + [1] * (len(ids) - first_doc)  # query segment, then doc segment
        q, d = _parts(ids, types, special)
        assert q and d
    assert enc.ids[0][: enc.type_ids[0].index(1)] == enc.ids[1][: enc.type_ids[1].index(1)]  # same query part
    np.testing.assert_array_equal(enc.lengths(), [len(r) for r in enc.ids])


def test_rows_are_not_padded_and_the_file_own_padding_is_ignored(tok_json, config):
    # a tokenizer.json that pads to 128 (as BERT exports do): the encoder leaves rows ragged (padding is per batch)
    tok = Tokenizer.from_str(tok_json.decode("utf-8"))
    tok.enable_padding(length=128)
    enc = PairEncoder(tok.to_str().encode("utf-8"), config).encode(
        "q", ["short", "a somewhat longer document than the first one"]
    )
    assert len(enc.ids[0]) < len(enc.ids[1]) < 128


def test_a_long_doc_fills_max_length_and_the_query_stays_whole(encoder, config, special):
    query = "how do rankers cut long documents"
    enc = encoder.encode(query, ["word " * 2000])
    assert len(enc.ids[0]) == config.max_length  # truncated to the package's length, not the file's 128
    q, _ = _parts(enc.ids[0], enc.type_ids[0], special)
    alone = encoder.encode(query, ["x"])
    assert q == _parts(alone.ids[0], alone.type_ids[0], special)[0]  # only the doc was cut (only_second)


def test_a_long_query_keeps_its_token_budget_and_leaves_room_for_the_doc(encoder, config, special):
    query = " ".join(f"term{i}" for i in range(500))
    enc = encoder.encode(query, ["the document " * 500])
    q, d = _parts(enc.ids[0], enc.type_ids[0], special)
    assert len(q) == config.query_max_tokens  # the budget counts the query's own tokens, not the template's
    assert len(d) == config.max_length - config.query_max_tokens - sum(map(len, special))
    clipped = encoder.clip_query(query)
    assert query.startswith(clipped) and len(clipped) < len(query)
    assert encoder.clip_query("a short query") == "a short query"


def test_a_huge_query_is_cut_by_characters_before_tokenizing(encoder, config):
    query = "x" * 10_000_000
    clipped = encoder.clip_query(query)
    assert len(clipped) <= config.query_max_tokens * QUERY_CHARS_PER_TOKEN
    assert query.startswith(clipped)


def test_docs_are_cut_to_doc_max_chars_before_tokenizing(tok_json, config):
    cut = PairEncoder(tok_json, dataclasses.replace(config, doc_max_chars=11))
    a = cut.encode("q", ["hello world and many more words"])
    b = cut.encode("q", ["hello world"])
    assert a.ids == b.ids
    assert PairEncoder(tok_json, config).encode("q", ["hello world and many more words"]).ids != b.ids


def test_lone_surrogates_encode_as_the_replacement_character(encoder):
    bad = encoder.encode("caf\ud800", ["doc \udfff end"])
    good = encoder.encode("caf\ufffd", ["doc \ufffd end"])
    assert bad.ids == good.ids


def test_one_thread_encodes_exactly_as_the_parallel_batch(tok_json, config):
    docs = [f"document number {i} " * (i % 7 + 1) for i in range(40)]
    a = PairEncoder(tok_json, config, parallel=True).encode("query", docs)
    b = PairEncoder(tok_json, config, parallel=False).encode("query", docs)
    assert a.ids == b.ids and a.type_ids == b.type_ids


def test_a_tokenizer_file_that_does_not_parse_is_a_package_error(config):
    with pytest.raises(PackageError, match="tokenizer.json cannot be loaded by tokenizers"):
        PairEncoder(b'{"not": "a tokenizer"}', config)


# -- EncodedPairs.batch and the probe ---------------------------------------------------------------


def test_a_batch_pads_its_rows_to_their_own_longest_with_the_pad_id():
    enc = EncodedPairs([[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]], [[0, 0, 1], [0, 1], [0, 0, 1, 1, 1]])
    b = enc.batch([1, 0], pad_token_id=99)  # rows in the order asked, padded to 3, not to 5
    np.testing.assert_array_equal(b["input_ids"], [[4, 5, 99], [1, 2, 3]])
    np.testing.assert_array_equal(b["attention_mask"], [[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(b["token_type_ids"], [[0, 1, 0], [0, 0, 1]])
    assert all(v.dtype == np.int64 for v in b.values())


def test_the_probe_batch_spans_max_length_and_exercises_padding(encoder, config):
    p = encoder.probe_batch()
    assert set(p) == {"input_ids", "attention_mask", "token_type_ids"}
    assert p["input_ids"].shape == (2, config.max_length)
    assert p["attention_mask"][0].all()  # row 0: every position the package promises
    n = int(p["attention_mask"][1].sum())
    assert 0 < n < config.max_length  # row 1: a short pair, then padding
    assert (p["input_ids"][1, n:] == config.pad_token_id).all() and (p["token_type_ids"][1, n:] == 0).all()
