"""Ranker behaviour on a real (tiny, random) model: batching, ordering, immutability, threads."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from ranker_sdk import Hit, InputError, Ranker


def varied_lengths(docs: list[str]) -> list[str]:
    """The passages cut to many different lengths, so padded batches mix short and long rows."""
    cuts = (12, 40, 90, 160, 250, 400, 640)
    return [d[: cuts[i % len(cuts)]] for i, d in enumerate(docs)]


def test_score_shape_dtype_and_rank_order(tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    s = tiny_ranker.score(q, docs)
    assert s.dtype == np.float32 and s.shape == (len(docs),)
    assert np.unique(s).size > len(docs) // 2  # the wide-init model gives distinct scores
    hits = tiny_ranker.rank(q, docs)
    assert [h.index for h in hits] == list(np.argsort(-s, kind="stable"))
    assert all(isinstance(h, Hit) and h.doc is docs[h.index] for h in hits)
    assert [h.score for h in hits] == sorted(s.tolist(), reverse=True)
    assert len(tiny_ranker.rank(q, docs, top_k=3)) == 3
    assert len(tiny_ranker.rank(q, docs, top_k=100)) == len(docs)


@pytest.mark.parametrize(
    "batch_size,max_tokens,sort",
    [(1, 4096, True), (3, 4096, False), (7, 4096, True), (64, 4096, False), (64, 100, True)],
)
def test_scores_do_not_depend_on_batching(tiny_package, tiny_ranker, trec_query_docs, batch_size, max_tokens, sort):
    q, docs = trec_query_docs
    docs = varied_lengths(docs)
    assert len({len(r) for r in tiny_ranker._encoder.encode(q, docs).ids}) >= 5  # batches really get padded
    ref = tiny_ranker.score(q, docs)
    other = Ranker.load(
        tiny_package, threads=1, batch_size=batch_size, max_batch_tokens=max_tokens, sort_by_length=sort
    )
    np.testing.assert_allclose(other.score(q, docs), ref, atol=1e-5, rtol=1e-5)


def test_batches_respect_both_caps(tiny_package):
    import numpy as np

    r = Ranker.load(tiny_package, threads=1, batch_size=4, max_batch_tokens=100)
    lengths = np.array([10, 60, 30, 20, 40, 50, 5, 64, 64, 3])
    batches = r._batches(lengths)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * lengths[b].max() <= 100
    # sorted by length: each batch's rows are no longer than the next batch's
    assert all(lengths[a].max() <= lengths[b].min() for a, b in zip(batches, batches[1:]))


def test_score_of_a_doc_does_not_depend_on_its_neighbours(tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    docs = varied_lengths(docs)
    full = tiny_ranker.score(q, docs)
    alone = np.array([tiny_ranker.score(q, [d])[0] for d in docs[:5]])
    np.testing.assert_allclose(alone, full[:5], atol=1e-5)


def test_titles_are_joined_by_the_package_rule(tiny_ranker):
    a = tiny_ranker.score("capital", [{"title": "France", "text": "Paris is the capital."}])
    b = tiny_ranker.score("capital", ["France | Paris is the capital."])
    c = tiny_ranker.score("capital", [{"text": "Paris is the capital.", "title": ""}])
    d = tiny_ranker.score("capital", ["Paris is the capital."])
    assert a[0] == pytest.approx(b[0], abs=1e-6) and c[0] == pytest.approx(d[0], abs=1e-6)


def test_long_query_keeps_room_for_the_doc(tiny_ranker):
    enc = tiny_ranker._encoder
    long_query = " ".join(["inflation"] * 500)
    pairs = enc.encode(long_query, ["school lunch prices rose sharply this year"])
    ids = pairs.ids[0]
    assert len(ids) <= tiny_ranker.config.max_length
    # the doc's tokens (type id 1) are all there: the query was cut to its budget instead
    assert sum(pairs.type_ids[0]) >= 8
    q_tokens = pairs.type_ids[0].count(0) - 2  # minus [CLS] and the first [SEP]
    assert q_tokens <= tiny_ranker.config.query_max_tokens


def test_huge_doc_is_cut_by_characters_before_tokenizing(tiny_ranker):
    huge = "word " * 2_000_000  # 10 MB
    s = tiny_ranker.score("word", [huge, "word"])
    assert np.isfinite(s).all()
    np.testing.assert_allclose(
        s[0], tiny_ranker.score("word", [huge[: tiny_ranker.config.doc_max_chars]])[0], atol=1e-6
    )


def test_does_not_mutate_docs(default_ranker):
    docs = [{"title": "t", "text": "body"}, "plain"]
    snapshot = [dict(docs[0]), docs[1]]
    default_ranker.rank("q", docs)
    assert docs == snapshot


def test_immutable_after_load(default_ranker):
    with pytest.raises(AttributeError):
        default_ranker._batch_size = 1
    with pytest.raises(TypeError):
        Ranker()


def test_empty_candidates(default_ranker):
    assert default_ranker.score("q", []).shape == (0,)
    assert default_ranker.rank("q", []) == []


@pytest.mark.parametrize(
    "query,docs,match",
    [
        (None, ["a"], "query must be a str"),
        (b"bytes", ["a"], "query must be a str"),
        ("   ", ["a"], "query is empty"),
        ("q", "a single string", "docs must be a sequence"),
        ("q", None, "docs must be a sequence"),
        ("q", ["ok", None], r"docs\[1\] must be a str or a mapping"),
        ("q", [{"title": "t"}], r"docs\[0\] must have a str 'text'"),
        ("q", [{"text": "t", "title": 3}], r"docs\[0\]\['title'\] must be a str"),
    ],
)
def test_bad_input_is_an_input_error(default_ranker, query, docs, match):
    with pytest.raises(InputError, match=match):
        default_ranker.score(query, docs)


@pytest.mark.parametrize("top_k", [0, -1, 2.5, True])
def test_bad_top_k(default_ranker, top_k):
    with pytest.raises(InputError, match="top_k"):
        default_ranker.rank("q", ["a"], top_k=top_k)


def test_lone_surrogates_are_replaced(default_ranker):
    s = default_ranker.score("caf\ud800e", ["bad \udfff text", "bad \ufffd text"])
    assert s[0] == pytest.approx(s[1], abs=1e-6)


def test_eight_threads_get_the_single_threaded_results(tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    queries = [q, "is pew research trustworthy", "school lunch", q.upper()]
    ref = {qq: tiny_ranker.score(qq, docs) for qq in queries}
    errors, results = [], []

    def work(i):
        try:
            for k in range(6):
                qq = queries[(i + k) % len(queries)]
                results.append((qq, tiny_ranker.score(qq, docs)))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 48
    for qq, s in results:
        np.testing.assert_allclose(s, ref[qq], atol=1e-6)


def test_runtime_imports_no_torch_transformers_or_evaluation():
    """The runtime ranks; training, packaging and evaluation (ir-measures, scipy) stay out of it."""
    import subprocess

    code = (
        "import sys, ranker_sdk, ranker_sdk.cli;"
        "bad=[m for m in ('torch','transformers','optimum','peft','ir_measures','scipy','ranker_eval',"
        "'ranker_training','ranker_quantize') if m in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, f"ranker_sdk imported heavy modules: {r.stdout} {r.stderr}"


def test_the_runtime_holds_no_evaluation_code():
    """BEIR reading and the metrics live in ranker_eval (evaluation/), not in the runtime."""
    import ranker_sdk

    here = Path(ranker_sdk.__file__).parent
    assert not (here / "beir.py").exists() and not (here / "metrics.py").exists()


def test_public_api():
    import ranker_sdk

    assert sorted(ranker_sdk.__all__) == sorted(
        ["Ranker", "Hit", "RankerError", "PackageError", "InputError", "InternalError", "__version__"]
    )


def test_bad_load_arguments(default_dir):
    bad = ({"threads": 0}, {"threads": "2"}, {"batch_size": 0}, {"max_batch_tokens": 0}, {"chunk_docs": 0})
    for kw in (*bad, {"query_chars_per_token": True}, {"chunk_docs": 2.5}):
        with pytest.raises(InputError):
            Ranker.load(default_dir, **kw)


def test_chunk_docs_bounds_a_call_without_changing_its_scores(tiny_package, tiny_ranker, trec_query_docs):
    q, docs = trec_query_docs
    small = Ranker.load(tiny_package, threads=1, chunk_docs=3)
    encoded = []
    encode = small._encoder.encode
    object.__setattr__(
        small._encoder, "encode", lambda query, texts: encoded.append(len(texts)) or encode(query, texts)
    )
    np.testing.assert_allclose(small.score(q, docs), tiny_ranker.score(q, docs), atol=1e-5)
    assert max(encoded) == 3 and sum(encoded) == len(docs)


def test_query_chars_per_token_is_the_bound_on_raw_query_text(tiny_package):
    query = "inflation " * 1000
    tight = Ranker.load(tiny_package, threads=1, query_chars_per_token=1)
    budget = tight.config.query_max_tokens
    assert tight._encoder.clip_query(query) == query[:budget]  # cut by characters before tokenizing
    loose = Ranker.load(tiny_package, threads=1, query_chars_per_token=10**6)
    assert len(loose._encoder.clip_query(query)) > budget  # tokenized whole, then cut at the token budget


def test_single_threaded_tokenization_gives_the_same_scores(tiny_package, trec_query_docs):
    q, docs = trec_query_docs
    one = Ranker.load(tiny_package, threads=1)
    many = Ranker.load(tiny_package, threads=2)
    assert not one._encoder._parallel and many._encoder._parallel
    np.testing.assert_allclose(one.score(q, docs), many.score(q, docs), atol=1e-5)


def test_exact_batching_puts_one_row_length_in_a_call(pkg_copy, default_ranker, trec_query_docs):
    """A package whose graph has no padding mask (batching "exact") is never fed a padded row."""
    import json

    from .conftest import reseal

    cfg = json.loads((pkg_copy / "ranker.json").read_text())
    (pkg_copy / "ranker.json").write_text(json.dumps({**cfg, "batching": "exact"}))
    reseal(pkg_copy)
    lengths = np.array([10, 10, 12, 10, 12, 64, 64, 64, 3, 12])
    for sort in (True, False):
        r = Ranker.load(pkg_copy, threads=1, batch_size=2, sort_by_length=sort)
        batches = r._batches(lengths)
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
        assert all(len(set(lengths[b].tolist())) == 1 and len(b) <= 2 for b in batches)
    exact = Ranker.load(pkg_copy, threads=1)
    seen = []
    run = exact._session.run
    exact._session.run = lambda feed: seen.append(feed["attention_mask"]) or run(feed)  # a spy, the session is real
    q, docs = trec_query_docs
    # the default graph keeps its mask, so both batchings must give the same scores
    np.testing.assert_allclose(exact.score(q, docs), default_ranker.score(q, docs), atol=1e-5)
    assert seen and all(m.all() for m in seen)  # no padded position in any call
