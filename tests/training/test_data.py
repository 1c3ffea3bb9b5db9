"""Data: click logs, several sources, group sampling, the step schedule."""

from __future__ import annotations

import json
import random

import pytest
from ranker_sdk.errors import RankerError
from ranker_training.config import ConfigError, DataSource
from ranker_training.data import Group, load_clicklog, load_sources, sample_group, sample_scored, schedule, trainable
from ranker_training.errors import DataError


def test_clicklog_groups_by_query_with_labels_from_clicks_or_grades(tmp_path):
    p = tmp_path / "log.jsonl"
    rows = [
        {"query": "a", "title": "T1", "summary": "S1", "clicks": 3},
        {"query": "b", "title": "T2", "summary": "S2", "label": 2},
        {"query": "a", "title": "T3", "summary": "S3", "clicks": 0},
        {"query": "b", "title": "T4", "summary": "S4", "label": 0, "docid": "D4"},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    groups = {g.query: g for g in load_clicklog(p)}
    assert groups["a"].labels == (1, 0) and groups["b"].labels == (2, 0)
    assert groups["a"].docs[0] == {"title": "T1", "text": "S1"}
    assert groups["b"].doc_ids[1] == "D4"
    assert load_clicklog(p)[0].qid == load_clicklog(p)[0].qid  # stable ids
    bad = tmp_path / "bad.jsonl"
    for line, match in [
        ('{"query": "a", "title": "t"}', "expected 'label' .* or 'clicks'"),
        ('{"query": "a", "clicks": "many"}', "'clicks' must be an integer, got 'many'"),
        ('{"query": "a", "label": [1]}', "'label' must be an integer"),
        ('{"title": "t", "label": 1}', "expected an object with a str 'query'"),
        ("not json", "not valid JSON"),
    ]:
        bad.write_text('{"query": "a", "label": 1}\n\n' + line + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=f"bad.jsonl:3: {match}"):  # the line, blank ones counted
            load_clicklog(bad)
    with pytest.raises(DataError, match="cannot read click log"):
        load_clicklog(tmp_path / "none.jsonl")
    assert issubclass(DataError, ValueError) and issubclass(DataError, RankerError)


def test_several_sources_are_concatenated_with_prefixed_qids(data_dir):
    one = load_sources([DataSource(str(data_dir / "wikiqa"), "dev")], max_queries=3)
    both = load_sources(
        [DataSource(str(data_dir / "trec-rag24"), "train"), DataSource(str(data_dir / "wikiqa"), "dev")], max_queries=3
    )
    assert len(both) == 6
    assert [g.qid for g in both[3:]] == [f"wikiqa/{g.qid}" for g in one]
    assert both[0].qid.startswith("trec-rag24/") and len(both[0].doc_ids) == 20
    with pytest.raises(ConfigError, match="neither"):
        load_sources([DataSource(str(data_dir / "nope"))])


def test_with_positive_keeps_only_answered_queries_and_then_caps(data_dir):
    every = load_sources([DataSource(str(data_dir / "wikiqa"), "dev")])
    kept = load_sources([DataSource(str(data_dir / "wikiqa"), "dev", with_positive=True)])
    answered = [g for g in every if any(y is not None and y > 0 for y in g.labels)]
    assert 0 < len(kept) < len(every)
    assert [g.qid for g in kept] == [g.qid for g in answered]
    capped = load_sources([DataSource(str(data_dir / "wikiqa"), "dev", with_positive=True)], max_queries=5)
    assert [g.qid for g in capped] == [g.qid for g in answered[:5]]


def test_sample_group_puts_a_positive_first_and_only_lower_labels_after():
    g = Group("q", "query", tuple("abcdef"), ({},) * 6, (0, 2, None, 1, 0, 3))
    assert trainable(g)
    for seed in range(20):
        c = sample_group(g, 4, "random", random.Random(seed))
        assert g.labels[c[0]] > 0 and 2 not in c
        assert all(g.labels[i] < g.labels[c[0]] for i in c[1:]) and len(c) <= 4
    hard = sample_group(g, 3, "hard", random.Random(1))
    pos = hard[0]
    lower = [i for i in (0, 1, 3, 4, 5) if g.labels[i] < g.labels[pos]]
    assert hard[1:] == lower[:2]  # first-stage order
    assert not trainable(Group("q", "x", ("a", "b"), ({}, {}), (1, 1)))
    assert sorted(sample_scored([1, 2, 3], 5, random.Random(0))) == [1, 2, 3]


def test_schedule_is_deterministic_covers_an_epoch_and_splits_ranks():
    n, bs = 10, 2
    seen = []
    for step in range(5):
        a = schedule(n, bs, 7, step, 0, 1, 0, 1)
        assert a == schedule(n, bs, 7, step, 0, 1, 0, 1)
        seen += a
    assert sorted(seen) == list(range(n))
    r0 = schedule(n, bs, 7, 0, 0, 1, 0, 2)
    r1 = schedule(n, bs, 7, 0, 0, 1, 1, 2)
    assert not set(r0) & set(r1)
    assert r0 + r1 == schedule(n, 4, 7, 0, 0, 1, 0, 1)  # two ranks see what one process of twice the batch sees


def test_weighted_items_repeat_items_by_weight():
    from ranker_training.data import weighted_items

    order = weighted_items([3.0, 1.0, 0.5, 0.0], seed=1)
    assert order.count(0) == 3 and order.count(1) == 1 and order.count(3) == 0
    assert order == weighted_items([3.0, 1.0, 0.5, 0.0], seed=1)  # a resumed run sees the same epoch
    with pytest.raises(ConfigError):
        weighted_items([-1.0], seed=0)


def test_hard_scored_sampling_takes_half_from_the_teachers_top():
    cands = list(range(40))
    targets = [float(-i) for i in cands]  # candidate 0 is the teacher's best
    for seed in range(5):
        got = sample_scored(cands, 8, random.Random(seed), targets)
        assert len(got) == 8 == len(set(got))
        assert sum(c < 8 for c in got) >= 4


def test_a_beir_folder_with_a_bad_line_names_the_file_and_line(tmp_path):
    from ranker_eval.beir import load_groups
    from ranker_sdk.errors import InputError

    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "q"}\n')
    (tmp_path / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    assert load_groups(tmp_path, "dev")[0].labels == (1, 0)  # the well-formed folder reads
    for name, text, match in [
        ("corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"text": "no id"}\n', r"corpus\.jsonl:2: .*'_id'"),
        ("queries.jsonl", '{"_id": "q1"}\n', r"queries\.jsonl:1: .*'text'"),
        ("qrels/dev.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tnan\n", r"dev\.tsv:2: grade 'nan'"),
        ("candidates.run", "q1 Q0 d1 first 1.0 bm25\n", r"candidates\.run:1: rank 'first'"),
    ]:
        good = (tmp_path / name).read_text() if (tmp_path / name).exists() else None
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=match):
            load_groups(tmp_path, "dev")
        if good is None:
            (tmp_path / name).unlink()
        else:
            (tmp_path / name).write_text(good)
