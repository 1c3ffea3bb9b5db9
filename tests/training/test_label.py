"""Labelling: every candidate scored, batched, resumable after a crash, shardable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ranker_training.config import DataSource, LabelConfig, LoraSettings, TeacherConfig
from ranker_training.label import label, read_scores, shard_path
from ranker_training.teacher import Teacher


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, tiny_llama_dir):
    torch.manual_seed(0)
    t = Teacher.build(
        TeacherConfig(model=str(tiny_llama_dir), lora=LoraSettings(enabled=False), max_length=96, query_max_tokens=16)
    )
    out = tmp_path_factory.mktemp("teacher")
    t.save(out)
    return out


def _cfg(teacher_dir, wikiqa, out, **kw) -> LabelConfig:
    return LabelConfig(
        teacher=str(teacher_dir),
        data=(DataSource(str(wikiqa), "dev"),),
        max_queries=4,
        out=str(out),
        batch_size=8,
        **kw,
    )


def test_labels_every_candidate_and_resumes_after_a_torn_write(teacher_dir, wikiqa, tmp_path):
    from ranker_eval.beir import load_groups

    groups = load_groups(wikiqa, "dev", max_queries=4)
    keys = {(g.qid, d) for g in groups for d in g.doc_ids}
    full = read_scores(label(_cfg(teacher_dir, wikiqa, tmp_path / "full.jsonl")))
    assert set(full) == keys and len(keys) > 20
    assert np.isfinite(list(full.values())).all() and np.std(list(full.values())) > 0

    path = tmp_path / "part.jsonl"
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:7]) + lines[7][:15], encoding="utf-8")  # a crash mid-line
    label(_cfg(teacher_dir, wikiqa, path))
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(rows) == len(keys), "no duplicate and no missing row after resuming"
    again = read_scores(path)
    for k in keys:
        assert again[k] == pytest.approx(full[k], abs=1e-4)
    mtime = path.stat().st_mtime_ns
    label(_cfg(teacher_dir, wikiqa, path))  # nothing left to do
    assert path.stat().st_mtime_ns == mtime


def test_shards_cover_the_data_once_and_merge(teacher_dir, wikiqa, tmp_path):
    out = tmp_path / "scores.tsv"
    for i in range(2):
        written = label(_cfg(teacher_dir, wikiqa, out, shard=i, num_shards=2))
        assert written == shard_path(out, i, 2) and written.name == f"scores.shard{i}of2.tsv"
    merged = read_scores(out)
    s0, s1 = read_scores(shard_path(out, 0, 2)), read_scores(shard_path(out, 1, 2))
    assert not set(s0) & set(s1)
    full = read_scores(label(_cfg(teacher_dir, wikiqa, tmp_path / "all.jsonl")))
    assert set(merged) == set(full)
    for k, v in full.items():
        assert merged[k] == pytest.approx(v, abs=1e-4)  # batch-mates never change a score


def test_a_scores_line_that_does_not_parse_is_named_but_a_torn_tail_is_not(tmp_path):
    from ranker_training.errors import DataError

    path = tmp_path / "s.jsonl"
    good = '{"qid": "q", "docid": "d1", "score": 0.5}\n'
    path.write_text(good + '{"qid": "q", "docid": "d2", "sco', encoding="utf-8")  # a crash mid-line
    assert read_scores(path) == {("q", "d1"): 0.5}
    path.write_text(good + '{"qid": "q", "docid": "d2"}\n' + good, encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.jsonl:2: expected"):
        read_scores(path)
    tsv = tmp_path / "s.tsv"
    tsv.write_text("q\td1\tnot-a-score\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.tsv:1: expected qid<TAB>docid<TAB>score"):
        read_scores(tsv)
