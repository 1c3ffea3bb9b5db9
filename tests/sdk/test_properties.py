"""Property tests: arbitrary Unicode, huge and empty texts never crash score/rank."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ranker_sdk import InputError

texts = st.text(alphabet=st.characters(codec=None, categories=None), max_size=300)
docs_st = st.lists(
    st.one_of(texts, st.fixed_dictionaries({"text": texts}, optional={"title": st.one_of(st.none(), texts)})),
    max_size=12,
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(query=texts, docs=docs_st)
def test_score_never_crashes(tiny_ranker, query, docs):
    try:
        s = tiny_ranker.score(query, docs)
    except InputError:
        assert not query.strip()  # the only documented refusal for str input
        return
    assert s.shape == (len(docs),) and s.dtype == np.float32 and np.isfinite(s).all()


@SETTINGS
@given(query=texts.filter(lambda q: q.strip()), docs=docs_st, top_k=st.one_of(st.none(), st.integers(1, 20)))
def test_rank_is_a_sorted_permutation(tiny_ranker, query, docs, top_k):
    hits = tiny_ranker.rank(query, docs, top_k=top_k)
    n = len(docs) if top_k is None else min(top_k, len(docs))
    assert len(hits) == n and len({h.index for h in hits}) == n
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(10_000, 300_000), ch=st.sampled_from(["a", "é", "語", "😀", " ", "\u0000"]))
def test_huge_and_degenerate_docs(tiny_ranker, n, ch):
    s = tiny_ranker.score("query", [ch * n, "", " " * 10])
    assert np.isfinite(s).all()
